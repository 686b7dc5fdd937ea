"""Candidate searches of the local store: whole-index scores, masked per scope.

One :class:`LocalCandidates` per search: the question's dense and BM25 scores over
every passage are computed once (when first asked for) and each scope (the user's
filters, a publisher or a day the question names) is a boolean mask over them, so
the sub-searches of a question cost a masked top-k each. Approximate (HNSW)
segments have no whole-index dense scores: those searches go through faiss with
the mask as an ID selector.
"""

from __future__ import annotations

import numpy as np

from ..text.dates import parse_day
from ..types import Article
from .protocol import Scope


def top(scores: np.ndarray, depth: int) -> tuple[list[int], list[float]]:
    """The ``depth`` best ids of a score array, best first, with their scores."""
    if depth <= 0:
        return [], []
    best = np.argpartition(-scores, depth - 1)[:depth]
    best = best[np.argsort(-scores[best], kind="stable")]
    return best.tolist(), scores[best].tolist()


class RowFilters:
    """Per article row: lower-cased source and publication day, to turn a scope into a mask."""

    def __init__(self, meta_by_row: dict[int, Article], row_of: np.ndarray):
        max_row = max(meta_by_row) + 1 if meta_by_row else 0
        self.source_by_row = np.array(
            [(meta_by_row[r].source or "").lower() if r in meta_by_row else "" for r in range(max_row)], dtype=object
        )
        days = [parse_day(meta_by_row[r].published_at) if r in meta_by_row else None for r in range(max_row)]
        self.day_by_row = np.array([d.toordinal() if d else -1 for d in days], dtype=np.int64)
        self.row_of = row_of

    def mask(self, scope: Scope, row_by_id: dict[str, int]) -> np.ndarray:
        """Which passages the scope allows."""
        rows_ok = np.ones(len(self.source_by_row), dtype=bool)
        if scope.article_ids:
            wanted = {row_by_id[a] for a in scope.article_ids if a in row_by_id}
            rows_ok &= np.isin(np.arange(len(rows_ok)), list(wanted))
        if scope.sources:
            rows_ok &= np.isin(self.source_by_row, list(scope.sources))
        if scope.day_from is not None:
            rows_ok &= self.day_by_row >= scope.day_from
        if scope.day_to is not None:
            rows_ok &= (self.day_by_row >= 0) & (self.day_by_row <= scope.day_to)
        return rows_ok[self.row_of]


class LocalCandidates:
    """Dense and BM25 candidates of one question over a local snapshot."""

    def __init__(self, snapshot, qvec: np.ndarray | None, tokens: list[str] | None):
        self._snap = snapshot
        self._qvec = qvec
        self._tokens = tokens
        self._dense_all: np.ndarray | None = None
        self._dense_done = False
        self._bm25_all: np.ndarray | None = None
        self._bm25_done = False
        self._masks: dict[Scope, np.ndarray] = {}

    def _mask(self, scope: Scope | None) -> np.ndarray | None:
        if scope is None or scope.is_empty():
            return None
        got = self._masks.get(scope)
        if got is None:
            got = self._masks[scope] = self._snap.scope_mask(scope)
        return got

    def dense(self, depth: int, scope: Scope | None) -> tuple[list[int], list[float]]:
        if self._qvec is None:
            return [], []
        if not self._dense_done:
            self._dense_all = self._snap.dense_scores(self._qvec)
            self._dense_done = True
        mask = self._mask(scope)
        if self._dense_all is None:
            return self._snap.dense_search(self._qvec, depth, mask)
        scores = self._dense_all if mask is None else np.where(mask, self._dense_all, -np.inf)
        return top(scores, min(depth, len(scores) if mask is None else int(mask.sum())))

    def bm25(self, depth: int, scope: Scope | None) -> tuple[list[int], list[float]]:
        if self._tokens is None:
            return [], []
        if not self._bm25_done:
            self._bm25_all = self._snap.bm25_scores(self._tokens)
            self._bm25_done = True
        if self._bm25_all is None:
            return [], []
        mask = self._mask(scope)
        scores = np.where(mask, self._bm25_all, 0.0) if mask is not None else self._bm25_all
        return top(scores, min(depth, int((scores > 0).sum())))
