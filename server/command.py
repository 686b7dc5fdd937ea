"""``rag serve``: the browser app and the HTTP API on one port, plugged into the ``rag`` command."""

from __future__ import annotations

import ipaddress
import logging
import socket

from rag.errors import RagError

log = logging.getLogger("rag.server")


def register(sub, common, helpers) -> None:
    s = sub.add_parser("serve", parents=[common],
                       help="the browser app and the HTTP API (indexes seeds/ on first run)")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; others warn without --auth and API keys)")
    s.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    s.add_argument("--auth", metavar="USER:PASSWORD",
                   help="require this login in the browser (or $RAG_AUTH); the password is also an API key")
    s.add_argument("--no-feed-refresh", action="store_true",
                   help="do not refresh due feeds in the background (or RAG_FEED_REFRESH=false)")
    helpers.add_llm_flags(s)

    def cmd_serve(args) -> int:
        """The browser app at / and the API at /api/v1 and /v1 (indexes seeds/ in the background on first run)."""
        engine = helpers.engine(args)
        engine.settings = helpers.answer_settings(args, engine)  # defaults of each session's and request's settings
        if args.no_feed_refresh:
            engine.settings = engine.settings.model_copy(update={"feed_refresh": False})
        login = args.auth or (engine.settings.auth.get_secret_value() if engine.settings.auth else None)
        serve(engine, args.host, args.port, login, access_log=bool(args.verbose))
        return 0

    s.set_defaults(func=cmd_serve)


def serve(engine, host: str, port: int, auth: str | None = None, *, access_log: bool = False) -> None:
    """Start the server (blocks until stopped). ``auth`` is ``USER:PASSWORD`` or None."""
    import uvicorn

    from .app import build_server, server_keys

    if not is_loopback(host):
        if not auth:
            log.warning("serving on %s without --auth: anyone who can reach this address can read, ask and upload "
                        "in the browser app. Use --auth USER:PASSWORD (or RAG_AUTH).", host)
        if not server_keys(engine, auth):
            log.warning("serving on %s without API keys: anyone who can reach this address can use the API. "
                        "Set RAG_API_KEYS (or --auth, whose password is a key).", host)
    sock = bind(host, port)  # first: a port in use fails before anything is loaded
    app = build_server(engine, auth=auth)
    shown = f"[{host}]" if ":" in host else host
    log.info("serving on http://%s:%d/ (the browser app), /api/v1 and /v1 (the API), /docs (its reference)",
             shown, port)
    # log_config=None: keep the process's logging (one format for every face).
    config = uvicorn.Config(app, log_config=None, access_log=access_log, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or one clear error (port taken, address not here)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RagError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
