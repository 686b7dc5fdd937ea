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
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..retrieve.features import SentenceFeatures
from ..retrieve.params import SearchParams
from ..settings import Settings
from ..text.answer_kinds import answer_type, holds_answer_type
from ..types import Citation, ConflictingValue, SearchHit, ShortAnswer
from ..text.terms import sentence_terms, stopword_set
from .abstain import ABSTAIN_TEXT, evidence_strength
from .citations import marker
from ..retrieve.query import QueryAnalyzer, question_clauses
from .multi import Dated, asks_order, day_of, order_answer
from .spans import SpanTagger, default_tagger, expected_kind
from .values import Sentence, Value, best_logit, changed_part, conflicts, copy_conflicts, find_values, is_sound

_NAME_WORD = re.compile(r"\b[A-Z][\w'’.-]*[\w]")
# Sentences whose spans are weighed for the short answer.
VALUE_SENTENCES = 4
# Multi-article questions: sentences searched for each outlet or clue, and at most this many sides.
MULTI_CANDIDATES = 60
MAX_SIDES = 4
SIDE_EXTRA = 2  # further sentences weighed for the entity the sides agree on
# Best sentences kept on the answer for a reader model.
RANKED = 12
# Sentences searched for a copy of the answering sentence with the value changed.
COPY_CANDIDATES = 30
# Sentences of further articles weighed for a rival value.
EXTRA_ARTICLES = 1
# A quote that starts by pointing back ("He said ...") is shown with the sentence before it.
_POINTS_BACK = re.compile(r"^[\"“‘']?(He|She|They|It|His|Her|Their|Its|This|These|Those)\b")


@dataclass
class Extracted:
    """What the extractive answerer found (the chain wraps it in an :class:`~rag.types.Answer`)."""

    text: str
    citations: list[Citation]
    abstained: bool
    conflict: bool = False
    short_answer: ShortAnswer | None = None
    conflicting: list[ConflictingValue] = field(default_factory=list)
    confidence: float | None = None  # evidence strength the abstention threshold is compared with
    multi_article: bool = False  # answered per outlet or clue
    evidence: dict[str, float] = field(default_factory=dict)  # the abstention model's features
    # The best-scoring sentences, best first: what a reader model is shown (rag/answer/reader.py).
    ranked: list["Candidate"] = field(default_factory=list)


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


_NUM_TOKEN = re.compile(r"(?<![\w\[])\d[\d,.]*\d|(?<![\w\[])\d")


def _numbers(text: str) -> set[str]:
    return {m.group(0).replace(",", "") for m in _NUM_TOKEN.finditer(text)}



@lru_cache(maxsize=1024)
def _article_terms(text: str) -> frozenset[str]:
    return frozenset(sentence_terms(text))


class ExtractiveAnswerer:
    """Answers from the sentences of the retrieved passages, scored with the retriever's features."""

    def __init__(self, features: SentenceFeatures, settings: Settings, params: SearchParams | None = None,
                 tagger: SpanTagger | None = None, analyzer: QueryAnalyzer | None = None):
        self.features = features
        self.analyzer = analyzer  # the outlets of this index, to answer per outlet
        self.tagger = tagger or default_tagger()
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

    def answer(self, question: str, qvec: np.ndarray, hits: list[SearchHit], *,
               threshold: float | None = None) -> Extracted:
        """The answer: short answer first (factoid questions), then the cited sentences.

        ``threshold``: the evidence log-odds below which it abstains (default the
        setting); a reader that weighs the evidence itself passes ``-inf`` to get the
        composed answer with its confidence."""
        cands = self.candidates(question, qvec, hits)
        if not cands:
            return Extracted(ABSTAIN_TEXT, [], True)
        outlets = self.analyzer.sources_in(question) if self.analyzer is not None else []
        sides = self._sides(question, cands, outlets)
        kind, short_kind = answer_type(question), expected_kind(question)
        pool = self._value_pool(cands, kind)
        if len(sides) >= 2:
            # The sides' sentences and the best two others: the entity they agree on.
            shown = {c.unit for _, c, _ in sides}
            pool = [c for _, c, _ in sides] + [c for c in pool if c.unit not in shown][:SIDE_EXTRA]
        values = self._values(question, pool, short_kind)
        features = self.evidence(question, cands, sides, values)
        confidence = evidence_strength(features)
        limit = self.settings.abstain_threshold if threshold is None else threshold
        if confidence < limit:
            return Extracted(ABSTAIN_TEXT, [], True, confidence=confidence, multi_article=len(sides) >= 2,
                             evidence=features, ranked=cands[:RANKED])
        if len(sides) >= 2:
            found = self._answer_sides(question, sides, outlets, pool, values)
        else:
            found = self._answer(question, cands, pool, values)
        found.confidence, found.multi_article, found.evidence = confidence, len(sides) >= 2, features
        found.ranked = cands[:RANKED]
        return found

    def _values(self, question: str, pool: list[Candidate], short_kind: str) -> list[Value]:
        if short_kind == "none":
            return []
        return find_values(question, [self._sentence(c) for c in pool], self.tagger, short_kind)

    def evidence(self, question: str, cands: list[Candidate], sides: list, values: list[Value]) -> dict[str, float]:
        """The features the abstention model weighs (see rag/answer/abstain.py)."""
        best = cands[0]
        terms, idf = self.features.query_terms(question, with_unknown=True)
        known = set(self.features.query_terms(question)[0])
        total = float(idf.sum()) or 1.0
        unknown = sum(w for t, w in zip(terms, idf.tolist()) if t not in known) / total
        names = [w.lower() for w in _NAME_WORD.findall(question)[1:] if w.lower() not in stopword_set()]
        names = [n for n in dict.fromkeys(names) if len(n) > 2]
        if names:
            texts = " ".join(self._article_text(a) for a in dict.fromkeys(c.hit.article.article_id for c in cands[:3])).lower()
            near = " ".join(c.text for c in cands[:3]).lower()
            found = sum(n in texts for n in names) / len(names)
            in_sentence = sum(n in near for n in names) / len(names)
        else:
            found = in_sentence = 1.0
        # The question's words in the best articles as a whole: a question about another
        # article ("What organization is the IPCC a part of?") misses its rarest words there.
        article_terms = frozenset().union(*(_article_terms(self._article_text(a))
                                            for a in dict.fromkeys(c.hit.article.article_id for c in cands[:3])))
        present = [w for t, w in zip(terms, idf.tolist()) if t in article_terms]
        top_idf = self.features.unknown_idf
        missing = [w for t, w in zip(terms, idf.tolist()) if t not in article_terms]
        multi = len(sides) >= 2
        top = values[0] if values else None
        return {
            "article_coverage": sum(present) / total,
            "missing_rare": max(missing, default=0.0) / top_idf,
            "bias": 1.0,
            "dense": best.dense,
            "coverage": best.coverage,
            "context_coverage": best.context_coverage,
            "penalty": best.penalty,
            "unknown_words": unknown,
            "names_found": found,
            "names_in_sentence": in_sentence,
            "multi": float(multi),
            "sides_strength": float(np.mean([c.dense + cov for _, c, cov in sides])) if multi else 0.0,
            "short_answer": max(-5.0, min(10.0, best_logit(top))) / 10 if top is not None else 0.0,
            "agreement": min(3, len(top.articles) - 1) / 3 if top is not None else 0.0,
        }

    def _answer(self, question: str, cands: list[Candidate], pool: list[Candidate], values: list[Value]) -> Extracted:
        kind, short_kind = answer_type(question), expected_kind(question)
        sentences = [self._sentence(c) for c in pool]
        # Copies of the answering sentence further down (no tagging needed to compare them).
        units = {c.unit for c in pool}
        more = [c for c in cands[:COPY_CANDIDATES] if c.unit not in units]
        disagreeing = (copy_conflicts(values, sentences + [self._sentence(c) for c in more])
                       or conflicts(values, sentences, short_kind, self._article_text, self._similarity))
        pool = pool + more
        if disagreeing:
            return self._compose_conflict(disagreeing, pool)
        best_value = values[0] if values and is_sound(values[0]) else None
        if best_value is not None:
            # The sentence that holds the answer leads, whatever its rank among the topical ones.
            lead = pool[best_value.best[0]]
            cands = [lead] + [c for c in cands if c.unit != lead.unit]
        chosen = self._select(cands, kind)
        text, citations = self._compose(chosen)
        short = self._short_answer(best_value, pool, citations, short_kind) if best_value is not None else None
        if short is not None:
            text = f"{short.text} — {text}"
        return Extracted(text, citations, False, False, short)

    def _sides(self, question: str, cands: list[Candidate], outlets: list[str]) -> list[tuple[str, Candidate, float]]:
        """One sentence per outlet the question names, or else per clue it strings
        together: ``(label, sentence, its share of the question's or its clue's words)``."""
        # Dates a question names are publication days here, not figures a sentence must hold.
        top = [c for c in cands[:MULTI_CANDIDATES] if c.penalty < 0.5]
        sides: list[tuple[str, Candidate, float]] = []
        used: set[int] = set()
        if len(outlets) >= 2 or (outlets and question_clauses(question)):
            for name in outlets:
                sources = set(self.analyzer.sources_named(name))
                c = next((c for c in top if (c.hit.article.source or "").lower() in sources and c.unit not in used), None)
                if c is not None:
                    used.add(c.unit)
                    sides.append((c.hit.article.source or name, c, c.context_coverage))
            if len(sides) >= 2:
                return sides
            sides, used = [], set()
        clauses = question_clauses(question)
        if len(clauses) < 2 or not top:
            return []
        units = np.array([c.unit for c in top])
        articles_used: set[str] = set()
        for clause in clauses[:MAX_SIDES]:
            cov = self.features.coverage(clause, units)
            order = np.argsort(-(cov + 0.5 * np.array([c.dense for c in top])))
            # Prefer an article not shown yet: each clue is usually another article's.
            pick = next((top[i] for i in order if top[i].unit not in used and top[i].hit.article.article_id not in articles_used), None)
            if pick is None or cov[top.index(pick)] == 0:
                continue
            used.add(pick.unit)
            articles_used.add(pick.hit.article.article_id)
            sides.append((pick.hit.article.source or pick.hit.article.title, pick, float(cov[top.index(pick)])))
        return sides

    def _answer_sides(self, question: str, sides: list[tuple[str, Candidate, float]], outlets: list[str],
                      pool: list[Candidate], values: list[Value]) -> Extracted:
        """One cited sentence per outlet or clue, side by side; the entity they agree on
        first; for "did X report before Y?", which came first by the articles' dates."""
        short_kind = expected_kind(question)
        citations: list[Citation] = []
        parts: list[str] = []
        for label, c, _ in sides:
            c = self._readable(c)
            n = len(citations) + 1
            citations.append(self.citation(n, c))
            parts.append(f"{label}: {' '.join(c.text.split())} {marker(n)}")
        text = " · ".join(parts)
        if asks_order(question, outlets) and len(sides) >= 2:
            (o1, c1, _), (o2, c2, _) = sides[0], sides[1]
            said = order_answer(question, Dated(o1, 1, day_of(c1.hit.article.published_at)),
                                Dated(o2, 2, day_of(c2.hit.article.published_at)))
            if said:
                return Extracted(f"{said} {text}", citations, False)
        short = None
        if short_kind != "none":
            # An entity question: the value most articles give among the clues' sentences.
            if values and is_sound(values[0]):
                short = self._short_answer(values[0], pool, citations, short_kind)
                if short is None:  # held by a sentence not shown yet: show it too
                    i = values[0].best[0]
                    c = self._readable(pool[i])
                    n = len(citations) + 1
                    citations.append(self.citation(n, c))
                    text += f" · {c.hit.article.source or c.hit.article.title}: {' '.join(c.text.split())} {marker(n)}"
                    short = self._short_answer(values[0], pool, citations, short_kind)
        if short is not None:
            text = f"{short.text} — {text}"
        return Extracted(text, citations, False, False, short)

    def _article_text(self, article_id: str) -> str:
        return self.store.article_text(self.store.row_by_id[article_id])

    def _sentence(self, c: Candidate) -> Sentence:
        return Sentence(("text", c.text), c.text, c.start, c.hit.article.article_id, c.score,
                        c.context_coverage, c.unit)

    def _similarity(self, a: int, b: int) -> float:
        if a == b:
            return 1.0
        va, vb = self.store.unit_vectors_f32(np.array([a, b]))
        return float(va @ vb)

    def _value_pool(self, cands: list[Candidate], kind: str) -> list[Candidate]:
        """The sentences whose spans may hold the short answer: the best few, each
        extended by its next sentence when that one holds the asked kind."""
        best = cands[0].score
        pool: list[Candidate] = []
        per_article: dict[str, int] = {}
        texts: set[str] = set()
        for c in cands[:8 * VALUE_SENTENCES]:
            if len(texts) == VALUE_SENTENCES or c.score < best - 2 * self.settings.answer_margin:
                break
            aid = c.hit.article.article_id
            # At most two per article, so each article's value (a rival figure) gets a say.
            if c.penalty or per_article.get(aid, 0) >= 2:
                continue
            per_article[aid] = per_article.get(aid, 0) + 1
            pool.append(c)
            # Copies of one statement in several articles take one place (and are tagged once).
            texts.add(c.text)
        # Each other article's best sentence that can hold the asked kind, further
        # down: a rival value ("1,250-2,500km") is often worded away from the question.
        extra = 0
        for c in cands[: 8 * VALUE_SENTENCES]:
            if extra == EXTRA_ARTICLES or c.score < best - 4 * self.settings.answer_margin:
                break
            aid = c.hit.article.article_id
            if aid in per_article or c.penalty or kind == "other" or not holds_answer_type(c.text, kind):
                continue
            per_article[aid] = 1
            pool.append(c)
            extra += 1
        return [self._with_next_sentence(c, kind) for c in (pool or cands[:1])]

    def _short_answer(self, value: Value, pool: list[Candidate], citations: list[Citation], kind: str) -> ShortAnswer | None:
        """The value as a verbatim span of a cited quote (the first citation whose quote holds it)."""
        members = [value.best] + [(i, sp) for i, sp, _ in value.members]
        for i, span in members:
            c = pool[i]
            start, end = c.start + span.start, c.start + span.end
            for cit in citations:
                if cit.article_id == c.hit.article.article_id and cit.start <= start and end <= cit.end:
                    return ShortAnswer(span.text, cit.n, start, end, kind)
        return None

    def _compose_conflict(self, values: list[Value], pool: list[Candidate]) -> Extracted:
        """Every value with its outlet and marker: "BBC: 2,500 km [1] · The Moscow Times: 1,600 km [2]"."""
        citations: list[Citation] = []
        sentences: list[str] = []
        parts: list[str] = []
        conflicting: list[ConflictingValue] = []
        for v in values:
            ns, sources, dates = [], [], []
            seen_articles: set[str] = set()
            for i, _, _ in sorted(v.members, key=lambda m: -m[2]):
                c = pool[i]
                a = c.hit.article
                if a.article_id in seen_articles or len(ns) == 3:
                    continue
                seen_articles.add(a.article_id)
                c = self._readable(c)
                n = len(citations) + 1
                citations.append(self.citation(n, c))
                sentences.append(f"{' '.join(c.text.split())} {marker(n)}")
                ns.append(n)
                sources.append(a.source or a.title)
                if a.published_at:
                    dates.append(a.published_at)
            conflicting.append(ConflictingValue(v.text, ns, sources, min(dates) if dates else None))
            parts.append(f"{', '.join(dict.fromkeys(sources))}: {v.text} {''.join(marker(n) for n in ns)}")
        text = "The sources differ: " + " · ".join(parts) + ". " + " ".join(sentences)
        return Extracted(text, citations, False, True, None, conflicting)

    def citation(self, n: int, c: Candidate) -> Citation:
        a = c.hit.article
        return Citation(n, a.article_id, a.title, a.source, a.url, a.published_at, c.text, c.start, c.end,
                        c.hit.passage.passage_id, c.hit.passage.start, c.hit.passage.end,
                        list(c.hit.also_published_by), a.date_source)

    def _select(self, cands: list[Candidate], kind: str) -> list[list[Candidate]]:
        """Groups of sentences to show; each group is one sentence plus repeats of it."""
        best = self._with_next_sentence(cands[0], kind)
        margin = self.settings.answer_margin
        pool = [c for c in cands[1:20] if c.score >= best.score - margin and not c.penalty]
        groups: list[list[Candidate]] = [[best]]
        for c in pool:
            if len(groups) == 3:
                break
            dup = next((g for g in groups if self._same_claim(g[0], c)), None)
            if dup is not None:
                if all(x.hit.article.article_id != c.hit.article.article_id for x in dup):
                    dup.append(c)  # another article says the same: list both markers
                continue
            if c.score >= best.score - margin:
                groups.append([c])
        return groups

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
        if a.unit == b.unit or a.text == b.text:
            return True
        diff = changed_part(a.text, b.text)
        if diff is not None and re.search(r"[A-Z0-9]", a.text[diff[0][0]:diff[0][1]] + b.text[diff[1][0]:diff[1][1]]):
            return False  # one statement with a name or figure changed: both are shown
        va, vb = self.store.unit_vectors_f32(np.array([a.unit, b.unit]))
        if float(va @ vb) >= self.settings.duplicate_similarity:
            return True
        ta, tb = self.features.unit_terms(a.unit), self.features.unit_terms(b.unit)
        return bool(ta and tb) and len(ta & tb) / len(ta | tb) >= 0.6

    def _readable(self, c: Candidate) -> Candidate:
        """``c`` with the sentence before it when it opens with a pronoun ("He said ...")."""
        if not _POINTS_BACK.match(c.text):
            return c
        prev = c.unit - 1
        units = self.store.units
        row = int(units["article_row"][c.unit])
        if prev < 0 or int(units["article_row"][prev]) != row:
            return c
        start = int(units["start"][prev])
        text = self.store.article_text(row)[start : c.end]
        if len(text) > 700:
            return c
        return Candidate(c.unit, c.score, c.dense, c.coverage, c.hit, start, c.end, text, c.penalty, c.context_coverage)

    def _compose(self, groups: list[list[Candidate]]) -> tuple[str, list[Citation]]:
        citations: list[Citation] = []
        parts: list[str] = []
        groups = [[self._readable(c) for c in g] for g in groups]
        for group in groups:
            markers = []
            for c in group:
                n = len(citations) + 1
                citations.append(self.citation(n, c))
                markers.append(marker(n))
            parts.append(f"{' '.join(group[0].text.split())} {''.join(markers)}")
        return " ".join(parts), citations
