"""Named steps of an index write, so a crash test can kill a real process at each one.

Writers call :func:`reached` at every step of a commit; nothing listens in normal
use. A crash test's child process registers a listener that sends itself SIGKILL at
the step under test, then the test checks that the index still opens, is
consistent, and takes the next write (see ``tests/test_crash_recovery.py``).
"""

from __future__ import annotations

from typing import Callable

# The steps of one commit, in order (see rag.store.generations.GenerationBuilder).
COMMIT_STEPS = (
    "started",  # a temporary folder holds a copy of the article store
    "files-written",  # the new generation's files are in a temporary folder
    "files-synced",  # ... and fsynced
    "renamed",  # the folder has its final name; CURRENT still names the previous one
    "pointer-written",  # the new CURRENT is written aside, not yet swapped in
    "committed",  # CURRENT names the new generation (the commit point has passed)
    "collected",  # older generations and leftovers removed
)
# An ingest embeds before it commits.
INGEST_STEPS = ("embedded", *COMMIT_STEPS)
REMOVE_STEPS = COMMIT_STEPS

_listeners: list[Callable[[str], None]] = []


def listen(fn: Callable[[str], None]) -> None:
    """Call ``fn(step)`` at every step of every write in this process."""
    _listeners.append(fn)


def reached(step: str) -> None:
    for fn in list(_listeners):
        fn(step)
