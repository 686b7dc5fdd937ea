"""Dense, BM25 and hybrid retrieval over a :class:`~rag.store.protocol.Store`.

Hybrid (the default) fuses the dense and BM25 rankings with a third list, each
candidate ranked by its best sentence, by weighted reciprocal rank fusion.
Questions that name publishers ("according to TechCrunch ...") or days also get
one sub-search per named source or day, so that each source the question needs is
represented in the results (MultiHop-RAG asks exactly this way).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Sequence

import numpy as np

from ..embed.base import Embedder
from ..errors import RagError
from ..store.protocol import Store
from ..text.terms import bm25_query_tokens
from ..types import SearchHit
from .features import SentenceFeatures
from .filters import Filters, parse_day
from .fusion import diversify, mmr, rrf, top
from .groups import WireGroups
from .params import SearchParams
from .query import QueryAnalyzer, dates_in
from .timeframe import Period


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
    """Search one store snapshot. Stateless per call, so safe to share across sessions.

    ``features`` (the per-sentence features of the same snapshot) is public: the
    answerer scores sentences with the same object.
    """

    def __init__(self, store: Store, embedder: Embedder, defaults: SearchParams | None = None):
        self.store = store
        self.embedder = embedder
        self.defaults = defaults or SearchParams()
        self.features = SentenceFeatures(store)
        self._row_of = store.passages["article_row"]
        # Wire copies of one story count as one article in the diversity step.
        self.groups = WireGroups(store)
        self._group_of = self.groups.index_by_row[self._row_of] if len(self._row_of) else self._row_of
        metas = store.meta_by_row
        max_row = max(metas) + 1 if metas else 0
        # Per article row: lower-cased source and publication day, for filters.
        self._source_by_row = np.array([(metas[r].source or "").lower() if r in metas else "" for r in range(max_row)], dtype=object)
        days = [parse_day(metas[r].published_at) if r in metas else None for r in range(max_row)]
        self._day_by_row = np.array([d.toordinal() if d else -1 for d in days], dtype=np.int64)
        self.query = QueryAnalyzer(s for s in self._source_by_row if s)

    def content_query(self, query: str, params: SearchParams | None = None) -> str:
        """The question without the publisher names, dates and framing it only uses to say where to look."""
        p = params or self.defaults
        return self.query.content_query(query, strip_metadata=p.metadata_subqueries, strip_time=p.time_aware)

    def period(self, query: str, now: datetime) -> Period | None:
        """The days a time-aware question asks about ("last week", "since Monday", "latest"), or None."""
        return self.query.period(query, now)

    # -- public ------------------------------------------------------------
    def search(self, query: str, params: SearchParams | None = None, *, filters: Filters | None = None) -> SearchResult:
        p = params or self.defaults
        query = (query or "").strip()
        if not query:
            raise RagError("The question is empty.")
        k = p.top_k
        mode = p.retrieval_mode
        timings = Timings()
        if len(self.store) == 0:
            return SearchResult([], timings)
        mask = self._mask(filters) if filters and not filters.is_empty() else None
        if mask is not None and not mask.any():
            return SearchResult([], timings)

        depth = max(p.candidates, k * 3)
        content = self.content_query(query, p)
        qvec = None
        if mode in ("hybrid", "dense"):
            # (Tried: embedding in a thread beside the BM25 half. No gain once the
            # rest of a search takes ~6 ms; the model already uses both cores.)
            t = time.perf_counter()
            qvec = self.embedder.embed_query(content)
            timings.embed_ms = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        dense_all = self.store.dense_scores(qvec) if qvec is not None else None
        timings.dense_ms += (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        bm25_all = self.store.bm25_scores(bm25_query_tokens(content)) if mode in ("hybrid", "bm25") else None
        timings.bm25_ms += (time.perf_counter() - t) * 1000
        subs = self._metadata_masks(query) if mask is None and p.metadata_subqueries else []
        # Best-sentence score per passage, shared by the sub-searches below: their
        # candidates mostly repeat the main search's, and scoring sentences is the
        # costliest step of a search.
        best: dict[int, float] = {}
        scores = self._ranked(content, qvec, bm25_all, dense_all, p, depth, mask, timings, best)

        # Per-source and per-date sub-searches: a question naming several
        # publishers ("... according to TechCrunch and The Verge") or publication
        # days needs evidence from each; without this one loud source fills the list.
        if subs:
            t = time.perf_counter()
            lists = [scores]
            for sub in subs:
                lists.append(self._ranked(content, qvec, bm25_all, dense_all, p, depth, sub, timings, best))
            orders = [sorted(sc, key=sc.get, reverse=True) for sc in lists]
            weights = [1.0] + [p.subquery_weight] * len(subs)
            scores = rrf(orders, weights, p.rrf_k)
            timings.fuse_ms += (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        order = sorted(scores, key=scores.get, reverse=True)
        if filters is not None and filters.recent_first:
            order, scores = self._newest_first(order, k, p)
        if p.article_diversity < 1.0:
            order, scores = diversify(order, scores, self._group_of, k, p.article_diversity)
        if p.mmr and qvec is not None:
            cand = order[: max(k * 4, 20)]
            order = mmr(qvec, cand, self.store.passage_vectors(cand), k, p.mmr_lambda)
        hits = []
        for rank, pid in enumerate(order[:k], 1):
            meta = self.store.passage_meta(pid)
            hits.append(SearchHit(rank, float(scores[pid]), self.store.passage(pid), meta,
                                  self.groups.copies(meta.article_id)))
        timings.fuse_ms += (time.perf_counter() - t) * 1000
        return SearchResult(hits, timings, qvec)

    # -- internals ---------------------------------------------------------
    def _newest_first(self, order: list[int], k: int, p: SearchParams) -> tuple[list[int], dict[int, float]]:
        """"latest ...": fuse the relevance order with the same candidates ordered by
        publication day, newest first, so recent articles rise among the relevant ones."""
        pool = order[: max(k * 5, 50)]
        days = self._day_by_row[self._row_of[np.array(pool, dtype=np.int64)]] if pool else np.zeros(0)
        newest = [pool[i] for i in np.argsort(-days, kind="stable")]
        fused = rrf([order, newest], [1.0, 1.0], p.rrf_k)
        return sorted(fused, key=fused.get, reverse=True), fused

    def _metadata_masks(self, query: str) -> list[np.ndarray]:
        masks = [self._source_mask(self.query.sources_named(name)) for name in self.query.sources_in(query)]
        for day in dates_in(query):
            m = (self._day_by_row == day.toordinal())[self._row_of]
            if m.any():
                masks.append(m)
        return [m for m in masks if m.any()]

    def _ranked(self, query, qvec, bm25_all, dense_all, p: SearchParams, depth, mask, timings, best: dict[int, float]) -> dict[int, float]:
        if p.retrieval_mode == "dense":
            t = time.perf_counter()
            ids, sc = self._dense(qvec, depth, mask, dense_all)
            timings.dense_ms += (time.perf_counter() - t) * 1000
            return dict(zip(ids, sc))
        if p.retrieval_mode == "bm25":
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
        n = p.sentence_candidates
        cands = list(dict.fromkeys(d_ids[:n] + b_ids[:n]))
        s_ids = self._by_best_sentence(query, qvec, cands, best, p)
        fused = rrf([d_ids, b_ids, s_ids], [p.dense_weight, p.bm25_weight, p.sentence_weight], p.rrf_k)
        timings.fuse_ms += (time.perf_counter() - t) * 1000
        return fused

    def _by_best_sentence(self, query: str, qvec: np.ndarray, cands: list[int], best: dict[int, float], p: SearchParams) -> list[int]:
        """``cands`` ordered by their best sentence's score; ``best`` caches scores per passage."""
        todo = [pid for pid in cands if pid not in best]
        if todo:
            rows = self.store.passages[np.array(todo)]
            lengths = rows["unit_hi"] - rows["unit_lo"]
            # Every candidate's unit ids lo..hi-1, back to back, without a Python loop.
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            idx = np.arange(int(lengths.sum())) - np.repeat(starts - rows["unit_lo"], lengths)
            scores = self.features.score_units(query, qvec, idx, p)
            scores = scores - self.features.heading_penalty(idx)
            best.update(zip(todo, np.maximum.reduceat(scores, starts).tolist()))
        return sorted(cands, key=best.__getitem__, reverse=True)

    def _dense(
        self, qvec: np.ndarray, depth: int, mask: np.ndarray | None, all_scores: np.ndarray | None = None
    ) -> tuple[list[int], list[float]]:
        if all_scores is None:
            return self.store.dense_search(qvec, depth, mask)
        scores = all_scores if mask is None else np.where(mask, all_scores, -np.inf)
        return top(scores, min(depth, len(scores) if mask is None else int(mask.sum())))

    @staticmethod
    def _bm25(all_scores: np.ndarray | None, depth: int, mask: np.ndarray | None) -> tuple[list[int], list[float]]:
        if all_scores is None:
            return [], []
        scores = np.where(mask, all_scores, 0.0) if mask is not None else all_scores
        return top(scores, min(depth, int((scores > 0).sum())))

    def _mask(self, f: Filters) -> np.ndarray:
        rows_ok = np.ones(len(self._source_by_row), dtype=bool)
        if f.article_ids:
            wanted = {self.store.row_by_id[a] for a in f.article_ids if a in self.store.row_by_id}
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
