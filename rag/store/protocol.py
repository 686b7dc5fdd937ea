"""What retrieval and answering read from an index: the seam a second store plugs into.

:class:`~rag.store.snapshot.IndexSnapshot` (the local, embedded store: several
immutable segments read as one) is one implementation. Retrieval, the answerer and
the faces use only these members, so a store backed by a server (dense + BM25
candidates computed remotely) can be added without touching them.

Passages and sentence units are addressed by dense integer ids, stable for the
life of one store object (a snapshot): ``passages`` and ``units`` are structured
arrays with the fields of :data:`~rag.store.segment.PASSAGE_DTYPE` and
:data:`~rag.store.segment.UNIT_DTYPE`; ``article_row`` is the article's key.

What a server-backed store (Milvus and the like) implements:

* ``dense_scores`` may return None (it does for approximate local indexes too):
  retrieval then asks ``dense_search`` for each ranked list, with a boolean mask
  over the passages for the sub-searches restricted to one publisher or day; the
  masks are built from ``passages["article_row"]`` and the article metadata, so a
  server store turns one into a filter expression on its article rows.
* ``bm25_scores`` returns one score per passage: a server store with its own
  keyword search returns its top candidates' scores and zeros elsewhere.
* the tables (``passages``, ``units``, metadata) are what answers quote from; a
  server store keeps a local copy of them per snapshot, or fetches candidates' rows.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ..types import Article, Passage
from .manifest import Manifest


@runtime_checkable
class Store(Protocol):
    manifest: Manifest
    passages: np.ndarray  # PASSAGE_DTYPE: article_row, start, end, unit_lo, unit_hi
    units: np.ndarray  # UNIT_DTYPE: article_row, start, end
    meta_by_row: dict[int, Article]  # article metadata (text left empty) by article row
    row_by_id: dict[str, int]

    def __len__(self) -> int: ...

    # articles
    def articles(self) -> list[Article]: ...
    def article(self, article_id: str) -> Article: ...
    def article_text(self, row: int) -> str: ...
    def passage_counts(self) -> dict[str, int]: ...

    # passages and sentence units
    def passage(self, pid: int) -> Passage: ...
    def passage_meta(self, pid: int) -> Article: ...
    def passage_units(self, pid: int) -> range: ...
    def unit_vectors_f32(self, units) -> np.ndarray: ...
    def passage_vectors(self, pids) -> np.ndarray: ...

    # candidate search
    def dense_scores(self, qvec: np.ndarray) -> np.ndarray | None: ...
    def dense_search(self, qvec: np.ndarray, depth: int, mask: np.ndarray | None) -> tuple[list[int], list[float]]: ...
    def bm25_scores(self, tokens: list[str]) -> np.ndarray | None: ...
    def vocabulary(self) -> dict[str, int]: ...
    def term_idf(self) -> np.ndarray: ...

    def close(self) -> None: ...
