"""A writer process for the crash tests: one `rag` command that SIGKILLs itself at a named step.

    python -m tests.crash_child STEP N rag-args...
    python -m tests.crash_child STEP N merge INDEX START END

STEP is one of rag.store.steps (``-``: none); the process kills itself with
SIGKILL the N-th time a write reaches it, exactly as ``kill -9`` from outside would.
``merge`` merges the index's segments [START, END) (rag.store.merge.merge_span).
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
    if argv[0] == "merge":
        from pathlib import Path

        from rag.runtime import configure_process
        from rag.store.merge import merge_span

        configure_process()
        merge_span(Path(argv[1]), int(argv[2]), int(argv[3]))
        return 0
    from cli.main import main as rag

    return rag(argv)


if __name__ == "__main__":
    sys.exit(main())
