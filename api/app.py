"""The HTTP API as one FastAPI application: REST under ``/api/v1``, OpenAI-compatible
chat under ``/v1``, OpenAPI docs at ``/docs``.

``server/`` mounts the browser app into the same application, so both share one
process, one engine and one port.
"""

from __future__ import annotations

from typing import Iterable

from fastapi import Depends, FastAPI, Request
from starlette.routing import Match

from rag.engine import Engine

from . import chat_completions, feeds, problems, rest
from .auth import key_guard
from .body_limit import BodyLimit
from .problems import Problem
from .service import Service, Startup

# JSON bodies: a question and a long conversation fit many times over.
MAX_JSON_BYTES = 4 * 1024 * 1024

DESCRIPTION = """Ask questions about the indexed news articles and get answers whose every claim
carries a numbered marker `[n]` citing the exact passage of the exact article.

* **REST** under `/api/v1`: ask (JSON or Server-Sent Events), search, articles (files or URLs),
  feeds (RSS, Atom, news sitemaps), health, stats.
* **OpenAI-compatible** under `/v1`: `POST /v1/chat/completions` (model `article-rag`) and
  `GET /v1/models`; the answer's citations come in a top-level `citations` list.

When the server has keys (`RAG_API_KEYS`, or `--auth USER:PASSWORD`, whose password is a
key), every route wants `Authorization: Bearer KEY`. Errors are problem objects
(`application/problem+json`, RFC 9457).
"""


def build_api(engine: Engine, *, keys: Iterable[str] = (), startup: Startup | None = None) -> FastAPI:
    """The API over ``engine``. ``keys``: bearer keys (none: open). ``startup``: the
    server's start state (None: the index is opened on first use)."""
    svc = Service(engine, startup)
    app = FastAPI(title="article-rag API", version="1", description=DESCRIPTION,
                  docs_url="/docs", redoc_url=None, openapi_url="/openapi.json")
    app.state.service = svc
    settings = engine.settings

    def too_large(path: str) -> str:
        if path == rest.PREFIX + "/articles":
            return (f"The upload is over the {settings.max_upload_mb:g} MB limit per request (RAG_MAX_UPLOAD_MB); "
                    f"send fewer files at once. Each file may be up to {settings.max_file_mb:g} MB.")
        return f"The request body is over the {MAX_JSON_BYTES // (1024 * 1024)} MB limit."

    problems.install(app, too_large_detail=too_large)

    def limit_for(path: str) -> int | None:
        if path == rest.PREFIX + "/articles":
            return settings.max_upload_bytes
        if path.startswith((rest.PREFIX + "/", chat_completions.PREFIX + "/")):
            return MAX_JSON_BYTES
        return None  # the browser app: Gradio limits its own uploads

    app.add_middleware(BodyLimit, limit_for=limit_for, detail_for=too_large)
    guard = [Depends(key_guard(tuple(keys)))]
    routers = [rest.router(svc), feeds.router(svc), chat_completions.router(svc)]
    for r in routers:
        app.include_router(r, dependencies=guard)
    _unknown_routes(app, guard, [route for r in routers for route in r.routes])
    return app


def _unknown_routes(app: FastAPI, guard: list, known: list) -> None:
    """Under the API's prefixes, an unknown path is a 404 problem and a known path with
    another method a 405 (instead of falling through to the browser app mounted at /)."""

    async def unknown(request: Request, path: str):
        allowed = sorted({m for r in known if r.matches(request.scope)[0] == Match.PARTIAL
                          for m in getattr(r, "methods", ()) or ()})
        if allowed:
            raise Problem(405, f"{request.method} is not allowed here; use {', '.join(allowed)}.",
                          headers={"Allow": ", ".join(allowed)})
        raise Problem(404, f"No API route {request.url.path}; see /docs.")

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    for prefix in (rest.PREFIX, chat_completions.PREFIX):
        app.add_api_route(prefix + "/{path:path}", unknown, methods=methods, dependencies=guard,
                          include_in_schema=False)
