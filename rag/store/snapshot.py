"""One index generation opened read-only: articles, passages, sentence units, vectors, BM25.

Layout of a generation folder::

    manifest.json     format version, embedding model, dimension, chunking, counts
    store.sqlite      articles (metadata + cleaned text)
    passages.npy      structured array: article row, start, end (offsets into text),
                      and the run of sentence units it covers
    vectors.npy       normalised float32 embeddings, one row per passage
    units.npy         sentence units: article row, start, end
    unit_vectors.npy  float16 embeddings of the units (answer extraction, reranking)
    faiss.index       FAISS index over vectors.npy (faiss.write_index)
    bm25/             bm25s index over header + passage text (numpy + JSON)
    bm25_tokens/      the tokenized (stemmed) BM25 corpus (see :class:`Bm25Tokens`)

Nothing is unpickled.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..errors import IndexLoadError, RagError
from ..types import Article, Passage
from .article_columns import OPTIONAL_COLUMNS, select_list
from .bm25_tokens import TOKENS_DIR, Bm25Tokens, check_token_files
from .faiss_index import faiss_single_thread, hnsw_ef_search
from .manifest import Manifest

# Passages are runs of sentence units [unit_lo, unit_hi) of one article.
PASSAGE_DTYPE = np.dtype(
    [("article_row", "<i4"), ("start", "<i8"), ("end", "<i8"), ("unit_lo", "<i8"), ("unit_hi", "<i8")]
)
UNIT_DTYPE = np.dtype([("article_row", "<i4"), ("start", "<i8"), ("end", "<i8")])


class IndexSnapshot:
    """One generation, opened read-only. Immutable and safe to share across threads."""

    def __init__(self, root: Path, gen_dir: Path, manifest: Manifest):
        import bm25s
        import faiss

        self.root = root
        self.gen_dir = gen_dir
        self.manifest = manifest
        try:
            self.passages = np.load(gen_dir / "passages.npy", allow_pickle=False)
            self.vectors = np.load(gen_dir / "vectors.npy", mmap_mode="r", allow_pickle=False)
            self.units = np.load(gen_dir / "units.npy", allow_pickle=False)
            self.unit_vectors = np.load(gen_dir / "unit_vectors.npy", mmap_mode="r", allow_pickle=False)
            self.faiss = faiss.read_index(str(gen_dir / "faiss.index"))
            self.bm25 = (
                bm25s.BM25.load(str(gen_dir / "bm25"), mmap=False, show_progress=False, verbosity=0)
                if manifest.n_passages
                else None
            )
            self._db = sqlite3.connect(
                f"file:{gen_dir / 'store.sqlite'}?mode=ro", uri=True, check_same_thread=False
            )
            rows = self._db.execute(
                "SELECT row, article_id, title, source, url, published_at, author, origin, "
                f"{select_list(self._db)} FROM articles ORDER BY row"
            ).fetchall()
        except (OSError, ValueError, RuntimeError, sqlite3.Error) as exc:
            raise IndexLoadError(
                f"The index generation {gen_dir} is damaged ({exc}). Delete {root} and ingest "
                "again, or restore it from a backup."
            ) from exc
        self._lock = threading.Lock()
        self._text_cache: OrderedDict[int, str] = OrderedDict()
        self.meta_by_row: dict[int, Article] = {}
        self.row_by_id: dict[str, int] = {}
        for row, aid, title, source, url, date, author, origin, *extra in rows:
            self.meta_by_row[row] = Article(aid, title, "", source, url, date, author, origin,
                                            **dict(zip(OPTIONAL_COLUMNS, extra)))
            self.row_by_id[aid] = row
        n = len(self.passages)
        if not (n == self.vectors.shape[0] == self.faiss.ntotal == manifest.n_passages) or len(
            rows
        ) != manifest.n_articles:
            raise IndexLoadError(
                f"The index at {root} is inconsistent (passages {n}, vectors "
                f"{self.vectors.shape[0]}, FAISS {self.faiss.ntotal}, manifest "
                f"{manifest.n_passages}). Delete it and ingest again."
            )
        if len(self.units) != self.unit_vectors.shape[0] or (n and int(self.passages["unit_hi"].max()) > len(self.units)):
            raise IndexLoadError(f"The sentence table at {gen_dir} does not match its passages. Delete {root} and ingest again.")
        if self.bm25 is not None and int(self.bm25.scores["num_docs"]) != n:
            raise IndexLoadError(f"The BM25 index at {gen_dir} does not match its passages.")
        check_token_files(gen_dir / TOKENS_DIR, n)
        if isinstance(self.faiss, faiss.IndexHNSW):
            self.faiss.hnsw.efSearch = hnsw_ef_search(self.faiss.ntotal)

    # -- articles and passages -------------------------------------------------
    def __len__(self) -> int:
        return len(self.passages)

    def articles(self) -> list[Article]:
        """Metadata of every article (``text`` left empty), in ingest order."""
        return list(self.meta_by_row.values())

    def passage_counts(self) -> dict[str, int]:
        rows, counts = np.unique(self.passages["article_row"], return_counts=True)
        return {self.meta_by_row[int(r)].article_id: int(c) for r, c in zip(rows, counts)}

    def article_text(self, row: int) -> str:
        with self._lock:
            text = self._text_cache.get(row)
            if text is not None:
                self._text_cache.move_to_end(row)
                return text
            found = self._db.execute("SELECT text FROM articles WHERE row = ?", (row,)).fetchone()
            if found is None:
                raise KeyError(row)
            text = found[0]
            self._text_cache[row] = text
            if len(self._text_cache) > 2048:
                self._text_cache.popitem(last=False)
            return text

    def article(self, article_id: str) -> Article:
        """The full article, text included."""
        row = self.row_by_id.get(article_id)
        if row is None:
            raise RagError(f"No article with id {article_id!r} in the index (see `rag articles`).")
        meta = self.meta_by_row[row]
        return Article(**{**asdict(meta), "text": self.article_text(row)})

    def passage(self, pid: int) -> Passage:
        rec = self.passages[pid]
        row = int(rec["article_row"])
        start, end = int(rec["start"]), int(rec["end"])
        text = self.article_text(row)[start:end]
        return Passage(int(pid), self.meta_by_row[row].article_id, start, end, text)

    def passage_units(self, pid: int) -> range:
        rec = self.passages[pid]
        return range(int(rec["unit_lo"]), int(rec["unit_hi"]))

    def unit_vectors_f32(self, units) -> np.ndarray:
        """Float32 copies of some units' vectors (stored as float16).

        faiss's fp16 decoder (F16C/AVX-512) is several times faster than numpy's
        float16 cast, the costliest step of scoring a search's sentences
        (``python -m eval.bench query``: ~3 ms of a search on this 2-core machine).
        """
        rows = np.asarray(self.unit_vectors[units])
        if rows.dtype != np.float16 or rows.ndim != 2 or not len(rows):
            return np.asarray(rows, dtype=np.float32)
        import faiss

        sq = faiss.ScalarQuantizer(rows.shape[1], faiss.ScalarQuantizer.QT_fp16)
        with faiss_single_thread():
            return sq.decode(np.ascontiguousarray(rows).view(np.uint8))

    # -- candidate search ------------------------------------------------------
    def dense_scores(self, qvec: np.ndarray) -> np.ndarray | None:
        """Inner product of the question with every passage, for an exact (flat) index.

        One pass over the stored vectors serves the main search and every sub-search
        (each a mask over it, as for BM25), where a faiss search per sub-search
        scans them all again: on MultiHop-RAG's 8,802 passages one pass plus two
        masked selections take 0.44 ms against 0.91 ms, on 50,000 4.4 against 10.4.
        Approximate indexes (HNSW, IVF) are searched through faiss instead: None.
        """
        import faiss

        if not isinstance(self.faiss, faiss.IndexFlat):
            return None
        return np.asarray(self.vectors) @ np.asarray(qvec, dtype=np.float32)

    def dense_search(self, qvec: np.ndarray, depth: int, mask: np.ndarray | None) -> tuple[list[int], list[float]]:
        """The ``depth`` nearest passages through faiss, only among ``mask`` when given."""
        import faiss

        depth = min(depth, len(self))
        params = None
        if mask is not None:
            allowed = np.flatnonzero(mask).astype(np.int64)
            depth = min(depth, len(allowed))
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
        if depth == 0:
            return [], []
        with faiss_single_thread():
            sc, ids = self.faiss.search(qvec.reshape(1, -1).astype(np.float32), depth, params=params)
        keep = ids[0] >= 0
        return ids[0][keep].tolist(), sc[0][keep].tolist()

    def passage_vectors(self, pids) -> np.ndarray:
        """Float32 passage vectors, in the order of ``pids``."""
        return np.asarray(self.vectors[np.asarray(pids, dtype=np.int64)], dtype=np.float32)

    def bm25_scores(self, tokens: list[str]) -> np.ndarray | None:
        """BM25 score of every passage for these query tokens (None: no known token)."""
        if self.bm25 is None:
            return None
        known = [t for t in tokens if t in self.bm25.vocab_dict]
        return self.bm25.get_scores(known) if known else None

    def vocabulary(self) -> dict[str, int]:
        """BM25 term -> id (terms stemmed as :func:`rag.text.terms.bm25_tokenize` does)."""
        return self.bm25.vocab_dict if self.bm25 is not None else {}

    def term_idf(self) -> np.ndarray:
        """BM25 IDF per vocabulary term id, from the document frequencies in the bm25s matrix."""
        if self.bm25 is None:
            return np.zeros(0, dtype=np.float32)
        indptr = np.asarray(self.bm25.scores["indptr"])
        # bm25s keeps a trailing "" entry in its vocabulary that has no column.
        df = np.zeros(len(self.bm25.vocab_dict), dtype=np.float64)
        df[: len(indptr) - 1] = np.diff(indptr)
        n = float(self.bm25.scores["num_docs"])
        return np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)

    def passage_meta(self, pid: int) -> Article:
        return self.meta_by_row[int(self.passages[pid]["article_row"])]

    def bm25_tokens(self) -> "Bm25Tokens | None":
        """The stored tokenized BM25 corpus, or None for a generation written without it.

        Only writers call this: the arrays are as large as the corpus, so opening a
        snapshot (the query path) never loads them.
        """
        tok_dir = self.gen_dir / TOKENS_DIR
        if not tok_dir.exists():
            return None
        return Bm25Tokens.load(tok_dir, len(self.passages))

    def close(self) -> None:
        self._db.close()
