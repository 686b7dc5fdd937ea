"""Per-file sizes and SHA-256 digests of an index folder, recorded at commit.

Opening an index compares only the sizes (a few ``stat`` calls), which catches
truncated or missing files before anything is memory-mapped; ``rag check`` reads
every byte and compares the digests, which catches flipped bytes inside vectors,
FAISS data or the article store that load silently otherwise.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# Files whose digests are not recorded: the manifest holds the digests itself.
UNRECORDED = frozenset({"manifest.json"})


def file_digest(path: Path) -> dict:
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    return {"size": os.path.getsize(path), "sha256": digest}


def digest_folder(folder: Path) -> dict[str, dict]:
    """``relative path -> {size, sha256}`` for every file under ``folder``."""
    out = {}
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            if rel not in UNRECORDED:
                out[rel] = file_digest(path)
    return dict(sorted(out.items()))


def size_problems(folder: Path, files: dict[str, dict]) -> list[str]:
    """Recorded files that are missing or whose size changed (cheap: stat only)."""
    problems = []
    for rel, rec in files.items():
        try:
            size = os.path.getsize(folder / rel)
        except OSError:
            problems.append(f"{rel} is missing")
            continue
        if size != rec.get("size"):
            problems.append(f"{rel} has {size} bytes, {rec.get('size')} were written")
    return problems


def digest_problems(folder: Path, files: dict[str, dict]) -> list[str]:
    """Recorded files whose content changed since they were written (reads every byte)."""
    problems = size_problems(folder, files)
    bad = {p.split(" ", 1)[0] for p in problems}
    for rel, rec in files.items():
        if rel in bad:
            continue
        try:
            got = file_digest(folder / rel)["sha256"]
        except OSError as exc:
            problems.append(f"{rel} is unreadable ({exc.strerror or exc})")
            continue
        if got != rec.get("sha256"):
            problems.append(f"{rel} does not match its checksum (its bytes changed after it was written)")
    return problems
