"""A writer process for the crash tests: one `rag` command that SIGKILLs itself at a named step.

    python -m tests.crash_child STEP N rag-args...

STEP is one of rag.store.steps (``-``: none); the process kills itself with
SIGKILL the N-th time a write reaches it, exactly as ``kill -9`` from outside would.
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> int:
    step, nth, *argv = sys.argv[1:]
    from rag.store import steps

    if step != "-":
        seen = 0

        def kill(name: str) -> None:
            nonlocal seen
            if name == step:
                seen += 1
                if seen == int(nth):
                    os.kill(os.getpid(), signal.SIGKILL)

        steps.listen(kill)
    from cli.main import main as rag

    return rag(argv)


if __name__ == "__main__":
    sys.exit(main())
