"""Names inside an index folder, and which of them are live.

::

    CURRENT               names the live manifest (replaced atomically: the commit point)
    manifest-000012.json  the live segments, their tombstones and checksums
    seg-000004/ ...       segments (see :mod:`.segment`)
    .lock                 serialises writers;  .merge-lock  one merge at a time
    .tmp-*                folders and files being written

Segments and manifests share one counter: anything new is numbered above every
numbered name present, live or left over, so the leftovers of a killed writer never
collide with the next write. ``gen-N/`` folders are the older format 1 (one whole
index per generation), opened once to migrate them.
"""

from __future__ import annotations

import fcntl
import re
from pathlib import Path

from ..errors import IndexLoadError
from .manifest import Manifest

CURRENT = "CURRENT"
SEG_PREFIX = "seg-"
MANIFEST_PREFIX = "manifest-"
LEGACY_PREFIX = "gen-"
TMP_PREFIX = ".tmp-"
MERGE_TMP_PREFIX = ".tmp-merge-"
POINTER_TMP = f".{CURRENT}.tmp"
LOCK = ".lock"
MERGE_LOCK = ".merge-lock"

_NUMBERED = re.compile(r"^(seg|gen|manifest)-(\d{6,})(\.json)?$")


def number_of(name: str) -> int | None:
    m = _NUMBERED.match(name)
    return int(m.group(2)) if m else None


def next_number(root: Path) -> int:
    """One above every numbered name in the folder (segments, manifests, old generations)."""
    numbers = [number_of(p.name) for p in root.iterdir()]
    return max([n for n in numbers if n is not None], default=0) + 1


def segment_name(n: int) -> str:
    return f"{SEG_PREFIX}{n:06d}"


def manifest_name(n: int) -> str:
    return f"{MANIFEST_PREFIX}{n:06d}.json"


def read_pointer(root: Path) -> str | None:
    """What CURRENT names (None: no index was ever committed here)."""
    pointer = root / CURRENT
    for _ in range(3):
        try:
            name = pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise IndexLoadError(f"{pointer} is unreadable ({exc}). Run `rag check --index {root}`.") from exc
        valid = (name.startswith(MANIFEST_PREFIX) and name.endswith(".json")) or name.startswith(LEGACY_PREFIX)
        if number_of(name) is not None and valid and (root / name).exists():
            return name
        # A commit may have replaced CURRENT and removed what it named in between.
    raise IndexLoadError(
        f"{pointer} names {name!r}, which is not an index manifest or generation of this folder. "
        f"Run `rag check --index {root}`; if nothing can be saved, delete {root} and ingest again."
    )


def is_legacy(name: str | None) -> bool:
    return bool(name) and name.startswith(LEGACY_PREFIX)


def live_manifest(root: Path) -> Manifest | None:
    """The manifest CURRENT names; None when there is no index (or only a format-1 one)."""
    name = read_pointer(root) if root.is_dir() else None
    if name is None or is_legacy(name):
        return None
    return Manifest.load(root / name)


def merge_running(root: Path) -> bool:
    """Whether some process (this one included) holds the merge lock now."""
    path = root / MERGE_LOCK
    if not path.exists():
        return False
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def leftovers(root: Path) -> list[Path]:
    """What the live manifest does not name: segments, manifests and old generations
    left by interrupted or superseded writes, and temporary files. The folder of a
    merge still running is not a leftover."""
    running = merge_running(root)
    name = read_pointer(root)
    if is_legacy(name):
        live = {name}
    else:
        manifest = Manifest.load(root / name) if name else None
        live = {name} | {s.name for s in manifest.segments} if manifest else set()
    out = []
    for child in root.iterdir():
        n = child.name
        if n.startswith(MERGE_TMP_PREFIX) and running:
            continue
        if n.startswith(TMP_PREFIX) or n == POINTER_TMP or (number_of(n) is not None and n not in live):
            out.append(child)
    return sorted(out)
