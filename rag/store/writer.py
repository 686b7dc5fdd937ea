"""Adding and deleting articles: each ingest writes one new segment, each delete writes tombstones.

Nothing already written is copied or rewritten: an ingest of 10 articles into an
index of a million passages writes a segment of 10 articles and a new manifest;
a delete writes only a manifest whose segments list the deleted article rows.
Merges (:mod:`.merge`) later fold small segments together and drop tombstoned rows.
Call these under :func:`~.commit.writer_lock`.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import RagError
from ..text.units import unit_runs
from ..types import Article
from .article_columns import OPTIONAL_COLUMNS, select_list
from .article_columns import values as optional_values
from .commit import build_segment, commit
from .faiss_index import build_faiss, choose_index_type
from .layout import is_legacy, live_manifest, read_pointer
from .manifest import FORMAT_VERSION, Manifest, SegmentInfo
from .migrate import migrate_legacy
from .postings import Postings
from .segment import (
    META_COLUMNS,
    PASSAGE_DTYPE,
    STORE,
    UNIT_DTYPE,
    decode_text,
    write_segment,
)


@dataclass(frozen=True)
class NewArticle:
    """An article to add, cut into sentence units and passages (runs of units)."""

    article: Article
    units: Sequence  # spans with .start/.end into article.text
    passages: Sequence  # spans covering whole units


@dataclass(frozen=True)
class IndexSpec:
    """What a new index records about how it was built."""

    embedding_model: str
    embedding_backend: str
    dim: int
    chunk_max_tokens: int
    chunk_overlap_tokens: int
    index_setting: str = "auto"

    def manifest(self) -> Manifest:
        return Manifest(
            format_version=FORMAT_VERSION, embedding_model=self.embedding_model, dim=self.dim,
            chunk_max_tokens=self.chunk_max_tokens, chunk_overlap_tokens=self.chunk_overlap_tokens,
            index_type=self.index_setting, generation=0, created_at=time.time(),
            embedding_backend=self.embedding_backend, index_setting=self.index_setting,
        ).with_segments([])


class IndexState:
    """The live manifest and the articles it holds, read without opening vectors or FAISS."""

    def __init__(self, root: Path):
        root = Path(root)
        if is_legacy(read_pointer(root) if root.is_dir() else None):
            migrate_legacy(root)
        self.root = root
        self.manifest = live_manifest(root) if root.is_dir() else None
        self.row_of: dict[str, tuple[int, int]] = {}  # article id -> (segment index, row)
        self._articles: list[Article] | None = None
        for k, info in enumerate(self.manifest.segments if self.manifest else ()):
            dead = set(info.deleted)
            for row, aid in _query(root / info.name, "SELECT row, article_id FROM articles"):
                if row not in dead:
                    self.row_of[aid] = (k, row)

    def __contains__(self, article_id: str) -> bool:
        return article_id in self.row_of

    def articles(self) -> list[Article]:
        """The live articles' metadata (no text), read from the article stores only.

        Read once per state (curation asks twice: for updates, then for wire copies;
        at 100k articles each read is a second or so). Callers must not change the list."""
        if self._articles is None:
            out: list[Article] = []
            for info in self.manifest.segments if self.manifest else ():
                dead = set(info.deleted)
                out += [a for row, a in _articles(self.root / info.name) if row not in dead]
            self._articles = out
        return self._articles

    def text_of(self, article_id: str) -> str:
        k, row = self.row_of[article_id]
        return _articles(self.root / self.manifest.segments[k].name, [row], text=True)[0][1].text


def _query(folder: Path, sql: str, args: Sequence = ()) -> list[tuple]:
    return _with_store(folder, lambda db: db.execute(sql, tuple(args)).fetchall())


def _with_store(folder: Path, read):
    db = sqlite3.connect(f"file:{folder / STORE}?mode=ro", uri=True)
    db.text_factory = decode_text
    try:
        return read(db)
    except sqlite3.Error as exc:
        raise RagError(f"The article store {folder / STORE} is unreadable ({exc}). Run `rag check --index {folder.parent}`.") from exc
    finally:
        db.close()


def _articles(folder: Path, rows: Sequence[int] | None = None, *, text: bool = False) -> list[tuple[int, Article]]:
    """(row, Article) of a segment's articles (``rows``: only these), optional fields included."""

    def read(db: sqlite3.Connection) -> list[tuple[int, Article]]:
        where = f" WHERE row IN ({','.join('?' * len(rows))})" if rows is not None else ""
        body = "text" if text else "''"
        recs = db.execute(
            f"SELECT {META_COLUMNS}, {body}, {select_list(db)} FROM articles{where} ORDER BY row", tuple(rows or ())
        ).fetchall()
        out = []
        for row, aid, title, source, url, date, author, origin, body_text, *extra in recs:
            out.append((row, Article(aid, title, body_text, source, url, date, author, origin,
                                     **dict(zip(OPTIONAL_COLUMNS, extra)))))
        return out

    return _with_store(folder, read)


def add_segment(
    state: IndexState,
    spec: IndexSpec,
    items: list[NewArticle],
    vectors: np.ndarray,
    unit_vectors: np.ndarray,
    index_texts: list[str],
    *,
    replaces: Sequence[str] = (),
) -> Manifest:
    """Write ``items`` as one new segment and commit a manifest that adds it.

    ``vectors`` and ``index_texts`` follow the items' passages in order,
    ``unit_vectors`` their units. ``replaces``: indexed articles (older versions of
    the new ones) tombstoned in the same commit, so a reader sees one version only.
    """
    base = state.manifest or spec.manifest()
    if replaces:
        base, _ = _tombstoned(state, replaces)
    first_row = base.next_row
    records, p_rows, u_rows = [], [], []
    for i, item in enumerate(items):
        a, row = item.article, first_row + i
        records.append((row, a.article_id, a.title, a.source, a.url, a.published_at, a.author, a.origin, a.text, None,
                        *optional_values(a)))
        first_unit = len(u_rows)
        u_rows.extend((row, u.start, u.end) for u in item.units)
        for p, (lo, hi) in zip(item.passages, unit_runs(item.units, item.passages)):
            p_rows.append((row, p.start, p.end, first_unit + lo, first_unit + hi))
    passages = np.array(p_rows, dtype=PASSAGE_DTYPE)
    units = np.array(u_rows, dtype=UNIT_DTYPE)
    postings = Postings.from_texts(index_texts)
    index_type = segment_index_type(base.index_setting, len(passages))
    faiss_index = build_faiss(np.asarray(vectors, dtype=np.float32), index_type)
    info = SegmentInfo("", len(items), len(passages), len(units), index_type)
    info = build_segment(
        state.root, info,
        lambda folder: write_segment(folder, records, passages, vectors, units, unit_vectors, faiss_index, postings),
    )
    manifest = base.with_segments([*base.segments, info], next_row=first_row + len(items))
    return commit(state.root, manifest)


def segment_index_type(setting: str, n: int) -> str:
    """FAISS index kind of one segment: exact while small (IVF cannot train on a few passages)."""
    kind = choose_index_type(setting, n)
    if kind == "ivf" and n < 4096:
        return "flat"
    return kind


def delete_articles(state: IndexState, article_ids: list[str]) -> tuple[Manifest, list[Article]]:
    """Tombstone these articles in a new manifest; returns it and what was removed."""
    manifest, removed = _tombstoned(state, article_ids)
    return commit(state.root, manifest), removed


def _tombstoned(state: IndexState, article_ids: Sequence[str]) -> tuple[Manifest, list[Article]]:
    """The live manifest with these articles tombstoned (not committed), and the articles."""
    missing = [a for a in article_ids if a not in state.row_of]
    if missing:
        raise RagError(f"No article with id {', '.join(missing)} in {state.root} (see `rag articles`).")
    manifest = state.manifest
    by_segment: dict[int, list[int]] = {}
    for aid in dict.fromkeys(article_ids):
        k, row = state.row_of[aid]
        by_segment.setdefault(k, []).append(row)
    removed: list[Article] = []
    segments = list(manifest.segments)
    for k, rows in by_segment.items():
        info = segments[k]
        folder = state.root / info.name
        # Text included, so a caller can put them back (undo) with ingest_articles.
        removed += [a for _, a in _articles(folder, rows, text=True)]
        article_rows = np.load(folder / "passages.npy", mmap_mode="r", allow_pickle=False)["article_row"]
        n_dead = int(np.isin(article_rows, rows).sum())
        deleted = tuple(sorted({*info.deleted, *rows}))
        segments[k] = replace(info, deleted=deleted, deleted_passages=info.deleted_passages + n_dead)
    # A segment with nothing left is dropped from the manifest (and its folder collected).
    kept = [s for s in segments if s.live_articles > 0]
    return manifest.with_segments(kept), removed
