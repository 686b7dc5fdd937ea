"""The FastAPI application that serves the API and the browser app on one port.

The API's routes (``/api/v1``, ``/v1``, ``/docs``) come first; the Gradio app is
mounted at ``/`` behind them, with the page's own options (``ui.app.page_options``).
Both share one engine and one start: the index is built or loaded once, in the
background, and both report its progress. The application's lifespan also runs the
background feed refresh (``server/feeds.py``): started with the server, stopped
cleanly when it shuts down.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from rag.runtime import configure_process

# Before gradio is imported (analytics off, quiet OpenMP threads).
configure_process()

import gradio as gr  # noqa: E402

from api.app import build_api  # noqa: E402
from api.auth import api_keys  # noqa: E402
from rag.engine import Engine  # noqa: E402
from ui.app import CHAT_CONCURRENCY, build_app, page_options, parse_auth, start_background  # noqa: E402

from .feeds import BackgroundFeeds  # noqa: E402


def server_keys(engine: Engine, auth: str | None) -> tuple[str, ...]:
    """The API's bearer keys: ``RAG_API_KEYS`` and the password of the browser login."""
    return api_keys([k.get_secret_value() for k in engine.settings.api_keys], auth)


def build_server(engine: Engine, *, auth: str | None = None) -> FastAPI:
    """The application: API routes first, the browser app at ``/``. ``auth`` is ``USER:PASSWORD``."""
    credentials = parse_auth(auth)
    status = start_background(engine)  # one start for both: seed index, index, model
    app = build_api(engine, keys=server_keys(engine, auth), startup=status)
    demo = build_app(engine, status)
    demo.queue(default_concurrency_limit=CHAT_CONCURRENCY)
    gr.mount_gradio_app(
        app, demo, path="/",
        auth=credentials, auth_message="article-rag: log in to continue." if credentials else None,
        max_file_size=engine.settings.max_file_bytes, **page_options(),
        ssr_mode=False, show_error=False, footer_links=[],
    )
    # Gradio checks the file paths an event names (only files uploaded to its upload
    # folder are accepted) only once the Blocks "has launched", which mounting alone
    # never sets: without this, a client naming any server file in an upload event
    # had it copied into the upload folder and indexed (tests/test_upload_security.py).
    demo.has_launched = True
    run_feeds(app, BackgroundFeeds(engine, status))
    return app


def run_feeds(app: FastAPI, feeds: BackgroundFeeds) -> None:
    """Start ``feeds`` when the application starts and stop it when it shuts down (around
    the lifespan already there: Gradio's, which starts its queue)."""
    inner = app.router.lifespan_context
    app.state.feeds = feeds

    @asynccontextmanager
    async def lifespan(a):
        feeds.start()
        try:
            async with inner(a) as state:
                yield state
        finally:
            await run_in_threadpool(feeds.stop)

    app.router.lifespan_context = lifespan
