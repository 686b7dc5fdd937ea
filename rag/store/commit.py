"""Writing an index: segments built aside, then one manifest swapped in atomically.

A write (ingest, delete, merge) never changes a file that a manifest names. It
builds any new segment in a temporary folder, fsyncs it and renames it to the next
``seg-N``; then writes the next ``manifest-N.json``, fsyncs it, and replaces
``CURRENT`` with ``os.replace``: the commit point. A crash or kill at any moment
leaves the previous manifest live with all its segments. Readers open whatever
``CURRENT`` names and never see a half-written index.

Under the writer lock a new segment or manifest takes a number above every
numbered name present, so leftovers of a killed writer never collide with the next
write; they are removed when the next writer takes the lock, after each commit,
and by ``rag check --repair``. The steps of a commit are named (:mod:`.steps`) so
the crash tests can kill a real process at each one.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

from ..errors import IndexLoadError
from . import steps
from .checksums import digest_folder
from .folder import check_index_folder
from .layout import (
    CURRENT,
    LOCK,
    MERGE_LOCK,
    MERGE_TMP_PREFIX,
    POINTER_TMP,
    TMP_PREFIX,
    leftovers,
    manifest_name,
    next_number,
    segment_name,
)
from .manifest import Manifest, SegmentInfo

log = logging.getLogger(__name__)


def _flock(path: Path, *, wait: bool, what: str):
    fh = open(path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if not wait:
            fh.close()
            return None
        log.info("waiting for %s in %s to finish", what, path.parent)
        fcntl.flock(fh, fcntl.LOCK_EX)
    return fh


@contextmanager
def writer_lock(root: Path) -> Iterator[None]:
    """One writer at a time per index folder (readers never wait)."""
    check_index_folder(root, create=True)
    fh = _flock(root / LOCK, wait=True, what="another write")
    try:
        # Leftovers of a writer that was killed: nobody else writes now.
        try:
            collect_garbage(root)
        except IndexLoadError:
            pass  # a damaged CURRENT: leave everything for `rag check` to report
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


@contextmanager
def merge_lock(root: Path, *, wait: bool = False) -> Iterator[bool]:
    """One merge at a time; yields False (without waiting) when another one runs."""
    fh = _flock(root / MERGE_LOCK, wait=wait, what="a merge")
    if fh is None:
        yield False
        return
    try:
        yield True
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def collect_garbage(root: Path) -> list[str]:
    """Remove what the live manifest does not name (see :func:`.layout.leftovers`).

    Readers that still hold a removed segment keep working: on POSIX an open or
    memory-mapped file stays readable after it is unlinked.
    """
    removed = []
    for child in leftovers(root):
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
        removed.append(child.name)
    return removed


def fsync_tree(path: Path) -> None:
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            fsync_path(Path(dirpath) / name)
        fsync_path(Path(dirpath))


def fsync_path(path: Path) -> None:
    """Flush a file's data, or a folder's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def build_segment(root: Path, info: SegmentInfo, write: Callable[[Path], None], *, merge: bool = False) -> SegmentInfo:
    """Write a segment aside with ``write(folder)``, then give it its final name.

    Returns ``info`` with its name and file checksums. Call under the writer lock
    (a merge builds without it, in a ``.tmp-merge-`` folder, and calls
    :func:`place_segment` under the lock).
    """
    tmp = Path(tempfile.mkdtemp(prefix=MERGE_TMP_PREFIX if merge else TMP_PREFIX + "seg-", dir=root))
    try:
        steps.reached("started")
        write(tmp)
        info = replace(info, files=digest_folder(tmp))
        steps.reached("files-written")
        fsync_tree(tmp)
        steps.reached("files-synced")
        if merge:
            return replace(info, name=tmp.name)
        return place_segment(root, tmp, info)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def place_segment(root: Path, tmp: Path, info: SegmentInfo) -> SegmentInfo:
    """Rename a written segment folder to the next number (under the writer lock)."""
    name = segment_name(next_number(root))
    os.rename(tmp, root / name)
    fsync_path(root)
    steps.reached("renamed")
    return replace(info, name=name)


def commit(root: Path, manifest: Manifest) -> Manifest:
    """Make ``manifest`` the live one (under the writer lock); returns it as written."""
    number = next_number(root)
    manifest = replace(manifest, generation=number)
    path = root / manifest_name(number)
    tmp = root / f"{TMP_PREFIX}{path.name}"
    tmp.write_text(manifest.to_json(), encoding="utf-8")
    fsync_path(tmp)
    os.rename(tmp, path)
    pointer_tmp = root / POINTER_TMP
    pointer_tmp.write_text(path.name + "\n", encoding="utf-8")
    fsync_path(pointer_tmp)
    fsync_path(root)
    steps.reached("manifest-written")
    os.replace(pointer_tmp, root / CURRENT)  # the commit point
    fsync_path(root)
    steps.reached("committed")
    collect_garbage(root)
    steps.reached("collected")
    return manifest

