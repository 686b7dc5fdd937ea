"""Request-size limits of the API's routes, answered with a 413 problem object.

A body whose ``Content-Length`` is over the route's limit is refused before any of
it is read; a body without one (chunked) is counted as it arrives and refused
once it passes the limit. Paths outside the API (the browser app) are left alone.
"""

from __future__ import annotations

from typing import Callable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import Problem, problem_response


class BodyLimit:
    """ASGI middleware: ``limit_for(path)`` is the largest body in bytes (None: no limit here);
    ``detail_for(path)`` words the refusal."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int | None], detail_for: Callable[[str], str]):
        self.app = app
        self.limit_for = limit_for
        self.detail_for = detail_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit_for(scope["path"]) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            response = problem_response(Request(scope), Problem(413, self.detail_for(scope["path"])))
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Raised inside the route's body reading: the 413 handler words it.
                    raise StarletteHTTPException(413)
            return message

        await self.app(scope, counted, send)
