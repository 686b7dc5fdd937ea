"""Dense, BM25 and hybrid retrieval over an :class:`IndexSnapshot`.

Hybrid (the default) fuses the dense and BM25 rankings with weighted reciprocal
rank fusion. Questions that name publishers ("according to TechCrunch ...")
also get one sub-search per named source, so that each source the question
needs is represented in the results (MultiHop-RAG asks exactly this way).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Literal, Sequence

import numpy as np

from .answer_types import answer_type, holds_answer_type, is_heading_or_question
from .embeddings import Embedder
from .errors import RagError
from .index import IndexSnapshot, faiss_single_thread
from .models import SearchHit
from .settings import Settings

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense", "bm25"]
# Bound on the cached term ids of sentence units (int32 each): 256 MB.
MAX_CACHED_TERM_IDS = 64_000_000
MODES = ("hybrid", "dense", "bm25")


# -- BM25 tokenisation (shared by indexing and querying) ------------------------

@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _stopwords() -> list[str]:
    # NLTK-style English list (includes question words such as "what", "who").
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return list(STOPWORDS_EN_PLUS)


def bm25_tokenize(texts: list[str]):
    import bm25s

    return bm25s.tokenize(texts, stemmer=_stemmer(), stopwords=_stopwords(), show_progress=False)


def bm25_query_tokens(query: str) -> list[str]:
    import bm25s

    return bm25s.tokenize(
        [query], stemmer=_stemmer(), stopwords=_stopwords(), return_ids=False, show_progress=False
    )[0]


_WORDS = re.compile(r"\w+(?:[-‐‑]\w+)*")
_HYPHEN = re.compile(r"[-‐‑]")


def sentence_terms(text: str) -> list[str]:
    """Stemmed content words for sentence-level matching, compounds kept whole.

    "long-range" stays one term so that a question about a missile's "range" is
    not answered by every sentence that mentions long-range missiles.
    """
    stem = _stemmer().stemWord
    stop = _stopword_set()
    out = []
    for w in _WORDS.findall(text.lower()):
        if not _HYPHEN.search(w):
            if len(w) > 1 and w not in stop:
                out.append(stem(w))
        else:
            out.append("-".join(stem(p) for p in _HYPHEN.split(w) if p))
    return list(dict.fromkeys(out))


# Words that frame a question rather than name its topic ("What is the name of ...").
_FRAMING = frozenset({"name", "call", "happen", "say", "said", "accord", "report", "mani", "much"})


@lru_cache(maxsize=1)
def _stopword_set() -> frozenset[str]:
    return frozenset(_stopwords())


# -- filters --------------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    article_ids: frozenset[str] | None = None
    sources: frozenset[str] | None = None  # compared case-insensitively
    date_from: date | None = None
    date_to: date | None = None

    def is_empty(self) -> bool:
        return not (self.article_ids or self.sources or self.date_from or self.date_to)


def _parse_day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None


_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_DAY_MONTH_YEAR = re.compile(rf"\b({_MONTHS})\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I)
_ISO_DAY = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
# Words about the articles rather than their content ("the article", "as reported
# by", "published on"); see Retriever.content_query. (Tried and dropped: also
# verbs such as "suggest"/"imply", and "story"/"coverage": no better.)
_FRAMING_PHRASES = re.compile(
    r"\b(?:the\s+)?(?:news\s+)?(?:articles?(?!\s+\d)|reports?|reported|published|news source|according to|as reported by|reported by)\b",
    re.I,
)


# Where one clue of a long question ends and the next begins: punctuation, relative
# pronouns, "while", "but also", an "and" that starts a new predicate ("... and is
# now cutting jobs"), and attributions ("according to The Verge"). (Tried: also
# every "and", "both"/"with", "after"/"despite"/"because": worse.)
_CLAUSE_BREAK = re.compile(
    r"[,;]|\b(?:that|which|who|while|whereas|but also|not only)\b"
    r"|\band (?=(?:is|was|has|had|also|the|a|an|its|their|that|which|who|does|did|were|are)\b)"
    r"|\b(?:as reported by|according to|reported by)\b",
    re.I,
)
# A clause must name this many content words to count as a clue of its own.
MIN_CLAUSE_TERMS = 3


def question_clauses(question: str) -> list[str]:
    """The clues of a question that strings several together, or [] for a single one.

    "Which company, covered by TechCrunch, is accused of altering the internet's
    appearance, and is now cutting 16% of its workforce?" asks about one entity
    through clues that different articles each answer; see Retriever.score_units.
    """
    parts = [p.strip() for p in _CLAUSE_BREAK.split(question)]
    clauses = [p for p in parts if len(sentence_terms(p)) >= MIN_CLAUSE_TERMS]
    return clauses if len(clauses) >= 2 else []


def dates_in(query: str) -> list[date]:
    """Calendar days a question names ("published on October 5, 2023", "2023-10-05")."""
    found: list[date] = []
    for m in _DAY_MONTH_YEAR.finditer(query):
        try:
            found.append(datetime.strptime(f"{m.group(1)} {m.group(2)} {m.group(3)}", "%B %d %Y").date())
        except ValueError:
            pass
    for m in _ISO_DAY.finditer(query):
        try:
            found.append(date(int(m.group(1)), int(m.group(2)), int(m.group(3))))
        except ValueError:
            pass
    return list(dict.fromkeys(found))


def parse_date_arg(value: str | None) -> date | None:
    """Parse a user-given date (YYYY-MM-DD) or raise a clear error."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RagError(f"Invalid date {value!r}: use YYYY-MM-DD.") from None


# -- retriever ------------------------------------------------------------------

@dataclass
class Timings:
    embed_ms: float = 0.0
    dense_ms: float = 0.0
    bm25_ms: float = 0.0
    fuse_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.embed_ms + self.dense_ms + self.bm25_ms + self.fuse_ms


@dataclass
class SearchResult:
    hits: list[SearchHit]
    timings: Timings = field(default_factory=Timings)
    query_vector: np.ndarray | None = None  # reused by the answerer (saves a model call)


class Retriever:
    """Search one index snapshot. Stateless per call, so safe to share across sessions."""

    def __init__(self, snapshot: IndexSnapshot, embedder: Embedder, settings: Settings):
        self.snap = snapshot
        self.embedder = embedder
        self.settings = settings
        self._row_of = snapshot.passages["article_row"]
        metas = snapshot.meta_by_row
        max_row = max(metas) + 1 if metas else 0
        # Per article row: lower-cased source and publication day, for filters.
        self._source_by_row = np.array([(metas[r].source or "").lower() if r in metas else "" for r in range(max_row)], dtype=object)
        self._day_by_row = np.array(
            [(_parse_day(metas[r].published_at).toordinal() if r in metas and _parse_day(metas[r].published_at) else -1) for r in range(max_row)],
            dtype=np.int64,
        )
        self._source_names = _source_names(s for s in self._source_by_row if s)
        # One alternation, longest names first, so "The Independent - Sports" is
        # found whole rather than as "The Independent".
        self._source_re = (
            re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, self._source_names)) + r")(?!\w)")
            if self._source_names
            else None
        )
        self._idf = self._compute_idf()
        # Per-sentence features, immutable per snapshot, so cached as they are first
        # needed: term sets (and the same as ids into a growing term table, so that
        # scoring thousands of sentences is a few numpy operations), heading flags
        # and, per answer kind, whether a sentence can hold that kind of answer.
        self._unit_terms: dict[int, frozenset[str]] = {}
        # Term ids of the units seen so far, as one flat array indexed by unit
        # (CSR without the row order): gathering thousands of units is then a
        # few numpy operations instead of a Python loop.
        self._term_ids: dict[str, int] = {}
        # int32: offsets stay below MAX_CACHED_TERM_IDS; two such arrays per unit
        # are allocated at every snapshot load, so half the width matters at scale.
        self._tid_pos = np.full(len(snapshot.units), -1, dtype=np.int32)
        self._tid_len = np.zeros(len(snapshot.units), dtype=np.int32)
        self._tid_flat = np.zeros(1 << 16, dtype=np.int32)
        self._tid_used = 0
        self._qterms: dict[str, tuple[list[str], np.ndarray]] = {}
        self._shares: dict[str, tuple[list[str], np.ndarray]] = {}
        self._cache_lock = threading.Lock()
        n_units = len(snapshot.units)
        self._heading = np.full(n_units, -1, dtype=np.int8)
        self._fits: dict[str, np.ndarray] = {}

    def _compute_idf(self) -> np.ndarray:
        """BM25 IDF per vocabulary term, from the document frequencies in the bm25s matrix."""
        bm = self.snap.bm25
        if bm is None:
            return np.zeros(0, dtype=np.float32)
        indptr = np.asarray(bm.scores["indptr"])
        # bm25s keeps a trailing "" entry in its vocabulary that has no column.
        df = np.zeros(len(bm.vocab_dict), dtype=np.float64)
        df[: len(indptr) - 1] = np.diff(indptr)
        n = float(bm.scores["num_docs"])
        return np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)

    # -- public ------------------------------------------------------------
    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        mode: Mode | None = None,
        filters: Filters | None = None,
        mmr: bool | None = None,
    ) -> SearchResult:
        query = (query or "").strip()
        if not query:
            raise RagError("The question is empty.")
        k = k or self.settings.top_k
        mode = mode or self.settings.retrieval_mode
        if mode not in MODES:
            raise RagError(f"Unknown retrieval mode {mode!r}: use one of {', '.join(MODES)}.")
        use_mmr = self.settings.mmr if mmr is None else mmr
        timings = Timings()
        n = len(self.snap)
        if n == 0:
            return SearchResult([], timings)
        mask = self._mask(filters) if filters and not filters.is_empty() else None
        if mask is not None and not mask.any():
            return SearchResult([], timings)

        depth = max(self.settings.candidates, k * 3)
        content = self.content_query(query)
        qvec = None
        if mode in ("hybrid", "dense"):
            # (Tried: embedding in a thread beside the BM25 half. No gain once the
            # rest of a search takes ~6 ms; the model already uses both cores.)
            t = time.perf_counter()
            qvec = self.embedder.embed_query(content)
            timings.embed_ms = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        dense_all = self._dense_scores(qvec) if qvec is not None else None
        timings.dense_ms += (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        bm25_all = self._bm25_scores(content) if mode in ("hybrid", "bm25") else None
        timings.bm25_ms += (time.perf_counter() - t) * 1000
        subs = self._metadata_masks(query) if mask is None and self.settings.metadata_subqueries else []
        # Best-sentence score per passage, shared by the sub-searches below: their
        # candidates mostly repeat the main search's, and scoring sentences is the
        # costliest step of a search.
        best: dict[int, float] = {}
        scores = self._ranked(content, qvec, bm25_all, dense_all, mode, depth, mask, timings, best)

        # Per-source and per-date sub-searches: a question naming several
        # publishers ("... according to TechCrunch and The Verge") or publication
        # days needs evidence from each; without this one loud source fills the list.
        if subs:
            t = time.perf_counter()
            lists = [scores]
            for sub in subs:
                lists.append(self._ranked(content, qvec, bm25_all, dense_all, mode, depth, sub, timings, best))
            orders = [sorted(sc, key=sc.get, reverse=True) for sc in lists]
            weights = [1.0] + [self.settings.subquery_weight] * len(subs)
            scores = _rrf(orders, weights, self.settings.rrf_k)
            timings.fuse_ms += (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        order = sorted(scores, key=scores.get, reverse=True)
        if self.settings.article_diversity < 1.0:
            order, scores = self._diversify(order, scores, k)
        if use_mmr and qvec is not None:
            order = self._mmr(qvec, order[: max(k * 4, 20)], k)
        hits = []
        for rank, pid in enumerate(order[:k], 1):
            hits.append(SearchHit(rank, float(scores[pid]), self.snap.passage(pid), self.snap.passage_meta(pid)))
        timings.fuse_ms += (time.perf_counter() - t) * 1000
        return SearchResult(hits, timings, qvec)

    def _diversify(self, order: list[int], scores: dict[int, float], k: int) -> tuple[list[int], dict[int, float]]:
        """Greedy re-ranking that discounts each further passage from an already listed article.

        Questions over news often need several articles (and a list of ten passages
        from one article repeats itself); a multiplicative discount keeps a clearly
        better second passage while letting other articles in.
        """
        decay = self.settings.article_diversity
        pool = order[: max(k * 5, 50)]
        seen: dict[int, int] = {}
        out: list[int] = []
        adjusted = dict(scores)
        rows = {pid: int(self._row_of[pid]) for pid in pool}
        while pool and len(out) < k:
            best = max(pool, key=lambda pid: scores[pid] * decay ** seen.get(rows[pid], 0))
            adjusted[best] = scores[best] * decay ** seen.get(rows[best], 0)
            out.append(best)
            pool.remove(best)
            seen[rows[best]] = seen.get(rows[best], 0) + 1
        taken = set(out)
        return out + [pid for pid in order if pid not in taken], adjusted

    def _metadata_masks(self, query: str) -> list[np.ndarray]:
        masks = [self._source_mask(self.sources_named(name)) for name in self.sources_in(query)]
        for day in dates_in(query):
            m = (self._day_by_row == day.toordinal())[self._row_of]
            if m.any():
                masks.append(m)
        return [m for m in masks if m.any()]

    def content_query(self, query: str) -> str:
        """The question as its content is matched: without the words that only say where to look.

        Publisher names and dates (with metadata sub-queries on, those are matched
        against each article's source and date, which is what they mean) and phrases
        about the articles themselves ("the article", "reported by", "published on")
        describe the collection, not the answer: passages do not talk about
        themselves. Left in, they pull the embedding towards any passage that
        mentions "TechCrunch", a date or a report, and add noise to BM25 and the
        sentence match. On MultiHop-RAG dev, matching the content alone took MRR@10
        from 0.696 to 0.722 and MAP@10 from 0.373 to 0.387, and shortens what is
        embedded (60 -> 49 word pieces), which the query embedding's latency follows.
        """
        text = query
        if self.settings.metadata_subqueries:
            spans = [m.span() for rx in (_DAY_MONTH_YEAR, _ISO_DAY) for m in rx.finditer(query)]
            lowered = query.lower()
            if self._source_re is not None and len(lowered) == len(query):  # same offsets
                spans += [m.span() for m in self._source_re.finditer(lowered)]
            keep, end = [], 0
            for a, b in sorted(spans):
                if a > end:
                    keep.append(query[end:a])
                end = max(end, b)
            keep.append(query[end:])
            text = re.sub(r"(?:['\"‘’“”]\s*){2,}", " ", " ".join(keep))  # quotes left empty
        # After the names are gone, so that "the TechCrunch article" goes whole.
        text = _FRAMING_PHRASES.sub(" ", text)
        text = re.sub(r"\s+([,.;:?!])", r"\1", " ".join(text.split()))
        # Nothing but names and framing ("TechCrunch, October 5, 2023"): match the question as asked.
        return text if len(sentence_terms(text)) >= 2 else query

    def sources_in(self, query: str) -> list[str]:
        """Publisher names from the index that the question mentions.

        A feed-style name ("Cnbc | World Business News Leader", "The Independent -
        Sports") is also found by its head ("CNBC", "The Independent"); a head shared
        by several feeds stands for all of them (see :meth:`sources_named`).
        """
        if self._source_re is None:
            return []
        return list(dict.fromkeys(m.group(0) for m in self._source_re.finditer(query.lower())))

    def sources_named(self, name: str) -> tuple[str, ...]:
        """The (lower-cased) sources a name found by :meth:`sources_in` stands for."""
        return self._source_names.get(name, ())

    # -- internals ---------------------------------------------------------
    def _ranked(self, query, qvec, bm25_all, dense_all, mode, depth, mask, timings, best: dict[int, float]) -> dict[int, float]:
        if mode == "dense":
            t = time.perf_counter()
            ids, sc = self._dense(qvec, depth, mask, dense_all)
            timings.dense_ms += (time.perf_counter() - t) * 1000
            return dict(zip(ids, sc))
        if mode == "bm25":
            t = time.perf_counter()
            ids, sc = self._bm25(bm25_all, depth, mask)
            timings.bm25_ms += (time.perf_counter() - t) * 1000
            return dict(zip(ids, sc))
        t = time.perf_counter()
        d_ids, _ = self._dense(qvec, depth, mask, dense_all)
        timings.dense_ms += (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        b_ids, _ = self._bm25(bm25_all, depth, mask)
        timings.bm25_ms += (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        # Third list: each candidate ranked by its best-matching sentence. A
        # passage embedding blurs a one-sentence fact into its neighbours; the
        # sentence vectors (stored at ingest) bring it back into focus.
        n = self.settings.sentence_candidates
        cands = list(dict.fromkeys(d_ids[:n] + b_ids[:n]))
        s_ids = self._by_best_sentence(query, qvec, cands, best)
        w = self.settings
        fused = _rrf([d_ids, b_ids, s_ids], [w.dense_weight, w.bm25_weight, w.sentence_weight], w.rrf_k)
        timings.fuse_ms += (time.perf_counter() - t) * 1000
        return fused

    def _by_best_sentence(self, query: str, qvec: np.ndarray, cands: list[int], best: dict[int, float]) -> list[int]:
        """``cands`` ordered by their best sentence's score; ``best`` caches scores per passage."""
        todo = [pid for pid in cands if pid not in best]
        if todo:
            p = self.snap.passages[np.array(todo)]
            lengths = p["unit_hi"] - p["unit_lo"]
            # Every candidate's unit ids lo..hi-1, back to back, without a Python loop.
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            idx = np.arange(int(lengths.sum())) - np.repeat(starts - p["unit_lo"], lengths)
            scores = self.score_units(query, qvec, idx)
            # Headings and questions match a question's topic but never answer it.
            scores = scores - 0.5 * self.units_are_headings(idx)
            best.update(zip(todo, np.maximum.reduceat(scores, starts).tolist()))
        return sorted(cands, key=best.__getitem__, reverse=True)

    # -- sentence scoring (shared with the extractive answerer) ------------------
    def query_terms(self, query: str, *, with_unknown: bool = False) -> tuple[list[str], np.ndarray]:
        """Content words of the question (see :func:`sentence_terms`) with their IDF.

        Words the index has never seen get the highest IDF when ``with_unknown``
        (a question about "population" over articles that never say it), and are
        dropped otherwise.
        """
        key = f"{int(with_unknown)}{query}"
        got = self._qterms.get(key)
        if got is not None:
            return got
        vocab = self.snap.bm25.vocab_dict if self.snap.bm25 is not None else {}
        top = float(self._idf.max()) if len(self._idf) else 1.0
        terms, idf = [], []
        for t in sentence_terms(query):
            if t in _FRAMING:
                continue
            parts = [vocab[p] for p in t.split("-") if p in vocab]
            if parts:
                terms.append(t)
                idf.append(max(float(self._idf[i]) for i in parts))
            elif with_unknown:
                terms.append(t)
                idf.append(top)
        got = (terms, np.array(idf, dtype=np.float32))
        if len(self._qterms) > 256:
            self._qterms.clear()
        self._qterms[key] = got
        return got

    def unit_terms(self, unit: int) -> frozenset[str]:
        """Stemmed words of a sentence unit (cached: answers reuse the same units)."""
        got = self._unit_terms.get(unit)
        if got is None:
            got = frozenset(sentence_terms(self.unit_text(unit)))
            if len(self._unit_terms) > 200_000:
                self._unit_terms.clear()
            self._unit_terms[unit] = got
        return got

    def unit_is_heading(self, unit: int) -> bool:
        return bool(self.units_are_headings(np.array([unit]))[0])

    def units_are_headings(self, units: np.ndarray) -> np.ndarray:
        """1.0 where the sentence unit is a heading or a question, else 0.0."""
        flags = self._heading[units]
        for i in np.flatnonzero(flags < 0):
            u = int(units[i])
            self._heading[u] = flags[i] = is_heading_or_question(self.unit_text(u))
        return flags.astype(np.float32)

    def units_fit(self, units: np.ndarray, kind: str) -> np.ndarray:
        """1.0 where the sentence unit can hold an answer of this kind (see answer_types)."""
        table = self._fits.get(kind)
        if table is None:
            table = self._fits.setdefault(kind, np.full(len(self._heading), -1, dtype=np.int8))
        fits = table[units]
        for i in np.flatnonzero(fits < 0):
            u = int(units[i])
            table[u] = fits[i] = holds_answer_type(self.unit_text(u), kind)
        return fits.astype(np.float32)

    def _term_id_runs(self, units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The units' distinct terms as ids, concatenated, and each unit's count."""
        # Stemming is the slow part: done outside the lock (unit_terms caches it).
        terms_of = {u: self.unit_terms(u) for u in np.unique(units[self._tid_pos[units] < 0]).tolist()}
        # Under the lock: term ids and array slots must be unique across threads,
        # and a reset must not happen between filling and gathering.
        with self._cache_lock:
            if self._tid_used + sum(map(len, terms_of.values())) > MAX_CACHED_TERM_IDS:
                self._tid_pos[:] = -1  # bounded memory on huge indexes: start over
                self._tid_used = 0
            ids = self._term_ids
            for u in np.unique(units[self._tid_pos[units] < 0]).tolist():
                terms = terms_of.get(u)
                got = [ids.setdefault(t, len(ids)) for t in (terms if terms is not None else self.unit_terms(u))]
                end = self._tid_used + len(got)
                if end > len(self._tid_flat):
                    self._tid_flat = np.concatenate([self._tid_flat, np.zeros(max(end, len(self._tid_flat)), dtype=np.int32)])
                self._tid_flat[self._tid_used : end] = got
                self._tid_len[u] = len(got)
                self._tid_pos[u] = self._tid_used
                self._tid_used = end
            lengths = self._tid_len[units].astype(np.int64)
            offsets = np.cumsum(lengths) - lengths
            idx = np.arange(int(lengths.sum())) + np.repeat(self._tid_pos[units].astype(np.int64) - offsets, lengths)
            return self._tid_flat[idx], lengths

    def unit_text(self, unit: int) -> str:
        u = self.snap.units[unit]
        return self.snap.article_text(int(u["article_row"]))[int(u["start"]) : int(u["end"])]

    def _share_weights(self, query: str) -> tuple[list[str], np.ndarray]:
        """The question's terms and, per column, the IDF weights whose sum over a
        sentence's terms is its share of: the whole question, then each clue.

        Clues (:func:`question_clauses`) count with ``clause_coverage`` when the
        question has two or more, each with at least :data:`MIN_CLAUSE_TERMS` words
        the index knows: a question that strings clues together is answered by
        articles that each hold one, and against the whole question such a sentence
        covers a small share.
        """
        got = self._shares.get(query)
        if got is not None:
            return got
        terms, idf = self.query_terms(query)
        cols: list[np.ndarray] = []
        if terms and idf.sum() > 0:
            cols.append(idf.astype(np.float64))
            if self.settings.clause_coverage:
                col_of = {t: j for j, t in enumerate(terms)}
                clues = [[col_of[t] for t in sentence_terms(c) if t in col_of] for c in question_clauses(query)]
                clues = [c for c in clues if len(c) >= MIN_CLAUSE_TERMS]
                if len(clues) >= 2:
                    for c in clues:
                        col = np.zeros(len(terms))
                        col[c] = idf[c]
                        cols.append(col)
        got = (terms, np.stack([c / c.sum() for c in cols], axis=1)) if cols else ([], np.zeros((0, 0)))
        if len(self._shares) > 256:
            self._shares.clear()
        self._shares[query] = got
        return got

    def score_units(self, query: str, qvec: np.ndarray, units: np.ndarray, dense: np.ndarray | None = None) -> np.ndarray:
        """Dense similarity of each sentence plus the IDF-weighted share of question words it holds.

        With ``clause_coverage``, the share is the best of the whole question's and
        each of its clues' (:func:`question_clauses`).

        Embeddings of a short question match topical sentences ("What are Tomahawk
        missiles?") as well as answering ones; the lexical share rewards sentences
        that hold the question's rare words ("range").
        """
        scores = self.snap.unit_vectors_f32(units) @ qvec if dense is None else dense  # dense: the same, precomputed
        terms, weights = self._share_weights(query)
        if terms and len(units):
            flat, lengths = self._term_id_runs(units)
            # Which question term (column) each of the units' term ids is, if any.
            column = np.full(int(flat.max(initial=0)) + 1, -1, dtype=np.int32)
            for j, t in enumerate(terms):
                tid = self._term_ids.get(t)
                if tid is not None and tid < len(column):
                    column[tid] = j
            col = column[flat]
            hit = col >= 0
            owner = np.repeat(np.arange(len(units)), lengths)
            holds = np.zeros((len(units), len(terms)), dtype=np.float64)
            holds[owner[hit], col[hit]] = 1.0
            lex = (holds @ weights).max(axis=1)
            scores = scores + self.settings.lexical_weight * lex.astype(np.float32)
        kind = answer_type(query)
        if kind != "other":
            scores = scores + self.settings.answer_type_weight * self.units_fit(units, kind)
        return scores

    def _dense_scores(self, qvec: np.ndarray) -> np.ndarray | None:
        """Inner product of the question with every passage, for an exact (flat) index.

        One pass over the stored vectors serves the main search and every sub-search
        (each a mask over it, as for BM25), where a faiss search per sub-search
        scans them all again: on MultiHop-RAG's 8,802 passages one pass plus two
        masked selections take 0.44 ms against 0.91 ms, on 50,000 4.4 against 10.4.
        Approximate indexes (HNSW, IVF) are searched through faiss instead: None.
        """
        import faiss

        if not isinstance(self.snap.faiss, faiss.IndexFlat):
            return None
        return np.asarray(self.snap.vectors) @ np.asarray(qvec, dtype=np.float32)

    def _dense(
        self, qvec: np.ndarray, depth: int, mask: np.ndarray | None, all_scores: np.ndarray | None = None
    ) -> tuple[list[int], list[float]]:
        if all_scores is not None:
            scores = all_scores if mask is None else np.where(mask, all_scores, -np.inf)
            return _top(scores, min(depth, len(scores) if mask is None else int(mask.sum())))
        import faiss

        depth = min(depth, len(self.snap))
        params = None
        if mask is not None:
            allowed = np.flatnonzero(mask).astype(np.int64)
            depth = min(depth, len(allowed))
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
        if depth == 0:
            return [], []
        with faiss_single_thread():
            sc, ids = self.snap.faiss.search(qvec.reshape(1, -1).astype(np.float32), depth, params=params)
        keep = ids[0] >= 0
        return ids[0][keep].tolist(), sc[0][keep].tolist()

    def _bm25_scores(self, query: str) -> np.ndarray | None:
        """BM25 score of every passage, computed once per search and shared by its sub-searches."""
        if self.snap.bm25 is None:
            return None
        tokens = [t for t in bm25_query_tokens(query) if t in self.snap.bm25.vocab_dict]
        return self.snap.bm25.get_scores(tokens) if tokens else None

    @staticmethod
    def _bm25(all_scores: np.ndarray | None, depth: int, mask: np.ndarray | None) -> tuple[list[int], list[float]]:
        if all_scores is None:
            return [], []
        scores = np.where(mask, all_scores, 0.0) if mask is not None else all_scores
        return _top(scores, min(depth, int((scores > 0).sum())))

    def _mask(self, f: Filters) -> np.ndarray:
        rows_ok = np.ones(len(self._source_by_row), dtype=bool)
        if f.article_ids:
            wanted = {self.snap.row_by_id[a] for a in f.article_ids if a in self.snap.row_by_id}
            rows_ok &= np.isin(np.arange(len(rows_ok)), list(wanted))
        if f.sources:
            lowered = {s.lower() for s in f.sources}
            rows_ok &= np.array([s in lowered for s in self._source_by_row], dtype=bool)
        if f.date_from:
            rows_ok &= self._day_by_row >= f.date_from.toordinal()
        if f.date_to:
            rows_ok &= (self._day_by_row >= 0) & (self._day_by_row <= f.date_to.toordinal())
        return rows_ok[self._row_of]

    def _source_mask(self, sources_lower: Sequence[str]) -> np.ndarray:
        return np.isin(self._source_by_row, sources_lower)[self._row_of]

    def _mmr(self, qvec: np.ndarray, cand: list[int], k: int) -> list[int]:
        lam = self.settings.mmr_lambda
        vecs = np.asarray(self.snap.vectors[np.array(sorted(cand))])
        pos = {pid: i for i, pid in enumerate(sorted(cand))}
        rel = vecs @ qvec
        chosen: list[int] = []
        remaining = list(cand)
        while remaining and len(chosen) < k:
            best, best_score = None, -1e9
            for pid in remaining:
                v = vecs[pos[pid]]
                red = max((float(v @ vecs[pos[c]]) for c in chosen), default=0.0)
                s = lam * float(rel[pos[pid]]) - (1 - lam) * red
                if s > best_score:
                    best, best_score = pid, s
            chosen.append(best)
            remaining.remove(best)
        return chosen + [c for c in cand if c not in chosen]


_FEED_SEPARATOR = re.compile(r"\s+[|\-\u2013\u2014:]\s+|:\s+")


def _source_names(sources) -> dict[str, tuple[str, ...]]:
    """Each name a question may use for a publisher, longest first, with the sources it means.

    Feed titles often append a section or slogan to the publisher ("The Roar |
    Sports Writers Blog"); questions name the publisher alone.
    """
    names: dict[str, set[str]] = {}
    for src in set(sources):
        if len(src) >= 3:
            names.setdefault(src, set()).add(src)
        head = _FEED_SEPARATOR.split(src, maxsplit=1)[0].strip()
        if head != src and len(head) >= 3:
            names.setdefault(head, set()).add(src)
    return {n: tuple(sorted(names[n])) for n in sorted(names, key=len, reverse=True)}


def _top(scores: np.ndarray, depth: int) -> tuple[list[int], list[float]]:
    """The ``depth`` best ids of a score array, best first, with their scores."""
    if depth <= 0:
        return [], []
    top = np.argpartition(-scores, depth - 1)[:depth]
    top = top[np.argsort(-scores[top], kind="stable")]
    return top.tolist(), scores[top].tolist()


def _rrf(orders: list[list[int]], weights: list[float], k: int) -> dict[int, float]:
    """Weighted reciprocal rank fusion of ranked id lists."""
    lists = [(np.asarray(o, dtype=np.int64), w) for o, w in zip(orders, weights) if len(o)]
    if not lists:
        return {}
    ids = np.concatenate([o for o, _ in lists])
    parts = np.concatenate([w / (k + np.arange(1, len(o) + 1, dtype=np.float64)) for o, w in lists])
    uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    sums = np.bincount(inverse, weights=parts)  # added in list order, as a loop would
    keep = np.argsort(first, kind="stable")  # first-seen order: ties stay in list order
    return dict(zip(uniq[keep].tolist(), sums[keep].tolist()))
