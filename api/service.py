"""What every route shares: the engine, the answer chain, the worker threads, readiness.

Nothing per client lives here: conversations and per-request settings come with
each request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

from langchain_core.runnables import Runnable

from rag.chain import build_chain
from rag.engine import Engine
from rag.llm.models import answer_modes
from rag.retrieve.filters import Filters
from rag.settings import Settings

from .models import AskSettings, FiltersIn
from .problems import Problem
from .workers import Workers

# Seconds a client is told to wait before asking again while the index is being built.
RETRY_AFTER_S = 5


class Startup(Protocol):
    """How far the server's start is (built by whoever starts the process; see server/)."""

    ready: threading.Event
    message: str
    error: str | None


@dataclass
class Service:
    engine: Engine
    startup: Startup | None = None  # None: the index is opened on first use
    workers: Workers = field(default_factory=Workers)
    chain: Runnable = field(init=False)

    def __post_init__(self) -> None:
        self.chain = build_chain(self.engine)

    # -- readiness ---------------------------------------------------------------
    def state(self) -> tuple[str, str]:
        """``(status, message)``: ``ok``, ``starting`` (the index is being built or loaded) or ``error``."""
        s = self.startup
        if s is None:
            return ("ok", "Ready.") if self.engine.has_index() else ("error", f"No index at {self.engine.index_location}.")
        if s.ready.is_set():
            return "ok", "Ready."
        if s.error:
            return "error", s.error
        return "starting", s.message

    def require_index(self) -> None:
        """503 (with Retry-After while starting) unless the index can be read now."""
        status, message = self.state()
        if status == "starting":
            raise Problem(503, f"{message} Try again in a few seconds.", code="starting",
                          headers={"Retry-After": str(RETRY_AFTER_S)})
        if status == "error":
            raise Problem(503, message, code="index_unavailable")

    def index_written(self) -> None:
        """Articles were added: an index exists now, even where the start found none (an
        empty folder and no seed articles), so reads stop answering 503."""
        s = self.startup
        if s is not None and s.error and not s.ready.is_set():
            s.error = None
            s.ready.set()

    # -- per-request options -------------------------------------------------------
    def settings_for(self, asked: AskSettings | None) -> Settings:
        """The server's settings with this request's overrides (an LLM mode only if it is configured)."""
        base = self.engine.settings
        if asked is None:
            return base
        updates = asked.model_dump(exclude_none=True)
        mode = updates.get("answer_mode")
        if mode and mode not in answer_modes(base):
            raise Problem(400, f"Answer mode {mode!r} is not configured on this server; "
                               f"use one of: {', '.join(answer_modes(base))}.", code="mode_unavailable")
        return base.model_copy(update=updates) if updates else base


def filters_for(asked: FiltersIn | None) -> Filters | None:
    if asked is None:
        return None
    if asked.since and asked.until and asked.since > asked.until:
        raise Problem(400, f"filters.since ({asked.since}) is after filters.until ({asked.until}).", code="bad_filters")
    f = Filters(
        article_ids=frozenset(asked.article_ids) if asked.article_ids else None,
        sources=frozenset(asked.sources) if asked.sources else None,
        date_from=asked.since,
        date_to=asked.until,
    )
    return None if f.is_empty() else f
