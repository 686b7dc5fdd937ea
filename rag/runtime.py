"""Process-wide defaults, set once by whoever starts the process (a face or a test run).

The engine itself never writes the environment: these are the settings of the
libraries it runs on, and a library embedding ``rag`` may want its own.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Callable

# Libraries whose INFO logging is noise in a CLI answer or a server log.
NOISY_LOGGERS = ("httpx", "httpcore", "sentence_transformers", "faiss", "bm25s", "urllib3", "trafilatura", "htmldate")


def configure_process() -> None:
    """Environment defaults for this process; a value the user set is kept.

    Must run before faiss, torch, transformers or llama_cpp is imported.
    """
    # Offline by default: the packaged model and local files only, never a hub download.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    # OpenMP threads spin while waiting: llama.cpp's made generation ~5x slower on
    # a shared 2-core box, and faiss's (after each search) slow the embedding model
    # of the next query (search p50 35 -> 19 ms, MultiHop-RAG).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def configure_logging(*, verbose: bool = False, quiet: bool = False) -> None:
    """One log format for every face; ``-v`` shows DEBUG, ``-q`` warnings only."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    # On the handler too: a library that sets its own logger to DEBUG when imported
    # (bm25s does) would otherwise print DEBUG lines under -q.
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_command(func: Callable[[], int | None]) -> int:
    """Run a command-line entry point: a :class:`~rag.errors.RagError` becomes one
    ``error: ...`` line on stderr and exit status 2, Ctrl-C exit status 130. Anything
    else is a bug and keeps its traceback."""
    from .errors import RagError

    try:
        return int(func() or 0)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
