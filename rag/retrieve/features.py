"""Per-sentence features of one index snapshot, shared by retrieval and the answerer.

Sentence units are what answers quote and what the retriever re-scores candidates
by. Their features are immutable per snapshot, so they are computed when first
needed and cached here: stemmed term sets (also as ids into a growing term table,
so scoring thousands of sentences is a few numpy operations), heading flags and,
per answer kind, whether a sentence can hold that kind of answer.

One object per snapshot: the retriever and the extractive answerer hold the same
one, so a sentence is stemmed and classified once.
"""

from __future__ import annotations

import threading

import numpy as np

from ..store.protocol import Store
from ..text.answer_kinds import answer_type, holds_answer_type, is_heading_or_question
from ..text.terms import FRAMING_TERMS, sentence_terms
from .params import SearchParams
from .query import MIN_CLAUSE_TERMS, question_clauses

# Bound on the cached term ids of sentence units (int32 each): 256 MB.
MAX_CACHED_TERM_IDS = 64_000_000
# Headings and questions match a question's topic but never answer it.
HEADING_PENALTY = 0.5
_UNSEEN = object()


class SentenceFeatures:
    """Features of the sentence units of ``store``. Thread-safe; caches are bounded."""

    def __init__(self, store: Store):
        self.store = store
        # A word no passage holds (document frequency 0) weighs what BM25's IDF gives
        # df = 0, above every indexed word. The abstention model was fitted with this
        # weight (bm25s's vocabulary carried one such empty term), so it is kept exact.
        n = float(len(store))
        self.unknown_idf = float(np.float32(np.log(1.0 + (n + 0.5) / 0.5))) if n else 1.0
        self._idf: dict[str, float | None] = {}  # BM25 IDF per term asked about (None: unknown)
        self._unit_terms: dict[int, frozenset[str]] = {}
        # Term ids of the units seen so far, as one flat array indexed by unit
        # (CSR without the row order): gathering thousands of units is then a
        # few numpy operations instead of a Python loop.
        self._term_ids: dict[str, int] = {}
        # int32: offsets stay below MAX_CACHED_TERM_IDS; two such arrays per unit
        # are allocated at every snapshot load, so half the width matters at scale.
        n_units = len(store.units)
        self._tid_pos = np.full(n_units, -1, dtype=np.int32)
        self._tid_len = np.zeros(n_units, dtype=np.int32)
        self._tid_flat = np.zeros(1 << 16, dtype=np.int32)
        self._tid_used = 0
        self._qterms: dict[str, tuple[list[str], np.ndarray]] = {}
        self._shares: dict[tuple[bool, str], tuple[list[str], np.ndarray]] = {}
        self._cache_lock = threading.Lock()
        self._heading = np.full(n_units, -1, dtype=np.int8)
        self._fits: dict[str, np.ndarray] = {}

    def _cover_units(self) -> None:
        """Grow the per-unit caches to the store's unit table (a server store's grows
        as searches bring in new articles; the local store's never does)."""
        n = len(self.store.units)
        if n <= len(self._heading):
            return
        with self._cache_lock:
            extra = n - len(self._heading)
            if extra <= 0:
                return
            self._tid_pos = np.concatenate([self._tid_pos, np.full(extra, -1, dtype=np.int32)])
            self._tid_len = np.concatenate([self._tid_len, np.zeros(extra, dtype=np.int32)])
            for kind, table in list(self._fits.items()):
                self._fits[kind] = np.concatenate([table, np.full(extra, -1, dtype=np.int8)])
            self._heading = np.concatenate([self._heading, np.full(extra, -1, dtype=np.int8)])

    # -- sentences -------------------------------------------------------------
    def unit_text(self, unit: int) -> str:
        return self.store.unit_text(unit)

    def unit_terms(self, unit: int) -> frozenset[str]:
        """Stemmed words of a sentence unit (cached: answers reuse the same units)."""
        got = self._unit_terms.get(unit)
        if got is None:
            got = frozenset(sentence_terms(self.unit_text(unit)))
            if len(self._unit_terms) > 200_000:
                self._unit_terms.clear()
            self._unit_terms[unit] = got
        return got

    def units_are_headings(self, units: np.ndarray) -> np.ndarray:
        """1.0 where the sentence unit is a heading or a question, else 0.0."""
        self._cover_units()
        flags = self._heading[units]
        for i in np.flatnonzero(flags < 0):
            u = int(units[i])
            self._heading[u] = flags[i] = is_heading_or_question(self.unit_text(u))
        return flags.astype(np.float32)

    def heading_penalty(self, units: np.ndarray) -> np.ndarray:
        """What a heading or a question loses in any sentence ranking (it restates, not answers)."""
        return HEADING_PENALTY * self.units_are_headings(units)

    def units_fit(self, units: np.ndarray, kind: str) -> np.ndarray:
        """1.0 where the sentence unit can hold an answer of this kind (see answer_kinds)."""
        self._cover_units()
        table = self._fits.get(kind)
        if table is None:
            table = self._fits.setdefault(kind, np.full(len(self._heading), -1, dtype=np.int8))
        fits = table[units]
        for i in np.flatnonzero(fits < 0):
            u = int(units[i])
            table[u] = fits[i] = holds_answer_type(self.unit_text(u), kind)
        return fits.astype(np.float32)

    # -- questions ---------------------------------------------------------------
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
        top = self.unknown_idf
        words = [t for t in sentence_terms(query) if t not in FRAMING_TERMS]
        known = self._idf_of({p for t in words for p in t.split("-")})
        terms, idf = [], []
        for t in words:
            parts = [known[p] for p in t.split("-") if known.get(p) is not None]
            if parts:
                terms.append(t)
                idf.append(max(parts))
            elif with_unknown:
                terms.append(t)
                idf.append(top)
        got = (terms, np.array(idf, dtype=np.float32))
        if len(self._qterms) > 256:
            self._qterms.clear()
        self._qterms[key] = got
        return got

    def _idf_of(self, words: set[str]) -> dict[str, float | None]:
        """BM25 IDF of these words (None: not in the index), asked of the store once per word."""
        out = {w: self._idf.get(w, _UNSEEN) for w in words}
        todo = sorted(w for w, v in out.items() if v is _UNSEEN)
        if todo:
            got = self.store.idf_of(todo)
            fresh = {w: got.get(w) for w in todo}
            if len(self._idf) > 100_000:
                self._idf.clear()
            self._idf.update(fresh)
            out.update(fresh)
        return out

    def coverage(self, question: str, units: np.ndarray, also: np.ndarray | None = None) -> np.ndarray:
        """IDF-weighted share of the question's words in each sentence (plus the
        sentences ``also[i]`` when given; -1 for none), counting words the index has
        never seen (e.g. "population") as missing."""
        terms, idf = self.query_terms(question, with_unknown=True)
        total = float(idf.sum())
        if not terms or total <= 0:
            return np.zeros(len(units), dtype=np.float32)
        pairs = list(zip(terms, idf.tolist()))
        out = np.zeros(len(units), dtype=np.float32)
        for i, u in enumerate(units):
            have = self.unit_terms(int(u))
            if also is not None:
                for extra in also[i]:
                    if extra >= 0:
                        have = have | self.unit_terms(int(extra))
            out[i] = sum(w for t, w in pairs if t in have) / total
        return out

    def _term_id_runs(self, units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The units' distinct terms as ids, concatenated, and each unit's count."""
        self._cover_units()
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

    def _share_weights(self, query: str, clause_coverage: bool) -> tuple[list[str], np.ndarray]:
        """The question's terms and, per column, the IDF weights whose sum over a
        sentence's terms is its share of: the whole question, then each clue.

        Clues (:func:`question_clauses`) count with ``clause_coverage`` when the
        question has two or more, each with at least :data:`MIN_CLAUSE_TERMS` words
        the index knows: a question that strings clues together is answered by
        articles that each hold one, and against the whole question such a sentence
        covers a small share.
        """
        got = self._shares.get((clause_coverage, query))
        if got is not None:
            return got
        terms, idf = self.query_terms(query)
        cols: list[np.ndarray] = []
        if terms and idf.sum() > 0:
            cols.append(idf.astype(np.float64))
            if clause_coverage:
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
        self._shares[(clause_coverage, query)] = got
        return got

    def score_units(
        self, query: str, qvec: np.ndarray, units: np.ndarray, params: SearchParams, dense: np.ndarray | None = None
    ) -> np.ndarray:
        """Dense similarity of each sentence plus the IDF-weighted share of question words it holds.

        With ``clause_coverage``, the share is the best of the whole question's and
        each of its clues' (:func:`question_clauses`).

        Embeddings of a short question match topical sentences ("What are Tomahawk
        missiles?") as well as answering ones; the lexical share rewards sentences
        that hold the question's rare words ("range").
        """
        scores = self.store.unit_vectors_f32(units) @ qvec if dense is None else dense  # dense: the same, precomputed
        terms, weights = self._share_weights(query, params.clause_coverage)
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
            scores = scores + params.lexical_weight * lex.astype(np.float32)
        kind = answer_type(query)
        if kind != "other":
            scores = scores + params.answer_type_weight * self.units_fit(units, kind)
        return scores
