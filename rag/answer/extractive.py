"""Typed answers, and the default answerer: extractive, offline, no language model.

The extractive answerer picks, from the sentences of the retrieved passages, the
ones that answer the question (dense similarity + the question's rare words + the
expected answer type), and composes 1–3 of them, each followed by its marker. Every
quote is a verbatim span of its article. When the best evidence is too weak it
abstains in one plain sentence and lists the closest passages as related. When
articles give different figures for what was asked, each figure is shown with its
own citation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..retrieve.features import SentenceFeatures
from ..retrieve.params import SearchParams
from ..settings import Settings
from ..text.answer_kinds import answer_type, holds_answer_type
from ..types import Citation, SearchHit
from .abstain import ABSTAIN_TEXT
from .citations import marker


@dataclass(frozen=True)
class Candidate:
    unit: int
    score: float
    dense: float
    coverage: float
    hit: SearchHit
    start: int
    end: int
    text: str
    penalty: float = 0.0  # lacks a figure the question names, or is a heading
    context_coverage: float = 0.0  # coverage counting the previous sentence too


_FIGURE = re.compile(r"(?<![\[\w])(\d[\d,.]*(?:\s*[-–]\s*\d[\d,.]*)?)\s*(?:-|\s)?\s*(km|kilomet\w*|miles?|mi|metres|meters|m|%|percent|per cent|sq km|square kilomet\w*|ballistic missiles|drones|hours?|days?|weeks?|years?|billion|million|\$)?", re.I)


_NUM_TOKEN = re.compile(r"(?<![\w\[])\d[\d,.]*\d|(?<![\w\[])\d")


def _numbers(text: str) -> set[str]:
    return {m.group(0).replace(",", "") for m in _NUM_TOKEN.finditer(text)}



def _figures(text: str) -> frozenset[str]:
    """Normalised numbers with their unit, used to notice articles that disagree."""
    out = set()
    for m in _FIGURE.finditer(text):
        num = m.group(1).replace(",", "").rstrip(".")
        if re.fullmatch(r"(19|20)\d\d", num):  # a year is not a measured figure
            continue
        unit = (m.group(2) or "").lower()
        unit = {"kilometer": "km", "kilometre": "km", "kilometers": "km", "kilometres": "km", "mi": "miles", "mile": "miles"}.get(unit, unit)
        if unit.startswith("kilomet"):
            unit = "km"
        out.add(f"{num} {unit}".strip())
    return frozenset(out)


class ExtractiveAnswerer:
    """Answers from the sentences of the retrieved passages, scored with the retriever's features."""

    def __init__(self, features: SentenceFeatures, settings: Settings, params: SearchParams | None = None):
        self.features = features
        self.store = features.store
        self.settings = settings
        self.params = params or SearchParams.from_settings(settings)

    def candidates(self, question: str, qvec: np.ndarray, hits: list[SearchHit]) -> list[Candidate]:
        seen: set[int] = set()
        units: list[int] = []
        owner: list[SearchHit] = []
        for h in hits:
            for u in self.store.passage_units(h.passage.passage_id):
                if u not in seen:
                    seen.add(u)
                    units.append(u)
                    owner.append(h)
        if not units:
            return []
        arr = np.array(units)
        dense = self.store.unit_vectors_f32(arr) @ qvec
        scores = self.features.score_units(question, qvec, arr, self.params, dense)
        coverage = self.features.coverage(question, arr)
        # An answer often follows the sentences that name the topic ("... the Tomahawk
        # land mobile launcher program ... The new system is called Typhoon"): give a
        # sentence half the credit for question words its two predecessors hold.
        rows = self.store.units["article_row"]
        before = []
        for back in (1, 2):
            prev = np.maximum(arr - back, 0)
            before.append(np.where((arr - back >= 0) & (rows[prev] == rows[arr]), prev, -1))
        joint = self.features.coverage(question, arr, also=np.stack(before, axis=1))
        context = 0.5 * (joint - coverage)
        scores = scores + self.params.lexical_weight * context
        required = _numbers(question)  # figures and years an answer must mention
        headings = self.features.heading_penalty(arr)
        out = []
        for i, (u, h) in enumerate(zip(units, owner)):
            rec = self.store.units[u]
            text = self.features.unit_text(u)
            penalty = float(headings[i])  # a heading or a question restates the topic, it does not answer
            if required and not required <= _numbers(text):
                penalty += 1.0  # the question names a figure or year this sentence lacks
            # A small prior for passages the retriever ranked higher.
            s = float(scores[i]) - penalty + 0.1 / (1 + h.rank)
            out.append(
                Candidate(u, s, float(dense[i]), float(coverage[i]), h, int(rec["start"]), int(rec["end"]), text,
                          penalty, float(joint[i]))
            )
        out.sort(key=lambda c: c.score, reverse=True)
        return out

    def confidence(self, question: str, best: Candidate) -> float:
        """Evidence strength of the best sentence, on the scale the threshold is calibrated on.

        Dense similarity plus the share of question words in the sentence (and, at
        half weight, with its predecessor); fitted with the abstention threshold on
        eval/questions/seeds.jsonl (see docs/answering.md for the measured precision/recall).
        """
        return best.dense + 0.5 * (best.coverage + best.context_coverage) - best.penalty

    def answer(self, question: str, qvec: np.ndarray, hits: list[SearchHit]) -> tuple[str, list[Citation], bool, bool]:
        """Returns (text with markers, citations, abstained, conflict)."""
        cands = self.candidates(question, qvec, hits)
        if not cands or self.confidence(question, cands[0]) < self.settings.abstain_threshold:
            return ABSTAIN_TEXT, [], True, False
        kind = answer_type(question)
        chosen, conflict = self._select(cands, kind)
        text, citations = self._compose(chosen)
        if conflict:
            text = f"The articles differ: {text}"
        return text, citations, False, conflict

    def _select(self, cands: list[Candidate], kind: str) -> tuple[list[list[Candidate]], bool]:
        """Groups of sentences to show; each group is one sentence plus repeats of it."""
        best = self._with_next_sentence(cands[0], kind)
        margin = self.settings.answer_margin
        pool = [c for c in cands[1:20] if c.score >= best.score - margin and not c.penalty]
        conflict = False
        groups: list[list[Candidate]] = [[best]]
        if kind in ("distance", "quantity", "time"):
            figs = {best.hit.article.article_id: _figures(best.text)}
            # Disagreeing figures may score a little lower (other wording): wider margin.
            wide = [c for c in cands[1:20] if c.score >= best.score - 2 * margin and not c.penalty]
            for c in wide:
                f = _figures(c.text)
                aid = c.hit.article.article_id
                if f and aid not in figs and holds_answer_type(c.text, kind) and all(f != g for g in figs.values() if g):
                    if any(f & g for g in figs.values()):
                        continue  # shares a figure: agreement, not conflict
                    figs[aid] = f
                    groups.append([c])
                    if len(groups) == 3:
                        break
            conflict = len(groups) > 1 and bool(figs[best.hit.article.article_id])
            if conflict:
                return groups, True
        for c in pool:
            if len(groups) == 3:
                break
            dup = next((g for g in groups if self._same_claim(g[0], c)), None)
            if dup is not None:
                if all(x.hit.article.article_id != c.hit.article.article_id for x in dup):
                    dup.append(c)  # another article says the same: list both markers
                continue
            if c.score >= best.score - margin / 2:
                groups.append([c])
        return groups, conflict

    def _with_next_sentence(self, c: Candidate, kind: str) -> Candidate:
        """Extend a sentence that sets up the answer with the next one that holds it.

        "... restarting the Tomahawk land mobile launcher program ..." matches the
        question; "The new system is called Typhoon ..." answers it.
        """
        if kind == "other" or holds_answer_type(c.text, kind):
            return c
        nxt = c.unit + 1
        units = self.store.units
        if nxt >= len(units) or units["article_row"][nxt] != units["article_row"][c.unit]:
            return c
        if not holds_answer_type(self.features.unit_text(nxt), kind):
            return c
        end = int(units["end"][nxt])
        text = self.store.article_text(int(units["article_row"][c.unit]))[c.start : end]
        return Candidate(c.unit, c.score, c.dense, c.coverage, c.hit, c.start, end, text, c.penalty, c.context_coverage)

    def _same_claim(self, a: Candidate, b: Candidate) -> bool:
        if a.unit == b.unit:
            return True
        va, vb = self.store.unit_vectors_f32(np.array([a.unit, b.unit]))
        if float(va @ vb) >= self.settings.duplicate_similarity:
            return True
        ta, tb = self.features.unit_terms(a.unit), self.features.unit_terms(b.unit)
        return bool(ta and tb) and len(ta & tb) / len(ta | tb) >= 0.6

    def _compose(self, groups: list[list[Candidate]]) -> tuple[str, list[Citation]]:
        citations: list[Citation] = []
        parts: list[str] = []
        for group in groups:
            markers = []
            for c in group:
                n = len(citations) + 1
                a = c.hit.article
                citations.append(
                    Citation(n, a.article_id, a.title, a.source, a.url, a.published_at, c.text, c.start, c.end,
                             c.hit.passage.passage_id, c.hit.passage.start, c.hit.passage.end,
                             list(c.hit.also_published_by))
                )
                markers.append(marker(n))
            parts.append(f"{' '.join(group[0].text.split())} {''.join(markers)}")
        return " ".join(parts), citations
