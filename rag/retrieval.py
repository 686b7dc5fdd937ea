"""Dense, BM25 and hybrid retrieval over an :class:`IndexSnapshot`.

Hybrid (the default) fuses the dense and BM25 rankings with weighted reciprocal
rank fusion. Questions that name publishers ("according to TechCrunch ...")
also get one sub-search per named source, so that each source the question
needs is represented in the results (MultiHop-RAG asks exactly this way).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Literal, Sequence

import numpy as np

from .embeddings import Embedder
from .errors import RagError
from .index import IndexSnapshot
from .models import SearchHit
from .settings import Settings

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense", "bm25"]
MODES = ("hybrid", "dense", "bm25")


# -- BM25 tokenisation (shared by indexing and querying) ------------------------

@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def bm25_tokenize(texts: list[str]):
    import bm25s

    return bm25s.tokenize(texts, stemmer=_stemmer(), stopwords="en", show_progress=False)


def bm25_query_tokens(query: str) -> list[str]:
    import bm25s

    return bm25s.tokenize([query], stemmer=_stemmer(), stopwords="en", return_ids=False, show_progress=False)[0]


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
        self._sources = sorted({s for s in self._source_by_row if s}, key=len, reverse=True)

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
        qvec = None
        if mode in ("hybrid", "dense"):
            t = time.perf_counter()
            qvec = self.embedder.embed_query(query)
            timings.embed_ms = (time.perf_counter() - t) * 1000
        scores = self._ranked(query, qvec, mode, depth, mask, timings)

        # Per-source sub-searches: a question naming several publishers needs
        # evidence from each; without this one loud source can fill the list.
        named = self.sources_in(query) if mask is None else []
        if len(named) >= 1:
            t = time.perf_counter()
            lists = [scores]
            for src in named:
                sub = self._source_mask(src)
                lists.append(self._ranked(query, qvec, mode, depth, sub, timings))
            orders = [sorted(sc, key=sc.get, reverse=True) for sc in lists]
            scores = _rrf(orders, [1.0] * len(orders), self.settings.rrf_k)
            timings.fuse_ms += (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        order = sorted(scores, key=scores.get, reverse=True)
        if use_mmr and qvec is not None:
            order = self._mmr(qvec, order[: max(k * 4, 20)], k)
        hits = []
        for rank, pid in enumerate(order[:k], 1):
            hits.append(SearchHit(rank, float(scores[pid]), self.snap.passage(pid), self.snap.passage_meta(pid)))
        timings.fuse_ms += (time.perf_counter() - t) * 1000
        return SearchResult(hits, timings)

    def sources_in(self, query: str) -> list[str]:
        """Publisher names from the index that the question mentions."""
        q = query.lower()
        found: list[str] = []
        for src in self._sources:
            if len(src) < 3:
                continue
            if re.search(r"(?<!\w)" + re.escape(src) + r"(?!\w)", q) and not any(src in f for f in found):
                found.append(src)
        return found

    # -- internals ---------------------------------------------------------
    def _ranked(self, query, qvec, mode, depth, mask, timings) -> dict[int, float]:
        if mode == "dense":
            t = time.perf_counter()
            ids, sc = self._dense(qvec, depth, mask)
            timings.dense_ms += (time.perf_counter() - t) * 1000
            return dict(zip(ids, sc))
        if mode == "bm25":
            t = time.perf_counter()
            ids, sc = self._bm25(query, depth, mask)
            timings.bm25_ms += (time.perf_counter() - t) * 1000
            return dict(zip(ids, sc))
        t = time.perf_counter()
        d_ids, _ = self._dense(qvec, depth, mask)
        timings.dense_ms += (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        b_ids, _ = self._bm25(query, depth, mask)
        timings.bm25_ms += (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        # Third list: each candidate ranked by its best-matching sentence. A
        # passage embedding blurs a one-sentence fact into its neighbours; the
        # sentence vectors (stored at ingest) bring it back into focus.
        cands = list(dict.fromkeys(d_ids + b_ids))
        s_ids = self._by_best_sentence(qvec, cands)
        fused = _rrf([d_ids, b_ids, s_ids], [1.0, 1.0, 1.0], self.settings.rrf_k)
        timings.fuse_ms += (time.perf_counter() - t) * 1000
        return fused

    def _by_best_sentence(self, qvec: np.ndarray, cands: list[int]) -> list[int]:
        if not cands:
            return []
        p = self.snap.passages[np.array(cands)]
        lo, hi = p["unit_lo"], p["unit_hi"]
        lengths = hi - lo
        idx = np.repeat(lo, lengths) + (np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths))
        sims = np.asarray(self.snap.unit_vectors[idx], dtype=np.float32) @ qvec
        best = np.maximum.reduceat(sims, np.concatenate([[0], np.cumsum(lengths)[:-1]]))
        order = np.argsort(-best, kind="stable")
        return [cands[i] for i in order]

    def _dense(self, qvec: np.ndarray, depth: int, mask: np.ndarray | None) -> tuple[list[int], list[float]]:
        import faiss

        depth = min(depth, len(self.snap))
        params = None
        if mask is not None:
            allowed = np.flatnonzero(mask).astype(np.int64)
            depth = min(depth, len(allowed))
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
        if depth == 0:
            return [], []
        sc, ids = self.snap.faiss.search(qvec.reshape(1, -1).astype(np.float32), depth, params=params)
        keep = ids[0] >= 0
        return ids[0][keep].tolist(), sc[0][keep].tolist()

    def _bm25(self, query: str, depth: int, mask: np.ndarray | None) -> tuple[list[int], list[float]]:
        if self.snap.bm25 is None:
            return [], []
        tokens = [t for t in bm25_query_tokens(query) if t in self.snap.bm25.vocab_dict]
        if not tokens:
            return [], []
        scores = self.snap.bm25.get_scores(tokens)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        depth = min(depth, int((scores > 0).sum()))
        if depth == 0:
            return [], []
        top = np.argpartition(-scores, depth - 1)[:depth]
        top = top[np.argsort(-scores[top], kind="stable")]
        return top.tolist(), scores[top].tolist()

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

    def _source_mask(self, source_lower: str) -> np.ndarray:
        return (self._source_by_row == source_lower)[self._row_of]

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


def _rrf(orders: list[list[int]], weights: list[float], k: int) -> dict[int, float]:
    """Weighted reciprocal rank fusion of ranked id lists."""
    fused: dict[int, float] = {}
    for order, w in zip(orders, weights):
        for rank, pid in enumerate(order, 1):
            fused[pid] = fused.get(pid, 0.0) + w / (k + rank)
    return fused
