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
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

import numpy as np

from .answer_types import answer_type, holds_answer_type, is_heading_or_question
from .models import SearchHit
from .retrieval import Retriever
from .settings import Settings

ABSTAIN_TEXT = "The articles don't say — nothing in them answers this question."


@dataclass(frozen=True)
class Citation:
    """A numbered marker's target: a verbatim span ``quote == article.text[start:end]``."""

    n: int
    article_id: str
    title: str
    source: str | None
    url: str | None
    published_at: str | None
    quote: str
    start: int
    end: int
    passage_id: int | None = None
    # The passage the quote was found in, so a UI can show it with the quote highlighted.
    passage_start: int | None = None
    passage_end: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RelatedPassage:
    rank: int
    score: float
    article_id: str
    title: str
    source: str | None
    url: str | None
    published_at: str | None
    text: str
    start: int
    end: int
    passage_id: int

    @classmethod
    def from_hit(cls, hit: SearchHit) -> "RelatedPassage":
        a, p = hit.article, hit.passage
        return cls(hit.rank, round(float(hit.score), 6), a.article_id, a.title, a.source, a.url, a.published_at, p.text, p.start, p.end, p.passage_id)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    question: str
    query: str  # the standalone question used for retrieval
    answer: str  # text with [n] markers
    citations: list[Citation]
    abstained: bool
    related: list[RelatedPassage] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # stage -> milliseconds
    answerer: str = "extractive"
    flagged: bool = False  # an LLM answer left with no valid citation
    conflict: bool = False  # the articles disagree on what was asked

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["timings"] = {k: round(v, 2) for k, v in self.timings.items()}
        return d


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
    def __init__(self, retriever: Retriever, settings: Settings):
        self.r = retriever
        self.settings = settings

    def candidates(self, question: str, qvec: np.ndarray, hits: list[SearchHit]) -> list[Candidate]:
        seen: set[int] = set()
        units: list[int] = []
        owner: list[SearchHit] = []
        for h in hits:
            for u in self.r.snap.passage_units(h.passage.passage_id):
                if u not in seen:
                    seen.add(u)
                    units.append(u)
                    owner.append(h)
        if not units:
            return []
        arr = np.array(units)
        dense = self.r.snap.unit_vectors_f32(arr) @ qvec
        scores = self.r.score_units(question, qvec, arr, dense)
        coverage = self._coverage(question, arr)
        # An answer often follows the sentences that name the topic ("... the Tomahawk
        # land mobile launcher program ... The new system is called Typhoon"): give a
        # sentence half the credit for question words its two predecessors hold.
        rows = self.r.snap.units["article_row"]
        before = []
        for back in (1, 2):
            prev = np.maximum(arr - back, 0)
            before.append(np.where((arr - back >= 0) & (rows[prev] == rows[arr]), prev, -1))
        joint = self._coverage(question, arr, also=np.stack(before, axis=1))
        context = 0.5 * (joint - coverage)
        scores = scores + self.settings.lexical_weight * context
        required = _numbers(question)  # figures and years an answer must mention
        out = []
        for i, (u, h) in enumerate(zip(units, owner)):
            rec = self.r.snap.units[u]
            text = self.r.unit_text(u)
            penalty = 0.0
            if required and not required <= _numbers(text):
                penalty += 1.0  # the question names a figure or year this sentence lacks
            if is_heading_or_question(text):
                penalty += 0.5  # a heading or a question restates the topic, it does not answer
            # A small prior for passages the retriever ranked higher.
            s = float(scores[i]) - penalty + 0.1 / (1 + h.rank)
            out.append(
                Candidate(u, s, float(dense[i]), float(coverage[i]), h, int(rec["start"]), int(rec["end"]), text,
                          penalty, float(joint[i]))
            )
        out.sort(key=lambda c: c.score, reverse=True)
        return out

    def _coverage(self, question: str, units: np.ndarray, also: np.ndarray | None = None) -> np.ndarray:
        """IDF-weighted share of the question's words in each sentence (plus the
        sentences ``also[i]`` when given; -1 for none), counting words the index has
        never seen (e.g. "population") as missing."""
        terms, idf = self.r.query_terms(question, with_unknown=True)
        total = float(idf.sum())
        if not terms or total <= 0:
            return np.zeros(len(units), dtype=np.float32)
        pairs = list(zip(terms, idf.tolist()))
        out = np.zeros(len(units), dtype=np.float32)
        for i, u in enumerate(units):
            have = self.r.unit_terms(int(u))
            if also is not None:
                for extra in also[i]:
                    if extra >= 0:
                        have = have | self.r.unit_terms(int(extra))
            out[i] = sum(w for t, w in pairs if t in have) / total
        return out

    def confidence(self, question: str, best: Candidate) -> float:
        """Evidence strength of the best sentence, on the scale the threshold is calibrated on.

        Dense similarity plus the share of question words in the sentence (and, at
        half weight, with its predecessor); fitted with the abstention threshold on
        eval/questions/seeds.jsonl (see the README for the measured precision/recall).
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
        snap = self.r.snap
        if nxt >= len(snap.units) or snap.units["article_row"][nxt] != snap.units["article_row"][c.unit]:
            return c
        if not holds_answer_type(self.r.unit_text(nxt), kind):
            return c
        end = int(snap.units["end"][nxt])
        text = snap.article_text(int(snap.units["article_row"][c.unit]))[c.start : end]
        return Candidate(c.unit, c.score, c.dense, c.coverage, c.hit, c.start, end, text, c.penalty, c.context_coverage)

    def _same_claim(self, a: Candidate, b: Candidate) -> bool:
        if a.unit == b.unit:
            return True
        va = np.asarray(self.r.snap.unit_vectors[a.unit], dtype=np.float32)
        vb = np.asarray(self.r.snap.unit_vectors[b.unit], dtype=np.float32)
        if float(va @ vb) >= self.settings.duplicate_similarity:
            return True
        ta, tb = self.r.unit_terms(a.unit), self.r.unit_terms(b.unit)
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
                             c.hit.passage.passage_id, c.hit.passage.start, c.hit.passage.end)
                )
                markers.append(f"[{n}]")
            parts.append(f"{' '.join(group[0].text.split())} {''.join(markers)}")
        return " ".join(parts), citations


def sentence_chunks(text: str) -> Iterator[str]:
    """Split composed answer text into sentence-sized chunks for streaming."""
    parts = re.split(r"(?<=\])\s+", text)
    for i, part in enumerate(parts):
        yield part if i == len(parts) - 1 else part + " "
