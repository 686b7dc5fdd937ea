"""``rag serve``: the browser app, plugged into the ``rag`` command."""

from __future__ import annotations

import os

from rag.errors import RagError


def register(sub, common, helpers) -> None:
    s = sub.add_parser("serve", parents=[common], help="the browser app (indexes seeds/ on first run)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others warn without --auth)")
    s.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    s.add_argument("--auth", metavar="USER:PASSWORD", help="require this login (or $RAG_AUTH)")
    helpers.add_llm_flags(s)

    def cmd_serve(args) -> int:
        """The browser app (indexes seeds/ in the background on first run)."""
        from ui.app import main as serve

        engine = helpers.engine(args)
        engine.settings = helpers.answer_settings(args, engine)  # defaults of each browser session's settings
        try:
            serve(args.host, args.port, args.auth or os.environ.get("RAG_AUTH") or None, engine=engine)
        except OSError as exc:
            raise RagError(f"cannot serve on {args.host}:{args.port}: {exc}") from exc
        return 0

    s.set_defaults(func=cmd_serve)
