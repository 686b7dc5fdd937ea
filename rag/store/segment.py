"""One segment: an immutable folder of articles with their passages, vectors and postings.

Layout of a segment folder (``seg-000004/``)::

    store.sqlite      articles (metadata + cleaned text), keyed by article row
    passages.npy      article row, start, end (offsets into the text), and the run
                      [unit_lo, unit_hi) of this segment's sentence units it covers
    vectors.npy       normalised float32 embeddings, one row per passage (pooled from
                      the units and the header, or a pass over the passage)
    units.npy         sentence units: article row, start, end
    unit_vectors.npy  float16 embeddings of the units (answer extraction, reranking)
    faiss.index       FAISS index over vectors.npy (exact for small segments)
    postings/         BM25 postings (see :mod:`.postings`)

Article rows are unique across the whole index and never reused, so a row names an
article wherever it lies and through every merge. A segment is written once, in a
temporary folder, and never modified; deletes are tombstones in the manifest.
Nothing is unpickled.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..errors import IndexLoadError
from ..types import Article
from .article_columns import OPTIONAL_COLUMNS, select_list
from .checksums import size_problems
from .faiss_index import hnsw_ef_search
from .manifest import SegmentInfo
from .postings import POSTINGS_DIR, Postings

# Passages are runs of sentence units [unit_lo, unit_hi) of one article.
PASSAGE_DTYPE = np.dtype(
    [("article_row", "<i4"), ("start", "<i8"), ("end", "<i8"), ("unit_lo", "<i8"), ("unit_hi", "<i8")]
)
UNIT_DTYPE = np.dtype([("article_row", "<i4"), ("start", "<i8"), ("end", "<i8")])
STORE = "store.sqlite"
ARTICLE_TABLE = (
    "CREATE TABLE articles (row INTEGER PRIMARY KEY, article_id TEXT UNIQUE NOT NULL, "
    "title TEXT NOT NULL, source TEXT, url TEXT, published_at TEXT, author TEXT, origin TEXT, "
    "text TEXT NOT NULL, added_at REAL, " + ", ".join(f"{c} TEXT" for c in OPTIONAL_COLUMNS) + ")"
)
META_COLUMNS = "row, article_id, title, source, url, published_at, author, origin"
# A full record: what a merge copies and write_segment takes, in this order.
ARTICLE_COLUMNS = f"{META_COLUMNS}, text, added_at, {', '.join(OPTIONAL_COLUMNS)}"


def decode_text(raw: bytes) -> str:
    """SQLite TEXT to str; bytes that are not UTF-8 become U+FFFD."""
    return raw.decode("utf-8", errors="replace")


def damaged(folder: Path, what: str) -> IndexLoadError:
    return IndexLoadError(
        f"The index at {folder.parent} is damaged: {folder.name}/{what}. Run `rag check --index "
        f"{folder.parent}` for details and what to do."
    )


class Segment:
    """One segment opened read-only. Immutable and shared by every snapshot that lists it."""

    def __init__(self, folder: Path, info: SegmentInfo):
        import faiss

        self.folder = folder
        self.info = info
        # Cheap checks first (stat only): a truncated file must not be memory-mapped.
        problems = size_problems(folder, info.files)
        if problems:
            raise damaged(folder, problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
        try:
            self.passages = np.load(folder / "passages.npy", allow_pickle=False)
            self.vectors = np.load(folder / "vectors.npy", mmap_mode="r", allow_pickle=False)
            self.units = np.load(folder / "units.npy", allow_pickle=False)
            self.unit_vectors = np.load(folder / "unit_vectors.npy", mmap_mode="r", allow_pickle=False)
            self.faiss = faiss.read_index(str(folder / "faiss.index"))
            self.postings = Postings.load(folder / POSTINGS_DIR, len(self.passages))
            self._db = sqlite3.connect(f"file:{folder / STORE}?mode=ro", uri=True, check_same_thread=False)
            # Invalid UTF-8 in a stored text (a flipped byte) reads as U+FFFD instead
            # of failing every search that touches the article; `rag check` reports it.
            self._db.text_factory = decode_text
            rows = self._db.execute(
                f"SELECT {META_COLUMNS}, {select_list(self._db)} FROM articles ORDER BY row"
            ).fetchall()
        except IndexLoadError as exc:
            raise damaged(folder, str(exc)) from exc
        except (OSError, ValueError, RuntimeError, sqlite3.Error) as exc:
            raise damaged(folder, f"unreadable ({exc})") from exc
        self.meta_by_row: dict[int, Article] = {}
        self.row_by_id: dict[str, int] = {}
        for row, aid, title, source, url, date, author, origin, *extra in rows:
            self.meta_by_row[row] = Article(aid, title, "", source, url, date, author, origin,
                                            **dict(zip(OPTIONAL_COLUMNS, extra)))
            self.row_by_id[aid] = row
        n = len(self.passages)
        counts = (n, self.vectors.shape[0], self.faiss.ntotal, info.n_passages, self.postings.n_docs)
        if len(set(counts)) != 1 or len(rows) != info.n_articles or len(self.units) != info.n_units:
            raise damaged(
                folder,
                f"parts disagree (passages {n}, vectors {self.vectors.shape[0]}, FAISS {self.faiss.ntotal}, "
                f"BM25 {self.postings.n_docs}, manifest {info.n_passages}; articles {len(rows)} of "
                f"{info.n_articles}; units {len(self.units)} of {info.n_units})",
            )
        if self.passages.dtype != PASSAGE_DTYPE or self.units.dtype != UNIT_DTYPE:
            raise damaged(folder, "passages.npy or units.npy has an unknown layout")
        if len(self.units) != self.unit_vectors.shape[0] or (n and int(self.passages["unit_hi"].max()) > len(self.units)):
            raise damaged(folder, "the sentence table does not match its passages")
        if isinstance(self.faiss, faiss.IndexHNSW):
            self.faiss.hnsw.efSearch = hnsw_ef_search(self.faiss.ntotal)
        self._lock = threading.Lock()
        self._text_cache: OrderedDict[int, str] = OrderedDict()

    @property
    def is_flat(self) -> bool:
        import faiss

        return isinstance(self.faiss, faiss.IndexFlat)

    def article_text(self, row: int) -> str:
        with self._lock:
            text = self._text_cache.get(row)
            if text is not None:
                self._text_cache.move_to_end(row)
                return text
            try:
                found = self._db.execute("SELECT text FROM articles WHERE row = ?", (row,)).fetchone()
            except sqlite3.Error as exc:
                raise damaged(self.folder, f"{STORE} is unreadable ({exc})") from exc
            if found is None:
                raise KeyError(row)
            text = found[0]
            self._text_cache[row] = text
            if len(self._text_cache) > 2048:
                self._text_cache.popitem(last=False)
            return text

    def close(self) -> None:
        self._db.close()


def write_segment(
    folder: Path,
    articles: list[tuple],
    passages: np.ndarray,
    vectors: np.ndarray,
    units: np.ndarray,
    unit_vectors: np.ndarray,
    faiss_index,
    postings: Postings,
) -> None:
    """Write a new segment's files into the empty folder ``folder``.

    ``articles``: records in ``ARTICLE_COLUMNS`` order (row first; ``added_at`` None:
    now; then the optional columns). ``passages`` and ``units`` use this segment's own unit numbering.
    """
    import faiss

    n = len(passages)
    if not (n == len(vectors) == faiss_index.ntotal == postings.n_docs) or len(units) != len(unit_vectors):
        raise IndexLoadError(
            f"Internal error: segment parts disagree (passages {n}, vectors {len(vectors)}, FAISS "
            f"{faiss_index.ntotal}, BM25 {postings.n_docs}; units {len(units)}, unit vectors "
            f"{len(unit_vectors)}). Nothing was written; the live index is unchanged."
        )
    db = sqlite3.connect(folder / STORE)
    try:
        db.execute(ARTICLE_TABLE)
        now = time.time()
        db.executemany(
            f"INSERT INTO articles ({ARTICLE_COLUMNS}) VALUES ({','.join('?' * (10 + len(OPTIONAL_COLUMNS)))})",
            [(*a[:9], a[9] if a[9] is not None else now, *a[10:]) for a in articles],
        )
        db.commit()
    finally:
        db.close()
    np.save(folder / "passages.npy", np.ascontiguousarray(passages, dtype=PASSAGE_DTYPE), allow_pickle=False)
    np.save(folder / "vectors.npy", np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
    np.save(folder / "units.npy", np.ascontiguousarray(units, dtype=UNIT_DTYPE), allow_pickle=False)
    np.save(folder / "unit_vectors.npy", np.ascontiguousarray(unit_vectors, dtype=np.float16), allow_pickle=False)
    faiss.write_index(faiss_index, str(folder / "faiss.index"))
    postings.save(folder / POSTINGS_DIR)
