"""Which store the settings name, for reading and for writing: local folder or Milvus.

The ingest pipeline, the engine and `rag migrate` go through these three functions
and the :class:`Writer` they get, so neither knows which store it writes to.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Protocol, Sequence

import numpy as np

from ..errors import IndexLoadError
from ..settings import Settings
from ..types import Article
from .commit import writer_lock
from .manifest import Manifest, check_compatible
from .protocol import Store
from .writer import IndexSpec, IndexState, add_segment, delete_articles


class Writer(Protocol):
    """What an ingest or a delete needs from a store, under its writer lock."""

    manifest: Manifest | None  # None: no index yet

    def __contains__(self, article_id: str) -> bool: ...
    def check_model(self, embedding_model: str | None) -> None: ...
    def articles(self) -> list[Article]: ...  # metadata of the live articles (text empty)
    def text_of(self, article_id: str) -> str: ...
    def add(self, spec: IndexSpec, items: Sequence, vectors: np.ndarray, unit_vectors: np.ndarray,
            index_texts: list[str], *, replaces: Sequence[str] = ()) -> None: ...
    def delete(self, article_ids: list[str]) -> list[Article]: ...
    def where(self) -> str: ...


class LocalWriter:
    """The local store under its writer lock (see rag.store.writer)."""

    def __init__(self, root: Path):
        self.root = root
        self._state: IndexState | None = IndexState(root)
        self.manifest = self._state.manifest

    @property
    def state(self) -> IndexState:
        # Read again after a write: the next add builds on the manifest that write
        # committed (`rag ingest --ray` writes in batches under one writer lock).
        if self._state is None:
            self._state = IndexState(self.root)
            self.manifest = self._state.manifest
        return self._state

    def __contains__(self, article_id: str) -> bool:
        return article_id in self.state

    def where(self) -> str:
        return str(self.root)

    def check_model(self, embedding_model: str | None) -> None:
        if self.manifest is not None:
            check_compatible(self.manifest, self.root, embedding_model)

    def articles(self) -> list[Article]:
        return self.state.articles()

    def text_of(self, article_id: str) -> str:
        return self.state.text_of(article_id)

    def add(self, spec, items, vectors, unit_vectors, index_texts, *, replaces: Sequence[str] = ()) -> None:
        # The new versions' segment and the old versions' tombstones: one commit.
        self.manifest = add_segment(self.state, spec, items, vectors, np.asarray(unit_vectors, dtype=np.float16),
                                    index_texts, replaces=replaces)
        self._state = None

    def delete(self, article_ids: list[str]) -> list[Article]:
        if self.manifest is None:
            raise IndexLoadError(f"No index at {self.root}.")
        self.manifest, removed = delete_articles(self.state, article_ids)
        self._state = None
        return removed


class MilvusSpecWriter:
    """The Milvus writer taking the local store's IndexSpec (what an ingest knows of its index)."""

    def __init__(self, settings: Settings):
        from .milvus.writer import MilvusWriter

        self._w = MilvusWriter(settings)
        self.settings = settings
        self.manifest = self._w.manifest

    def __contains__(self, article_id: str) -> bool:
        return article_id in self._w

    def where(self) -> str:
        return self._w.where()

    def check_model(self, embedding_model: str | None) -> None:
        self._w.check_model(embedding_model)

    def articles(self) -> list[Article]:
        return self._w.articles()

    def text_of(self, article_id: str) -> str:
        return self._w.read_article(self._w.live_ids()[article_id]).text

    def seal(self) -> None:
        self._w.seal()

    def add(self, spec: IndexSpec, items, vectors, unit_vectors, index_texts, *, replaces: Sequence[str] = ()) -> None:
        from .milvus.collections import IndexRecord

        record = IndexRecord(spec.embedding_model, spec.embedding_backend, spec.dim, spec.chunk_max_tokens,
                             spec.chunk_overlap_tokens, spec.index_setting)
        self._w.add(record, items, vectors, unit_vectors, index_texts)
        self.manifest = self._w.manifest
        if replaces:
            # Not one commit here: the new version is committed first, then the old one
            # removed, so a crash in between leaves both versions, never neither.
            self._w.delete(list(replaces))

    def delete(self, article_ids: list[str]) -> list[Article]:
        if self.manifest is None:
            raise IndexLoadError(f"No index in {self.where()}.")
        return self._w.delete(article_ids)

    def finish_pending(self) -> None:
        self._w.finish_pending()


@contextmanager
def index_writer(settings: Settings) -> Iterator[Writer]:
    """The configured store, ready to write (the local store: under its writer lock)."""
    if settings.store == "milvus":
        writer = MilvusSpecWriter(settings)
        yield writer
        writer.seal()
        return
    root = Path(settings.index_dir)
    with writer_lock(root):
        yield LocalWriter(root)


def open_store(settings: Settings) -> Store:
    """A snapshot of the configured store, checked against the settings' embedding model."""
    if settings.store == "milvus":
        from .milvus.snapshot import open_milvus

        return open_milvus(settings, embedding_model=settings.embedding_model)
    from .snapshot import open_index

    return open_index(Path(settings.index_dir), embedding_model=settings.embedding_model)


def store_exists(settings: Settings) -> bool:
    """Whether the configured store holds an index (a damaged one counts: opening it says how)."""
    if settings.store == "milvus":
        from .milvus.collections import MilvusIndex

        return MilvusIndex.shared(settings).exists()
    from .layout import read_pointer

    root = Path(settings.index_dir)
    try:
        return root.is_dir() and read_pointer(root) is not None
    except IndexLoadError:
        return True


def describe(settings: Settings) -> str:
    """Where the configured store is, for messages."""
    if settings.store == "milvus":
        return f"Milvus {settings.milvus_uri} (collections {settings.milvus_prefix}*)"
    return str(settings.index_dir)
