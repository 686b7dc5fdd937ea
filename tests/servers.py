"""Starting real `rag serve` processes on 127.0.0.1 for the tests that talk to one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent


# `rag serve` of this checkout's ui/, registered directly rather than through the
# installed `article_rag.commands` entry points (which name whatever the shared
# environment was last installed from).
SERVE = (
    "import sys; from cli.main import PluginHelpers, common_flags; from ui.command import register; "
    "from rag.runtime import configure_logging, configure_process, run_command; import argparse; "
    "configure_process(); p = argparse.ArgumentParser(prog='rag'); "
    "register(p.add_subparsers(dest='command', required=True), common_flags(), PluginHelpers); "
    "args = p.parse_args(['serve', *sys.argv[1:]]); configure_logging(verbose=args.verbose, quiet=args.quiet); "
    "sys.exit(run_command(lambda: args.func(args)))"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def rag_serve(tmp: Path, index: Path, *, env: dict[str, str] | None = None, args: tuple[str, ...] = (),
              timeout_s: float = 180) -> Iterator[dict]:
    """A `rag serve` process over ``index``; yields ``{"url", "log", "tmp", "proc"}`` once it answers."""
    port = free_port()
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
                "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    full_env.pop("RAG_AUTH", None)
    log_path = tmp / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, "--port", str(port), "--index", str(index), *args],
            cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout_s
    try:
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
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
