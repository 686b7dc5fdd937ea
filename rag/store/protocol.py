"""What retrieval and answering read from an index: the seam every store plugs into.

Two stores implement :class:`Store`: :class:`~rag.store.snapshot.IndexSnapshot`
(the local, embedded store: immutable segments read as one) and
:class:`~rag.store.milvus.snapshot.MilvusSnapshot` (a Milvus server computes the
dense and BM25 candidates). Retrieval, the answerer and the faces use only these
members and never ask which store they have.

Passages and sentence units are addressed by dense integer ids, stable for the
life of one store object (a snapshot). ``passages`` and ``units`` are structured
arrays with the fields of :data:`~rag.store.segment.PASSAGE_DTYPE` and
:data:`~rag.store.segment.UNIT_DTYPE` (``article_row`` is the article's key); they
hold a row for every id the store has handed out (the local store: all of them; a
server store: the candidates' articles, fetched when a search first returns one).
The units of one article have consecutive ids in text order, so the unit before or
after a sentence is ``u - 1`` / ``u + 1`` when its ``article_row`` is the same.

Candidate searches take a :class:`Scope` (what a search may return: the user's
filters, or one publisher or day for the sub-searches a question asks for) and a
depth, and return ranked ids with scores; a store evaluates the scope its own way
(the local store as boolean masks over its passages, a server store as a filter
expression), so searching whole-index arrays never crosses this seam.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Protocol, runtime_checkable

import numpy as np

from ..types import Article, Passage
from .manifest import Manifest


@dataclass(frozen=True)
class Scope:
    """The passages a candidate search may return; every field given must hold.

    Sources are compared lower-cased; days are ``date.toordinal()`` of an article's
    publication day, inclusive, and with a day bound undated articles are out.
    """

    article_ids: frozenset[str] | None = None
    sources: frozenset[str] | None = None  # lower-cased
    day_from: int | None = None
    day_to: int | None = None

    def is_empty(self) -> bool:
        return not (self.article_ids or self.sources or self.day_from is not None or self.day_to is not None)


class Candidates(Protocol):
    """Ranked candidates for one question (its vector and BM25 tokens), per scope.

    Made once per search: the local store computes the whole-index scores once and
    masks them for each scope; a server store sends one request per call.
    """

    def dense(self, depth: int, scope: Scope | None) -> tuple[list[int], list[float]]: ...
    def bm25(self, depth: int, scope: Scope | None) -> tuple[list[int], list[float]]: ...


@runtime_checkable
class Store(Protocol):
    manifest: Manifest  # what the index was built with; counts; generation
    passages: np.ndarray  # PASSAGE_DTYPE: article_row, start, end, unit_lo, unit_hi
    units: np.ndarray  # UNIT_DTYPE: article_row, start, end
    row_by_id: Mapping[str, int]  # article id -> article row (``in`` and ``[]``)

    def __len__(self) -> int: ...

    # articles
    def articles(self) -> list[Article]: ...
    def article(self, article_id: str) -> Article: ...
    def article_text(self, row: int) -> str: ...
    def passage_counts(self) -> dict[str, int]: ...
    def sources(self) -> list[str]: ...  # lower-cased publishers of the live articles

    # passages and sentence units
    def passage(self, pid: int) -> Passage: ...
    def passage_meta(self, pid: int) -> Article: ...
    def passage_units(self, pid: int) -> range: ...
    def unit_text(self, unit: int) -> str: ...
    def unit_vectors_f32(self, units) -> np.ndarray: ...
    def passage_vectors(self, pids) -> np.ndarray: ...

    # candidate search
    def candidates(self, qvec: np.ndarray | None, tokens: list[str] | None) -> Candidates: ...
    def any_in(self, scope: Scope) -> bool: ...
    def idf_of(self, terms: list[str]) -> dict[str, float]: ...  # BM25 IDF of the known terms

    # True when the next question should open a fresh snapshot (a server store's
    # cache of fetched passages is full); readers holding this one keep it.
    def outgrown(self) -> bool: ...
    def close(self) -> None: ...
