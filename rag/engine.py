"""The engine: one object the CLI, the UI, the API and the evaluation all use.

It owns what is expensive and shared (the embedding models, the open index) and
nothing per user: conversations and per-session settings live with the caller.
A new snapshot (after an ingest, delete or merge) is swapped in with a single
reference assignment, so a caller that took :attr:`Engine.retriever` keeps one
consistent snapshot for as long as it holds it (the chain takes one per question).

Parts are injected, not patched: ``Engine(settings, embedder=..., query_embedder=...)``
shares an already loaded model (tests, evaluation runs over several configurations).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Iterable

from .embed.base import Embedder
from .embed.factory import create_embedder, create_query_embedder
from .errors import IndexLoadError
from .ingest.feeds import FeedRefresher, add_feed, list_feeds, refresh_feeds, remove_feed
from .ingest.pipeline import ProgressFn, ingest_articles, ingest_paths, remove_articles
from .ingest.web import ingest_urls
from .retrieve.filters import Filters
from .retrieve.params import SearchParams
from .retrieve.retriever import Retriever, SearchResult
from .settings import Settings
from .store.merge import MergeResult, merge_pending
from .store.protocol import Store
from .store.writes import describe, open_store, store_exists
from .types import Article, FeedStatus, IngestReport, RefreshReport, WireCopy

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, settings: Settings, *, embedder: Embedder | None = None, query_embedder: Embedder | None = None):
        self.settings = settings
        # Re-entrant: opening the index (under the lock) loads the question model,
        # which may load the passage model (under the lock again).
        self._lock = threading.RLock()
        self._embedder = embedder
        self._query_embedder = query_embedder
        self._retriever: Retriever | None = None
        # Background merges (see rag.store.merge): one thread at a time, rerun when
        # a write lands while it runs.
        self._merge_thread: threading.Thread | None = None
        self._merge_again = False
        self._merged: list[MergeResult] = []

    # -- models ------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        """Embeds passages at ingest (throughput matters: long batches)."""
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    self._embedder = create_embedder(self.settings)
        return self._embedder

    @property
    def query_embedder(self) -> Embedder:
        """Embeds questions (latency matters: one short text); the same model as :attr:`embedder`.

        Loading it does not load the passage embedder unless both are one backend,
        so answering starts without the ingest-time model.
        """
        if self._query_embedder is None:
            made = create_query_embedder(self.settings, lambda: self.embedder)
            with self._lock:
                if self._query_embedder is None:
                    self._query_embedder = made
        return self._query_embedder

    # -- index -------------------------------------------------------------
    @property
    def index_dir(self) -> Path:
        return Path(self.settings.index_dir)

    @property
    def index_location(self) -> str:
        """Where the index is, for messages: its folder, or the Milvus server and prefix."""
        return describe(self.settings)

    def has_index(self) -> bool:
        try:
            return store_exists(self.settings)
        except IndexLoadError:
            return True  # present but damaged: opening it reports how

    @property
    def retriever(self) -> Retriever:
        """The retriever over the live snapshot; hold on to it to keep one view of the index."""
        r = self._retriever
        if r is None or r.store.outgrown():
            with self._lock:
                if self._retriever is None or self._retriever.store.outgrown():
                    # Readers holding the outgrown snapshot keep it until they finish.
                    self._retriever = self._open()
                r = self._retriever
        return r

    @property
    def snapshot(self) -> Store:
        return self.retriever.store

    def _open(self) -> Retriever:
        store = open_store(self.settings)
        return Retriever(store, self.query_embedder, self.search_params())

    def reload(self) -> None:
        """Swap in the live index (after a write by this or another process).

        Segments already open are shared with the new snapshot, so this opens only
        what changed. Nothing is opened when no snapshot was open yet (a command that
        only writes): the next use opens the live index.
        """
        if self._retriever is not None:
            self._retriever = self._open()

    def close(self) -> None:
        """Let go of the open index (before its folder is deleted); the next use reopens it."""
        with self._lock:
            r, self._retriever = self._retriever, None
        if r is not None:
            r.store.close()

    # -- operations ----------------------------------------------------------
    def ensure_seed_index(self, *, progress: ProgressFn | None = None, show_progress: bool = True) -> IngestReport | None:
        """First start: index the bundled seed articles when there is no index yet."""
        if self.has_index():
            return None
        log.info("no index at %s yet: indexing the seed articles in %s", self.index_location, self.settings.seeds_dir)
        report = self.ingest([self.settings.seeds_dir], progress=progress, show_progress=show_progress)
        log.info("seed articles: %s", report.summary())
        return report

    def ingest(self, paths: Iterable[str | Path], *, progress: ProgressFn | None = None, show_progress: bool = True) -> IngestReport:
        report = ingest_paths(paths, self.settings, self.embedder, progress=progress, show_progress=show_progress)
        if report.added or report.updated:
            self._written()
        return report

    def ingest_ray(self, paths: Iterable[str | Path], *, address: str | None = None, workers: int | None = None,
                   show_progress: bool = True) -> IngestReport:
        """Ingest on a Ray cluster (see rag.ingest.distributed); the same store and report as :meth:`ingest`."""
        from .ingest.distributed import ingest_paths_ray

        report = ingest_paths_ray(paths, self.settings, address=address, workers=workers, show_progress=show_progress)
        if report.added:
            self._written()
        return report

    def ingest_articles(self, articles: list[Article], *, show_progress: bool = True) -> IngestReport:
        report = ingest_articles(articles, self.settings, self.embedder, show_progress=show_progress)
        if report.added or report.updated:
            self._written()
        return report

    def remove(self, article_ids: list[str]) -> list[Article]:
        """Remove articles; returns them, text included (``ingest_articles`` puts them back)."""
        removed = remove_articles(article_ids, self.settings)
        self._written()
        return removed

    # -- merges ----------------------------------------------------------------
    def _written(self) -> None:
        self.reload()
        if self.settings.store != "local":
            return  # a server store compacts its own segments
        with self._lock:
            if self._merge_thread is not None and self._merge_thread.is_alive():
                self._merge_again = True
                return
            self._merge_thread = threading.Thread(target=self._merge_loop, name="rag-merge", daemon=True)
            self._merge_thread.start()

    def _merge_loop(self) -> None:
        """Merge segments in the background (see rag.store.merge); readers keep their snapshot."""
        while True:
            try:
                done = merge_pending(self.index_dir)
            except Exception as exc:  # noqa: BLE001 - a background thread: log, the index is unchanged
                log.warning("merging segments of %s failed (the index is unchanged): %s", self.index_dir, exc)
                done = []
            if done:
                with self._lock:
                    self._merged.extend(done)
                self.reload()
            with self._lock:
                if not self._merge_again:
                    return
                self._merge_again = False

    def wait_for_merges(self) -> list[MergeResult]:
        """Wait for background merges to finish; returns the merges done since the last call."""
        while True:
            t = self._merge_thread
            if t is None or not t.is_alive():
                break
            t.join()
        with self._lock:
            done, self._merged = self._merged, []
        return done

    def search_params(self, settings: Settings | None = None, **overrides) -> SearchParams:
        """Search parameters from ``settings`` (default: the engine's), with per-call overrides."""
        return SearchParams.from_settings(settings or self.settings, **overrides)

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        mode: str | None = None,
        filters: Filters | None = None,
        mmr: bool | None = None,
        params: SearchParams | None = None,
    ) -> SearchResult:
        p = (params or self.search_params()).but(top_k=k, retrieval_mode=mode, mmr=mmr)
        return self.retriever.search(query, p, filters=filters)

    def articles(self) -> list[tuple[Article, int]]:
        store = self.snapshot
        counts = store.passage_counts()
        return [(a, counts.get(a.article_id, 0)) for a in store.articles()]

    def also_published_by(self, article_id: str) -> tuple[WireCopy, ...]:
        """The other outlets' copies of an article's (wire) story."""
        return self.retriever.groups.copies(article_id)

    # -- news from the web (see docs/news-sources.md) --------------------------------
    def ingest_urls(self, urls: Iterable[str], *, show_progress: bool = True) -> IngestReport:
        """Fetch article pages (http/https) and add them; a changed page replaces its old version."""
        return ingest_urls(urls, self.settings, lambda arts: self.ingest_articles(arts, show_progress=show_progress))

    def feeds(self) -> list[FeedStatus]:
        """The subscribed feeds: last refresh, new and updated items, last error, next due."""
        return list_feeds(self.settings)

    def add_feed(self, url: str, every: str | int | None = None) -> FeedStatus:
        """Subscribe to an RSS/Atom feed or news sitemap (checked by fetching it once)."""
        return add_feed(self.settings, url, every)

    def remove_feed(self, url: str) -> None:
        """Unsubscribe; the feed's articles stay in the index."""
        remove_feed(self.settings, url)

    def refresh_feeds(self, urls: list[str] | None = None, *, due_only: bool = False,
                      show_progress: bool = False) -> RefreshReport:
        """Fetch new and changed items of the given feeds (default all; ``due_only``: those due)."""
        return refresh_feeds(self.settings, lambda arts: self.ingest_articles(arts, show_progress=show_progress),
                             urls, due_only=due_only)

    def feed_refresher(self, *, tick_s: float = 30.0) -> FeedRefresher:
        """The background service that refreshes due feeds (call ``start()`` / ``stop()``)."""
        return FeedRefresher(lambda: self.refresh_feeds(due_only=True), tick_s=tick_s)
