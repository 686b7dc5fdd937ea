"""The index folder itself: that a path can hold an index, before anything is read or written."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import IndexLoadError

HINT = "Pass another folder with --index (or RAG_INDEX)."


def check_index_folder(root: Path, *, create: bool) -> None:
    """Raise a one-line error when ``root`` cannot hold an index (or, with ``create``, be made one)."""
    if root.exists() and not root.is_dir():
        raise IndexLoadError(f"{root} is a file, not an index folder. {HINT}")
    if not create:
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise IndexLoadError(f"Cannot create the index folder {root} ({exc.strerror or exc}). {HINT}") from exc
    if not os.access(root, os.W_OK | os.X_OK):
        raise IndexLoadError(f"The index folder {root} is not writable. {HINT}")
