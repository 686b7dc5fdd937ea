"""Server-Sent Events: the wire format, and the chain's typed events as SSE events.

``POST /api/v1/ask`` with ``"stream": true`` sends one SSE event per chain event:

=========== ==========================================================
event       data (JSON)
=========== ==========================================================
``query``   ``{"query"}``: the standalone question used for retrieval
``passages````{"passages": [...]}``: the retrieved passages
``text``    ``{"text"}``: a chunk of answer text
``sources`` ``{"citations": [...]}``: the citations behind the markers
``done``    the complete Answer (as ``POST /api/v1/ask`` returns it)
``error``   a problem object, when answering fails after the stream began
=========== ==========================================================
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

from fastapi.sse import EventSourceResponse, format_sse_event

from rag.chain import DoneEvent, Event, PassagesEvent, QueryEvent, SourcesEvent, TextEvent

from .problems import event_problem


def sse(data: Any, event: str | None = None) -> bytes:
    return format_sse_event(data_str=json.dumps(data, ensure_ascii=False), event=event)


def chain_event(event: Event) -> tuple[str, dict[str, Any]]:
    """``(name, data)`` of one chain event."""
    if isinstance(event, QueryEvent):
        return "query", {"query": event.query}
    if isinstance(event, PassagesEvent):
        return "passages", {"passages": [p.to_dict() for p in event.passages]}
    if isinstance(event, TextEvent):
        return "text", {"text": event.text}
    if isinstance(event, SourcesEvent):
        return "sources", {"citations": [c.to_dict() for c in event.citations]}
    if isinstance(event, DoneEvent):
        return "done", event.answer.to_dict()
    raise TypeError(f"unknown chain event {type(event).__name__}")  # pragma: no cover - a new event type


async def ask_events(events: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            name, data = chain_event(event)
            yield sse(data, name)
    except Exception as exc:  # noqa: BLE001 - the status line is sent: report in the stream
        yield sse(event_problem(exc), "error")


def event_stream(body: AsyncIterator[bytes]) -> EventSourceResponse:
    # No buffering by proxies (nginx), so each event reaches the client as it is made.
    return EventSourceResponse(body, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
