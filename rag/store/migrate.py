"""Migrating an index of format 1 (one folder per generation, rewritten by every write) to segments.

A format-1 generation is one segment already: the same article store (rows are its
keys), passages, vectors, units and FAISS index. The migration hard-links those
files into a new segment folder (no copy), turns the stored BM25 token ids into
postings (re-tokenizing the texts only for generations written before token ids
were stored), records checksums and commits a manifest naming the segment. It runs
once, under the writer lock, the first time the index is opened, and says so.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import time
from pathlib import Path

import numpy as np

from ..errors import IndexLoadError
from ..text.headers import index_text
from ..types import Article
from .bm25_tokens import TOKENS_DIR, Bm25Tokens
from .commit import build_segment, commit, writer_lock
from .faiss_index import choose_index_type
from .layout import is_legacy, read_pointer
from .manifest import FORMAT_VERSION, LEGACY_FORMAT, Manifest, SegmentInfo
from .postings import POSTINGS_DIR, Postings

log = logging.getLogger(__name__)

LINKED = ("store.sqlite", "passages.npy", "vectors.npy", "units.npy", "unit_vectors.npy", "faiss.index")


def migrate_legacy(root: Path) -> None:
    """Turn the live format-1 generation into a one-segment index (no-op if done already)."""
    try:
        with writer_lock(root):
            name = read_pointer(root)
            if not is_legacy(name):
                return  # another process migrated it meanwhile
            _migrate(root, root / name)
    except OSError as exc:
        raise IndexLoadError(
            f"The index at {root} is in an older format and could not be migrated ({exc.strerror or exc}). "
            "Open it once with write access to the folder, or delete it and ingest again."
        ) from exc


def _migrate(root: Path, gen: Path) -> None:
    t = time.perf_counter()
    try:
        old = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexLoadError(f"The index manifest {gen / 'manifest.json'} is unreadable ({exc}). Delete {root} and ingest again.") from exc
    if old.get("format_version") != LEGACY_FORMAT:
        raise IndexLoadError(f"The generation {gen} has format version {old.get('format_version')!r}; delete {root} and ingest again.")
    passages = np.load(gen / "passages.npy", allow_pickle=False)
    n_units = int(np.load(gen / "units.npy", mmap_mode="r", allow_pickle=False).shape[0])
    db = sqlite3.connect(f"file:{gen / 'store.sqlite'}?mode=ro", uri=True)
    db.text_factory = lambda b: b.decode("utf-8", "replace")
    try:
        rows = db.execute("SELECT row, article_id, title, source, url, published_at, text FROM articles").fetchall()
    finally:
        db.close()
    tok_dir = gen / TOKENS_DIR
    if tok_dir.is_dir():
        tokens = Bm25Tokens.load(tok_dir, len(passages))
        postings = Postings.from_runs(np.asarray(tokens.ids), np.diff(tokens.offsets), tokens.vocab)
    else:
        log.info("%s has no stored BM25 tokens: tokenizing all %d passages once", gen, len(passages))
        metas = {r: (Article(aid, title, "", source, url, date), text) for r, aid, title, source, url, date, text in rows}
        texts = []
        for rec in passages:
            meta, text = metas[int(rec["article_row"])]
            texts.append(index_text(meta, text[int(rec["start"]) : int(rec["end"])]))
        postings = Postings.from_texts(texts)

    def write(folder: Path) -> None:
        for f in LINKED:
            try:
                os.link(gen / f, folder / f)
            except OSError:
                shutil.copy2(gen / f, folder / f)
        postings.save(folder / POSTINGS_DIR)

    info = build_segment(root, SegmentInfo("", len(rows), len(passages), n_units, old["index_type"]), write)
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        embedding_model=old["embedding_model"],
        dim=int(old["dim"]),
        chunk_max_tokens=int(old["chunk_max_tokens"]),
        chunk_overlap_tokens=int(old["chunk_overlap_tokens"]),
        index_type=old["index_type"],
        generation=0,
        created_at=time.time(),
        embedding_backend=old.get("embedding_backend", "torch"),
        # "auto" unless the old type is not what auto would have chosen (set explicitly)
        index_setting="auto" if old["index_type"] == choose_index_type("auto", len(passages)) else old["index_type"],
        next_row=max((r[0] for r in rows), default=0) + 1,
    ).with_segments([info])
    commit(root, manifest)
    log.warning(
        "migrated the index at %s to format %d (segments), once: %d articles, %d passages, %.1fs",
        root, FORMAT_VERSION, len(rows), len(passages), time.perf_counter() - t,
    )
