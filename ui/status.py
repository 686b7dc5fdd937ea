"""Server-wide state of the index (being built, loading, ready, failed) and the status line.

Not per user: every browser sees the same index. On first start with no index the
seed articles are indexed in a background thread; the page shows the progress and
questions asked meanwhile wait for it.
"""

from __future__ import annotations

import logging
import threading

from rag.engine import Engine
from rag.errors import RagError

from . import render

log = logging.getLogger("rag.ui")


class IndexStatus:
    def __init__(self) -> None:
        self.ready = threading.Event()
        self.message = "Starting…"
        self.error: str | None = None

    def wait(self, timeout: float) -> bool:
        return self.ready.wait(timeout)

    @property
    def settled(self) -> bool:
        """Ready or failed: nothing more will change by itself."""
        return self.ready.is_set() or bool(self.error)


def start_background(engine: Engine) -> IndexStatus:
    """Build the seed index if there is none, then load the index and the model, in a thread."""
    status = IndexStatus()

    def progress(stage: str, done: int, total: int) -> None:
        status.message = f"Indexing the seed articles: {stage} {done}/{total}…"

    def work() -> None:
        try:
            if not engine.has_index():
                status.message = "Indexing the seed articles (first start)…"
                engine.ensure_seed_index(progress=progress, show_progress=False)
            status.message = "Loading the index and the embedding model…"
            engine.retriever  # opens the index  # noqa: B018
            engine.query_embedder.warm_up()  # loads (first time: converts) the model
            status.message = "Ready."
            status.ready.set()
            log.info("index ready: %d articles", len(engine.articles()))
        except RagError as exc:
            status.error = str(exc)
            log.error("%s", exc)
        except Exception as exc:  # a bug: keep the traceback in the log, tell the page
            status.error = f"The index could not be loaded ({type(exc).__name__}: {exc})."
            log.exception("loading the index failed")

    threading.Thread(target=work, name="index-startup", daemon=True).start()
    return status


def index_version(engine: Engine, status: IndexStatus) -> int:
    """The live generation's number (-1 before the index is ready): changes on every ingest or delete."""
    if not status.ready.is_set():
        return -1
    try:
        return int(engine.snapshot.manifest.generation)
    except RagError:
        return -1


def status_html(engine: Engine, status: IndexStatus) -> str:
    if status.error and not status.ready.is_set():
        return render.status_message(status.error, error=True)
    if not status.ready.is_set():
        return render.status_message(f"{status.message} The chat works once this is done.")
    try:
        m = engine.snapshot.manifest
    except RagError as exc:
        return render.status_message(str(exc), error=True)
    return render.status_line(m.n_articles, m.n_passages)
