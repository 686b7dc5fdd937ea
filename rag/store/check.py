"""``rag check [--repair]``: verify an index on disk, byte for byte, and clean up leftovers.

What is checked, from cheapest to dearest:

* ``CURRENT`` names a manifest, and the leftovers of interrupted writers (segments
  and manifests it does not name, temporary folders) are listed; ``--repair``
  removes them (and migrates an index of the older format);
* every file recorded in the manifest has its size and SHA-256 digest (flipped bytes
  inside vectors, FAISS data or the article store are found here, not at load);
* SQLite's ``PRAGMA integrity_check``, and every article text decodes as UTF-8;
* in each segment the parts agree: passages, vectors, FAISS entries and BM25
  documents count the same; units and their vectors too; the postings add up to the
  passage lengths; every passage lies inside its article's text and covers existing
  sentence units; the FAISS vectors equal the stored ones; every vector has unit
  length; tombstones name articles of the segment, as many passages as recorded;
* across segments: no article row in two segments, no article live twice.

Damage is reported with what to do about it; nothing damaged is deleted.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import IndexLoadError
from .checksums import digest_problems
from .commit import collect_garbage, writer_lock
from .layout import is_legacy, leftovers, read_pointer
from .manifest import Manifest, SegmentInfo
from .migrate import migrate_legacy
from .segment import STORE, Segment


@dataclass(frozen=True)
class Finding:
    kind: str  # "damaged" | "leftover" | "note"
    where: str  # a file or folder of the index, relative to it
    problem: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.kind:8s} {self.where}: {self.problem}"
        return f"{text}. {self.fix}" if self.fix else text


@dataclass
class CheckReport:
    root: Path
    findings: list[Finding] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)  # what --repair removed
    articles: int = 0
    passages: int = 0

    @property
    def damaged(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "damaged"]

    @property
    def ok(self) -> bool:
        """No damage (leftovers and notes do not make an index unusable)."""
        return not self.damaged

    def summary(self) -> str:
        if self.damaged:
            return f"{self.root}: DAMAGED ({len(self.damaged)} problem(s))"
        left = sum(f.kind == "leftover" for f in self.findings)
        extra = f", {left} leftover(s) (run `rag check --repair`)" if left else ""
        return f"{self.root}: OK, {self.articles} articles, {self.passages} passages{extra}"


def rebuild_hint(root: Path) -> str:
    return (
        f"Rebuild the index: `rag articles --index {root} --json` lists what it holds; move {root} "
        "aside and ingest the original files again"
    )


def check_index(root: Path, *, repair: bool = False) -> CheckReport:
    """Check the index at ``root`` (see the module doc); ``repair`` removes leftovers."""
    root = Path(root)
    report = CheckReport(root)
    if not root.is_dir():
        report.findings.append(Finding("damaged", str(root), "no index folder here", "Build one with `rag ingest PATH...`"))
        return report
    try:
        name = read_pointer(root)
    except IndexLoadError as exc:
        report.findings.append(Finding("damaged", "CURRENT", str(exc)))
        return report
    if name is None:
        report.findings.append(Finding("damaged", "CURRENT", "missing: no index was ever committed here", rebuild_hint(root)))
        return report
    if is_legacy(name):
        if not repair:
            report.findings.append(Finding("note", name, "an index of the older format 1; the next command that opens it "
                                           "migrates it once", "`rag check --repair` migrates it now"))
            return report
        migrate_legacy(root)
        report.repaired.append(f"{name} (migrated to segments)")
        name = read_pointer(root)

    if repair:
        found = leftovers(root)
        with writer_lock(root):  # taking the lock removes leftovers already
            collect_garbage(root)
        report.repaired += [p.name for p in found if not p.exists()]
    for p in leftovers(root):
        report.findings.append(
            Finding("leftover", p.name, "not named by the live manifest (left by an interrupted write)",
                    "`rag check --repair` removes it")
        )
    try:
        manifest = Manifest.load(root / name)
    except IndexLoadError as exc:
        report.findings.append(Finding("damaged", name, str(exc), rebuild_hint(root)))
        return report
    report.articles, report.passages = manifest.n_articles, manifest.n_passages
    rows_seen: dict[int, str] = {}
    ids_seen: dict[str, str] = {}
    for info in manifest.segments:
        folder = root / info.name
        if not folder.is_dir():
            report.findings.append(Finding("damaged", info.name, "the segment folder is missing", rebuild_hint(root)))
            continue
        _check_files(report, folder, info)
        _check_sqlite(report, folder)
        try:
            seg = Segment(folder, info)
        except IndexLoadError as exc:
            report.findings.append(Finding("damaged", info.name, str(exc), segment_hint(root, info)))
            continue
        try:
            _check_segment(report, seg, info, rows_seen, ids_seen)
        finally:
            seg.close()
    if rows_seen and max(rows_seen) >= manifest.next_row:
        report.findings.append(Finding("damaged", name, f"article row {max(rows_seen)} is not below next_row "
                                       f"{manifest.next_row}", rebuild_hint(root)))
    return report


def segment_hint(root: Path, info: SegmentInfo) -> str:
    return (
        f"The other segments are intact: remove this segment's articles (`rag articles --index {root} --json` "
        f"lists them by id; `rag remove ID...`) and ingest their files again; or move {root} aside and ingest "
        "everything again"
    )


def _check_files(report: CheckReport, folder: Path, info: SegmentInfo) -> None:
    if not info.files:
        report.findings.append(Finding("note", info.name, "no checksums recorded"))
        return
    for problem in digest_problems(folder, info.files):
        rel, what = problem.split(" ", 1)
        report.findings.append(Finding("damaged", f"{folder.name}/{rel}", what, segment_hint(report.root, info)))


def _check_sqlite(report: CheckReport, folder: Path) -> None:
    where = f"{folder.name}/{STORE}"
    try:
        db = sqlite3.connect(f"file:{folder / STORE}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        report.findings.append(Finding("damaged", where, f"cannot be opened ({exc})", rebuild_hint(report.root)))
        return
    try:
        rows = [r[0] for r in db.execute("PRAGMA integrity_check").fetchall()]
        if rows != ["ok"]:
            report.findings.append(Finding("damaged", where, "SQLite integrity check: " + "; ".join(rows[:3]), rebuild_hint(report.root)))
            return
        db.text_factory = bytes
        for row, aid, title, text in db.execute("SELECT row, article_id, title, text FROM articles"):
            for name, raw in (("title", title), ("text", text)):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    shown = aid.decode("utf-8", "replace")
                    report.findings.append(Finding(
                        "damaged", where,
                        f"article {shown} (row {row}) has bytes that are not UTF-8 in its {name} (at byte {exc.start}); "
                        "it is read with U+FFFD in their place",
                        f"Remove it (`rag remove {shown}`) and ingest its file again",
                    ))
    except sqlite3.Error as exc:
        report.findings.append(Finding("damaged", where, f"unreadable ({exc})", rebuild_hint(report.root)))
    finally:
        db.close()


def _check_segment(report: CheckReport, seg: Segment, info: SegmentInfo, rows_seen: dict, ids_seen: dict) -> None:
    """Counts and cross-references between the parts of one segment, and with the others."""
    import faiss

    hint = segment_hint(report.root, info)

    def damaged(problem: str) -> None:
        report.findings.append(Finding("damaged", info.name, problem, hint))

    for problem in seg.postings.problems():
        damaged(f"BM25: {problem}")
    n = len(seg.passages)
    dead = set(info.deleted)
    if not dead <= set(seg.meta_by_row):
        damaged(f"{len(dead - set(seg.meta_by_row))} tombstoned article row(s) are not in this segment")
    for row, meta in seg.meta_by_row.items():
        if row in rows_seen:
            damaged(f"article row {row} is also in {rows_seen[row]}")
        rows_seen[row] = info.name
        if row not in dead:
            if meta.article_id in ids_seen:
                damaged(f"article {meta.article_id} is also live in {ids_seen[meta.article_id]}")
            ids_seen[meta.article_id] = info.name
    if not n:
        return
    rows = seg.passages["article_row"]
    if int(np.isin(rows, list(dead)).sum()) != info.deleted_passages:
        damaged(f"the manifest counts {info.deleted_passages} tombstoned passages, the segment has "
                f"{int(np.isin(rows, list(dead)).sum())}")
    unknown = np.setdiff1d(np.unique(rows), np.fromiter(seg.meta_by_row, dtype=np.int64))
    if len(unknown):
        damaged(f"{len(unknown)} article row(s) of passages are not in {STORE} (e.g. {int(unknown[0])})")
        return
    without = set(seg.meta_by_row) - set(np.unique(rows).tolist())
    if without:
        damaged(f"{len(without)} article(s) have no passages (e.g. row {min(without)})")
    lo, hi = seg.passages["unit_lo"], seg.passages["unit_hi"]
    if np.any(lo < 0) or np.any(hi > len(seg.units)) or np.any(hi <= lo):
        damaged("passages point at sentence units that do not exist")
    elif np.any(seg.units["article_row"][lo] != rows):
        damaged("passages cover sentence units of other articles")
    lengths = {r: len(seg.article_text(r)) for r in seg.meta_by_row}
    ends = np.array([lengths[int(r)] for r in rows])
    if np.any(seg.passages["start"] < 0) or np.any(seg.passages["end"] > ends) or np.any(seg.passages["end"] <= seg.passages["start"]):
        damaged("passages reach outside their article's text")
    vectors = np.asarray(seg.vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1)
    if not np.all(np.isfinite(norms)) or np.any(np.abs(norms - 1) > 1e-3):
        damaged(f"{int(np.sum(~(np.abs(norms - 1) <= 1e-3)))} passage vector(s) are not unit length")
    base = faiss.downcast_index(seg.faiss.storage) if isinstance(seg.faiss, faiss.IndexHNSW) else seg.faiss
    if isinstance(base, faiss.IndexFlat) and not np.array_equal(base.reconstruct_n(0, base.ntotal), vectors):
        damaged("the FAISS index holds other vectors than vectors.npy")
