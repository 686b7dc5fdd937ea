"""Merging segments: tiered by size (as Lucene's log merge policy), adjacent only, deletes dropped.

Every ingest adds a segment, so without merges a search would visit ever more of
them. Segments fall into size tiers (fewer than ``FLOOR`` live passages: tier 0;
then one tier per factor of ``FACTOR``); when ``FACTOR`` adjacent segments share a
tier they are merged into one. Only adjacent segments merge, so the passages keep
their ingest order and an index numbers them exactly as one built in one go. A
segment whose tombstones reach ``MAX_DELETED`` of its passages is rewritten
without them. The number of segments stays below ``FACTOR`` per tier (a few dozen
at a million passages) and each passage is rewritten once per tier.

A merge reads the segments it merges from a snapshot and writes the merged one
aside without holding the writer lock, so ingests and deletes go on meanwhile; it
then takes the lock only to commit. Deletes made in between become tombstones of
the merged segment (article rows are stable, so they carry over). One merge runs at
a time (``.merge-lock``).
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import RagError
from .commit import build_segment, commit, merge_lock, place_segment, writer_lock
from .faiss_index import build_faiss
from .layout import live_manifest
from .manifest import Manifest, SegmentInfo
from .postings import Postings
from .article_columns import select_list
from .segment import ARTICLE_COLUMNS, META_COLUMNS, STORE, Segment, write_segment
from .snapshot import open_segment
from .writer import segment_index_type

log = logging.getLogger(__name__)

FACTOR = 10  # segments per tier before they merge
FLOOR = 1000  # live passages below which every segment is in the lowest tier
MAX_DELETED = 0.3  # tombstoned share of a segment's passages that gets it rewritten


@dataclass(frozen=True)
class MergeResult:
    merged: tuple[str, ...]  # names of the segments merged
    into: str  # the new segment
    passages: int
    dropped_articles: int  # tombstoned articles left out
    seconds: float


def tier(info: SegmentInfo) -> int:
    n = info.live_passages
    return 0 if n < FLOOR else 1 + int(math.log(n / FLOOR, FACTOR) + 1e-9)


def plan(manifest: Manifest) -> tuple[int, int] | None:
    """Segments [i, j) of the manifest to merge next, or None."""
    segs = manifest.segments
    runs: list[tuple[int, int, int]] = []  # (tier, start, end)
    i = 0
    while i < len(segs):
        j = i + 1
        while j < len(segs) and tier(segs[j]) == tier(segs[i]):
            j += 1
        if j - i >= FACTOR:
            runs.append((tier(segs[i]), i, j))
        i = j
    if runs:
        _, i, j = min(runs)  # the lowest tier first: cheapest, and it keeps the count down
        return i, min(j, i + 2 * FACTOR)
    for i, s in enumerate(segs):
        if s.deleted_fraction >= MAX_DELETED:
            return i, i + 1
    return None


def merge_pending(root: Path) -> list[MergeResult]:
    """Run merges until the policy has none left (returns at once if another merge runs)."""
    done = []
    with merge_lock(root) as got:
        if not got:
            return done
        while True:
            manifest = live_manifest(root)
            span = plan(manifest) if manifest else None
            if span is None:
                return done
            done.append(_merge(root, manifest, *span))


def merge_span(root: Path, start: int, end: int) -> MergeResult:
    """Merge the live manifest's segments [start, end) now, whatever the policy says
    (waits for a running merge first)."""
    with merge_lock(root, wait=True):
        manifest = live_manifest(root)
        if manifest is None or not 0 <= start < end <= len(manifest.segments):
            raise RagError(f"No segments [{start}, {end}) to merge in {root}.")
        return _merge(root, manifest, start, end)


def _merge(root: Path, manifest: Manifest, i: int, j: int) -> MergeResult:
    t = time.perf_counter()
    infos = manifest.segments[i:j]
    members = [open_segment(root, info) for info in infos]
    keeps = []
    for seg, info in zip(members, infos):
        dead = np.array(info.deleted, dtype=np.int64)
        keeps.append(None if not len(dead) else (
            ~np.isin(seg.passages["article_row"], dead), ~np.isin(seg.units["article_row"], dead)))
    passages, units, vectors, unit_vectors = [], [], [], []
    u_base = 0
    for seg, keep in zip(members, keeps):
        p, u = seg.passages, seg.units
        v, uv = np.asarray(seg.vectors), np.asarray(seg.unit_vectors)
        if keep is not None:
            kp, ku = keep
            new_u = np.cumsum(ku) - 1
            p = p[kp].copy()
            if len(p):
                p["unit_lo"] = new_u[p["unit_lo"]]
                p["unit_hi"] = new_u[p["unit_hi"] - 1] + 1
            u, v, uv = u[ku], v[kp], uv[ku]
        else:
            p = p.copy()
        p["unit_lo"] += u_base
        p["unit_hi"] += u_base
        u_base += len(u)
        passages.append(p)
        units.append(u)
        vectors.append(v)
        unit_vectors.append(uv)
    passages = np.concatenate(passages)
    units = np.concatenate(units)
    vectors = np.concatenate(vectors)
    unit_vectors = np.concatenate(unit_vectors)
    postings = Postings.merge([(s.postings, None if k is None else k[0]) for s, k in zip(members, keeps)])
    index_type = segment_index_type(manifest.index_setting, len(passages))
    faiss_index = _merged_faiss(members, keeps, vectors, index_type)
    n_articles = sum(info.live_articles for info in infos)
    info = SegmentInfo("", n_articles, len(passages), len(units), index_type)

    def write(folder: Path) -> None:
        write_segment(folder, [], passages, vectors, units, unit_vectors, faiss_index, postings)
        _copy_articles(folder, members, infos)

    info = build_segment(root, info, write, merge=True)
    tmp = root / info.name
    with writer_lock(root):
        now = live_manifest(root)
        names = [s.name for s in infos]
        at = [s.name for s in now.segments].index(names[0])
        # Only merges remove segments, and this one holds the merge lock.
        assert [s.name for s in now.segments[at : at + len(names)]] == names
        # Deletes committed while merging: tombstones of the merged segment.
        later = {r for old, cur in zip(infos, now.segments[at : at + len(names)]) for r in set(cur.deleted) - set(old.deleted)}
        if later:
            dead_passages = int(np.isin(passages["article_row"], list(later)).sum())
            info = replace(info, deleted=tuple(sorted(later)), deleted_passages=dead_passages)
        info = place_segment(root, tmp, info)
        segments = [*now.segments[:at], info, *now.segments[at + len(names) :]]
        commit(root, now.with_segments([s for s in segments if s.live_articles > 0]))
    dropped = sum(len(s.deleted) for s in infos)
    result = MergeResult(tuple(names), info.name, len(passages), dropped, time.perf_counter() - t)
    log.info("merged %d segments (%s) into %s: %d passages, %d deleted articles dropped, %.1fs",
             len(names), ", ".join(names), info.name, len(passages), dropped, result.seconds)
    return result


def _merged_faiss(members: list[Segment], keeps: list, vectors: np.ndarray, index_type: str):
    """The merged FAISS index. A graph (HNSW) grows from a copy of the first member's
    when that one lost no passages (its ids stay the first ones): adding a few
    thousand vectors to a million-passage graph takes seconds, building it anew
    twenty minutes."""
    import faiss

    first = members[0].faiss
    if index_type == "hnsw" and keeps[0] is None and isinstance(first, faiss.IndexHNSW):
        index = faiss.clone_index(first)
        index.add(np.ascontiguousarray(vectors[first.ntotal :], dtype=np.float32))
        return index
    return build_faiss(vectors, index_type)


def _copy_articles(folder: Path, members: list[Segment], infos: tuple[SegmentInfo, ...]) -> None:
    """The members' live articles into the merged segment's store, rows unchanged."""
    db = sqlite3.connect(f"file:{folder / STORE}", uri=True)  # URIs in ATTACH too
    try:
        for seg, info in zip(members, infos):
            db.execute("ATTACH DATABASE ? AS m", (f"file:{seg.folder / STORE}?mode=ro",))
            where = f"WHERE row NOT IN ({','.join(str(int(r)) for r in info.deleted)})" if info.deleted else ""
            db.execute(
                f"INSERT INTO articles ({ARTICLE_COLUMNS}) SELECT {META_COLUMNS}, text, added_at, "
                f"{select_list(db, 'm')} FROM m.articles {where} ORDER BY row"
            )
            db.commit()
            db.execute("DETACH DATABASE m")
    finally:
        db.close()

