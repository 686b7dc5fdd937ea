"""Named steps of an index write, so a crash test can kill a real process at each one.

Writers call :func:`reached` at every step of a commit; nothing listens in normal
use. A crash test's child process registers a listener that sends itself SIGKILL at
the step under test, then the test checks that the index still opens, is
consistent, and takes the next write (see ``tests/test_crash_recovery.py``).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

# The steps of writing a segment, in order (see rag.store.commit).
SEGMENT_STEPS = (
    "started",  # a temporary folder exists
    "files-written",  # the new segment's files are in it
    "files-synced",  # ... and fsynced
    "renamed",  # the folder has its final name; no manifest names it yet
)
# The steps of committing a manifest.
COMMIT_STEPS = (
    "manifest-written",  # the next manifest and CURRENT pointer are written aside
    "committed",  # CURRENT names the new manifest (the commit point has passed)
    "collected",  # what the live manifest no longer names is removed
)
INGEST_STEPS = ("embedded", *SEGMENT_STEPS, *COMMIT_STEPS)  # an ingest embeds first
REMOVE_STEPS = COMMIT_STEPS  # a delete only writes tombstones into the manifest
MERGE_STEPS = (*SEGMENT_STEPS, *COMMIT_STEPS)

_listeners: list[Callable[[str], None]] = []


def listen(fn: Callable[[str], None]) -> None:
    """Call ``fn(step)`` at every step of every write in this process."""
    _listeners.append(fn)


@contextmanager
def listening(fn: Callable[[str], None]) -> Iterator[None]:
    """Call ``fn(step)`` at every step of every write made inside the block."""
    _listeners.append(fn)
    try:
        yield
    finally:
        _listeners.remove(fn)


def reached(step: str) -> None:
    for fn in list(_listeners):
        fn(step)
