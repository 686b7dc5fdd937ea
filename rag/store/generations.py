"""Writing an index: generations built aside and swapped in atomically.

An index folder holds::

    CURRENT            name of the live generation (replaced atomically)
    gen-000007/        one complete, immutable generation (see :mod:`.snapshot`)
    .lock              serialises writers

Writers build a new generation in a temporary folder, fsync it, rename it into
place and only then point CURRENT at it, so a crash or kill at any moment leaves
the previous generation live and consistent. Readers open whatever CURRENT names
and never see a half-written index.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import IndexLoadError, RagError
from ..text.headers import index_text
from ..types import Article
from . import article_columns
from .bm25_tokens import TOKENS_DIR, Bm25Tokens
from .folder import check_index_folder
from .manifest import Manifest, check_compatible
from .snapshot import IndexSnapshot

log = logging.getLogger(__name__)

CURRENT = "CURRENT"


def current_generation(root: Path) -> Path | None:
    pointer = root / CURRENT
    if not pointer.exists():
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    gen = root / name
    if not name.startswith("gen-") or not gen.is_dir():
        raise IndexLoadError(
            f"{pointer} names {name!r}, which is not an index generation. Delete {root} and "
            "ingest again."
        )
    return gen


def open_index(root: Path, *, embedding_model: str | None = None) -> IndexSnapshot:
    """Open the live generation, checking it was built with the same model."""
    root = Path(root)
    check_index_folder(root, create=False)
    gen = current_generation(root) if root.exists() else None
    if gen is None:
        raise IndexLoadError(
            f"No index at {root}. Build one with `rag ingest PATH...` (or set RAG_INDEX)."
        )
    manifest = Manifest.load(gen / "manifest.json")
    check_compatible(manifest, root, embedding_model)
    return IndexSnapshot(root, gen, manifest)


@contextmanager
def writer_lock(root: Path) -> Iterator[None]:
    """One writer at a time per index folder (readers never wait)."""
    check_index_folder(root, create=True)
    with open(root / ".lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another ingest into %s to finish", root)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _fsync_tree(path: Path) -> None:
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class GenerationBuilder:
    """Builds the next generation aside; :meth:`commit` makes it live atomically."""

    def __init__(self, root: Path, base: IndexSnapshot | None):
        self.root = root
        self.base = base
        self.tmp = Path(tempfile.mkdtemp(prefix=".tmp-gen-", dir=root))
        self.db_path = self.tmp / "store.sqlite"
        if base is not None:
            shutil.copyfile(base.gen_dir / "store.sqlite", self.db_path)
        self.db = sqlite3.connect(self.db_path)
        self.deleted = False
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS articles (row INTEGER PRIMARY KEY AUTOINCREMENT, "
            "article_id TEXT UNIQUE NOT NULL, title TEXT NOT NULL, source TEXT, url TEXT, "
            "published_at TEXT, author TEXT, origin TEXT, text TEXT NOT NULL, added_at REAL)"
        )
        article_columns.ensure_columns(self.db)

    def add_article(self, article: Article) -> int:
        extra = article_columns.OPTIONAL_COLUMNS
        cur = self.db.execute(
            "INSERT INTO articles (article_id, title, source, url, published_at, author, origin, "
            f"text, added_at, {', '.join(extra)}) VALUES (?,?,?,?,?,?,?,?,?{',?' * len(extra)})",
            (
                article.article_id,
                article.title,
                article.source,
                article.url,
                article.published_at,
                article.author,
                article.origin,
                article.text,
                time.time(),
                *article_columns.values(article),
            ),
        )
        return int(cur.lastrowid)

    def delete_articles(self, article_ids: list[str]) -> None:
        self.db.executemany("DELETE FROM articles WHERE article_id = ?", [(a,) for a in article_ids])
        self.deleted = True

    def all_index_texts(self, passages: np.ndarray) -> list[str]:
        """Header + verbatim text of every passage, for a full BM25 re-tokenize.

        Only needed for generations written without ``bm25_tokens/``.
        """
        metas: dict[int, tuple[Article, str]] = {}
        for row, aid, title, source, url, date, date_source, text in self.db.execute(
            "SELECT row, article_id, title, source, url, published_at, date_source, text FROM articles"
        ):
            metas[row] = (Article(aid, title, "", source, url, date, date_source=date_source), text)
        out = []
        for rec in passages:
            meta, text = metas[int(rec["article_row"])]
            out.append(index_text(meta, text[int(rec["start"]) : int(rec["end"])]))
        return out

    def commit(
        self,
        manifest: Manifest,
        passages: np.ndarray,
        vectors: np.ndarray,
        units: np.ndarray,
        unit_vectors: np.ndarray,
        faiss_index,
        bm25,
        bm25_tokens: Bm25Tokens | None = None,
    ) -> Path:
        """Write the generation and make it live. ``bm25_tokens`` must be the corpus
        ``bm25`` was built from; without it the next ingest re-tokenizes everything."""
        import faiss

        if bm25_tokens is not None and len(bm25_tokens) != len(passages):
            raise RagError(
                f"Internal error: {len(bm25_tokens)} tokenized passages for {len(passages)} "
                "passages; nothing was written, the live index is unchanged."
            )
        self.db.commit()
        if self.deleted:
            self.db.execute("VACUUM")  # reclaim the removed articles' text
        self.db.close()
        np.save(self.tmp / "passages.npy", passages, allow_pickle=False)
        np.save(self.tmp / "vectors.npy", np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
        np.save(self.tmp / "units.npy", units, allow_pickle=False)
        np.save(self.tmp / "unit_vectors.npy", np.ascontiguousarray(unit_vectors, dtype=np.float16), allow_pickle=False)
        faiss.write_index(faiss_index, str(self.tmp / "faiss.index"))
        if bm25 is not None:
            bm25.save(str(self.tmp / "bm25"), show_progress=False)
        if bm25_tokens is not None:
            bm25_tokens.save(self.tmp / TOKENS_DIR)
        (self.tmp / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2), encoding="utf-8")
        _fsync_tree(self.tmp)
        final = self.root / f"gen-{manifest.generation:06d}"
        os.rename(self.tmp, final)
        _fsync_dir(self.root)
        pointer_tmp = self.root / f".{CURRENT}.tmp"
        pointer_tmp.write_text(final.name + "\n", encoding="utf-8")
        fd = os.open(pointer_tmp, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        os.replace(pointer_tmp, self.root / CURRENT)  # the commit point
        _fsync_dir(self.root)
        return final

    def abort(self) -> None:
        try:
            self.db.close()
        except sqlite3.Error:
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def collect_garbage(root: Path) -> None:
    """Remove generations other than the live one, and leftovers of crashed writers.

    Readers that still hold an old generation keep working: on POSIX an open or
    memory-mapped file stays readable after it is unlinked.
    """
    live = current_generation(root)
    for child in root.iterdir():
        if child.name.startswith(".tmp-gen-") or (
            child.name.startswith("gen-") and (live is None or child != live)
        ):
            shutil.rmtree(child, ignore_errors=True)
