"""`rag serve`'s background feed refresh: the engine's :class:`~rag.ingest.feeds.FeedRefresher`,
started once the index is ready and stopped when the server shuts down.

Waiting for the index matters on a first start: the seed articles are being indexed
then, and a refresh that ingests meanwhile would race the status the page shows.
The refresher itself refreshes only the feeds that are due, logs each feed that
fails with its reason and goes on with the others; an exception in one round is
logged and the next round tries again.
"""

from __future__ import annotations

import logging
import threading

from api.service import Startup
from rag.engine import Engine
from rag.ingest.feeds import FeedRefresher

log = logging.getLogger("rag.server")

# How long shutdown waits for a refresh in progress before leaving it (the thread is a daemon).
STOP_TIMEOUT_S = 10.0


class BackgroundFeeds:
    def __init__(self, engine: Engine, startup: Startup):
        self.engine = engine
        self.startup = startup
        self.enabled = engine.settings.feed_refresh
        self.tick_s = engine.settings.feed_tick_s
        self.refresher: FeedRefresher | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._waiter: threading.Thread | None = None

    def start(self) -> None:
        if not self.enabled:
            log.info("feed refresh: off (RAG_FEED_REFRESH=false or --no-feed-refresh); "
                     "`rag feeds refresh` or the Library's \"Refresh now\" fetch new items")
            return
        log.info("feed refresh: on; feeds that are due are refreshed in the background (checked every %g s)",
                 self.tick_s)
        self._stop.clear()
        self._waiter = threading.Thread(target=self._start_when_ready, name="feed-refresh-start", daemon=True)
        self._waiter.start()

    def _start_when_ready(self) -> None:
        while not self._stop.is_set() and not self.startup.ready.wait(0.5):
            pass  # also after a failed start: a first upload can still make an index
        with self._lock:
            if not self._stop.is_set():
                self.refresher = self.engine.feed_refresher(tick_s=self.tick_s).start()

    @property
    def running(self) -> bool:
        return self.refresher is not None and self.refresher.running

    def stop(self) -> None:
        """Stop the refresher; a refresh in progress may finish for up to :data:`STOP_TIMEOUT_S`."""
        if not self.enabled:
            return
        with self._lock:
            self._stop.set()
            refresher = self.refresher
        if self._waiter is not None:
            self._waiter.join(STOP_TIMEOUT_S)
        if refresher is None:
            log.info("feed refresh stopped (it had not started)")
            return
        refresher.stop(STOP_TIMEOUT_S)
        if refresher.running:
            log.warning("feed refresh: a refresh still running after %g s was left to end with the process",
                        STOP_TIMEOUT_S)
        else:
            log.info("feed refresh stopped after %d rounds", refresher.runs)
