"""Starting real `rag serve` processes on 127.0.0.1 for the tests that talk to one.

They run ``python -m server``: the same command as `rag serve` (the browser app and
the HTTP API on one port), without going through the installed entry points.
"""

from __future__ import annotations

import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from eval.server_process import local_server

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def rag_serve(tmp: Path, index: Path, *, env: dict[str, str] | None = None, args: tuple[str, ...] = (),
              timeout_s: float = 180) -> Iterator[dict]:
    """A `rag serve` process over ``index``; yields ``{"url", "log", "tmp", "proc"}`` once it answers."""
    log_path = tmp / "server.log"
    unset = tuple(name for name in ("RAG_AUTH", "RAG_API_KEYS") if name not in (env or {}))
    with local_server(index, log_path, env=env, drop=unset, args=args) as (url, proc):
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                pytest.fail(f"`rag serve` exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"`rag serve` did not answer within {timeout_s:g} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield {"url": url, "log": log_path, "tmp": tmp, "proc": proc}
