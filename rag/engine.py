"""The engine: one object the CLI, the UI and the evaluation script all use.

It owns what is expensive and shared (the embedding model, the open index) and
nothing per user: conversations and per-session settings live with the caller.
A new index generation is swapped in with a single reference assignment, so
concurrent readers keep a consistent snapshot.
"""

from __future__ import annotations

import logging
import threading
from functools import cached_property
from pathlib import Path
from typing import Iterable

from .embeddings import Embedder, create_embedder, create_query_embedder
from .errors import IndexLoadError
from .index import IndexSnapshot, current_generation, open_index
from .ingest import ProgressFn, ingest_articles, ingest_paths, remove_articles
from .models import Article, IngestReport
from .retrieval import Filters, Retriever, SearchResult
from .settings import Settings

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._retriever: Retriever | None = None

    @cached_property
    def embedder(self) -> Embedder:
        """Embeds passages at ingest (throughput matters: long batches)."""
        return create_embedder(self.settings)

    @cached_property
    def query_embedder(self) -> Embedder:
        """Embeds questions (latency matters: one short text); the same model as :attr:`embedder`.

        Loading it does not load the passage embedder unless both are one backend,
        so answering starts without the ingest-time model.
        """
        return create_query_embedder(self.settings, lambda: self.embedder)

    # -- index -------------------------------------------------------------
    @property
    def index_dir(self) -> Path:
        return Path(self.settings.index_dir)

    def has_index(self) -> bool:
        try:
            return self.index_dir.exists() and current_generation(self.index_dir) is not None
        except IndexLoadError:
            return True  # present but damaged: opening it reports how

    @property
    def retriever(self) -> Retriever:
        r = self._retriever
        if r is None:
            with self._lock:
                if self._retriever is None:
                    snap = open_index(self.index_dir, embedding_model=self.settings.embedding_model)
                    self._retriever = Retriever(snap, self.query_embedder, self.settings)
                r = self._retriever
        return r

    @property
    def snapshot(self) -> IndexSnapshot:
        return self.retriever.snap

    def reload(self) -> None:
        """Swap in the live generation (after an ingest by this or another process)."""
        snap = open_index(self.index_dir, embedding_model=self.settings.embedding_model)
        self._retriever = Retriever(snap, self.query_embedder, self.settings)

    # -- operations ----------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path], *, progress: ProgressFn | None = None, show_progress: bool = True) -> IngestReport:
        report = ingest_paths(paths, self.settings, self.embedder, progress=progress, show_progress=show_progress)
        if report.added:
            self.reload()
        return report

    def ingest_articles(self, articles: list[Article], *, show_progress: bool = True) -> IngestReport:
        report = ingest_articles(articles, self.settings, self.embedder, show_progress=show_progress)
        if report.added:
            self.reload()
        return report

    def remove(self, article_ids: list[str]) -> list[Article]:
        removed = remove_articles(article_ids, self.settings)
        self.reload()
        return removed

    def search(self, query: str, *, k: int | None = None, mode: str | None = None, filters: Filters | None = None, mmr: bool | None = None) -> SearchResult:
        return self.retriever.search(query, k=k, mode=mode, filters=filters, mmr=mmr)

    def articles(self) -> list[tuple[Article, int]]:
        snap = self.snapshot
        counts = snap.passage_counts()
        return [(a, counts.get(a.article_id, 0)) for a in snap.articles()]
