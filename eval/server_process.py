"""A `rag serve` process of our own (``python -m server``) on a free port of 127.0.0.1,
for the measurements that talk to a running server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_server(index: str | Path, log_path: str | Path, *, env: dict[str, str] | None = None,
                 drop: tuple[str, ...] = (), args: tuple[str, ...] = ()) -> Iterator[tuple[str, subprocess.Popen]]:
    """``(url, process)`` of a server over ``index`` (an empty folder: the seeds are indexed
    first), logging to ``log_path``; stopped on exit. ``drop``: environment variables to
    unset; ``args``: more `rag serve` arguments."""
    port = free_port()
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
                "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    for name in drop:
        full_env.pop(name, None)
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "server", "--port", str(port), "--index", str(index), *args],
                                cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}/", proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
