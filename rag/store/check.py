"""``rag check [--repair]``: verify an index on disk, byte for byte, and clean up leftovers.

What is checked, from cheapest to dearest:

* ``CURRENT`` names a generation, and the leftovers of interrupted writers (folders
  it does not name, temporary folders) are listed; ``--repair`` removes them;
* every file recorded in the manifest has its size and SHA-256 digest (flipped bytes
  inside vectors, FAISS data or the article store are found here, not at load);
* SQLite's ``PRAGMA integrity_check``, and every article text decodes as UTF-8;
* the parts agree: passages, vectors, FAISS entries, BM25 documents and token runs
  count the same; units and their vectors too; every passage lies inside its
  article's text and covers existing sentence units; the FAISS vectors equal the
  stored ones; every vector has unit length.

Damage is reported with what to do about it; nothing damaged is deleted.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import IndexLoadError
from .checksums import digest_problems
from .generations import collect_garbage, current_generation, leftovers, open_index, writer_lock
from .manifest import Manifest


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
        gen = current_generation(root)
    except IndexLoadError as exc:
        report.findings.append(Finding("damaged", "CURRENT", str(exc)))
        return report
    if gen is None:
        report.findings.append(Finding("damaged", "CURRENT", "missing: no index was ever committed here", rebuild_hint(root)))
        return report

    if repair:
        found = leftovers(root)
        with writer_lock(root):  # taking the lock removes leftovers already
            collect_garbage(root)
        report.repaired = [p.name for p in found if not p.exists()]
    for p in leftovers(root):
        report.findings.append(
            Finding("leftover", p.name, "not named by CURRENT (left by an interrupted write)", "`rag check --repair` removes it")
        )

    try:
        manifest = Manifest.load(gen / "manifest.json")
    except IndexLoadError as exc:
        report.findings.append(Finding("damaged", f"{gen.name}/manifest.json", str(exc), rebuild_hint(root)))
        return report
    _check_files(report, gen, manifest)
    _check_sqlite(report, gen)
    try:
        snap = open_index(root)
    except IndexLoadError as exc:
        report.findings.append(Finding("damaged", gen.name, str(exc), rebuild_hint(root)))
        return report
    try:
        _check_parts(report, snap)
    finally:
        snap.close()
    return report


def _check_files(report: CheckReport, gen: Path, manifest: Manifest) -> None:
    if not manifest.files:
        report.findings.append(
            Finding("note", f"{gen.name}/manifest.json", "no checksums recorded (written by an older version); "
                    "the next ingest or removal records them")
        )
        return
    for problem in digest_problems(gen, manifest.files):
        report.findings.append(Finding("damaged", f"{gen.name}/{problem.split(' ', 1)[0]}", problem.split(" ", 1)[1],
                                       rebuild_hint(report.root)))


def _check_sqlite(report: CheckReport, gen: Path) -> None:
    where = f"{gen.name}/store.sqlite"
    try:
        db = sqlite3.connect(f"file:{gen / 'store.sqlite'}?mode=ro", uri=True)
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


def _check_parts(report: CheckReport, snap) -> None:
    """Counts and cross-references between the parts of one opened generation."""
    import faiss

    where = snap.gen_dir.name
    hint = rebuild_hint(report.root)
    n = len(snap.passages)
    report.articles, report.passages = len(snap.meta_by_row), n

    def damaged(problem: str) -> None:
        report.findings.append(Finding("damaged", where, problem, hint))

    counts = {
        "passages": n,
        "vectors": int(snap.vectors.shape[0]),
        "FAISS entries": int(snap.faiss.ntotal),
        "manifest passages": snap.manifest.n_passages,
    }
    if snap.bm25 is not None:
        counts["BM25 documents"] = int(snap.bm25.scores["num_docs"])
    tokens = snap.bm25_tokens()
    if tokens is not None:
        counts["BM25 token runs"] = len(tokens)
    if len(set(counts.values())) > 1:
        damaged("counts disagree: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if len(snap.units) != snap.unit_vectors.shape[0]:
        damaged(f"{len(snap.units)} sentence units but {snap.unit_vectors.shape[0]} unit vectors")
    if len(snap.meta_by_row) != snap.manifest.n_articles:
        damaged(f"{len(snap.meta_by_row)} articles in store.sqlite, the manifest says {snap.manifest.n_articles}")
    if not n:
        return
    rows = snap.passages["article_row"]
    unknown = np.setdiff1d(np.unique(rows), np.fromiter(snap.meta_by_row, dtype=np.int64))
    if len(unknown):
        damaged(f"{len(unknown)} article row(s) of passages are not in store.sqlite (e.g. {int(unknown[0])})")
        return
    without = set(snap.meta_by_row) - set(np.unique(rows).tolist())
    if without:
        damaged(f"{len(without)} article(s) have no passages (e.g. row {min(without)})")
    lo, hi = snap.passages["unit_lo"], snap.passages["unit_hi"]
    if np.any(lo < 0) or np.any(hi > len(snap.units)) or np.any(hi <= lo):
        damaged("passages point at sentence units that do not exist")
    elif np.any(snap.units["article_row"][lo] != rows):
        damaged("passages cover sentence units of other articles")
    lengths = {r: len(snap.article_text(r)) for r in snap.meta_by_row}
    ends = np.array([lengths[int(r)] for r in rows])
    if np.any(snap.passages["start"] < 0) or np.any(snap.passages["end"] > ends) or np.any(snap.passages["end"] <= snap.passages["start"]):
        damaged("passages reach outside their article's text")
    vectors = np.asarray(snap.vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1)
    if not np.all(np.isfinite(norms)) or np.any(np.abs(norms - 1) > 1e-3):
        damaged(f"{int(np.sum(~(np.abs(norms - 1) <= 1e-3)))} passage vector(s) are not unit length")
    base = faiss.downcast_index(snap.faiss.storage) if isinstance(snap.faiss, faiss.IndexHNSW) else snap.faiss
    if isinstance(base, faiss.IndexFlat) and not np.array_equal(base.reconstruct_n(0, base.ntotal), vectors):
        damaged("the FAISS index holds other vectors than vectors.npy")
