"""The on-disk index: article store, passage table, FAISS vectors and BM25.

Layout of an index folder::

    CURRENT            name of the live generation (replaced atomically)
    gen-000007/        one complete, immutable generation
        manifest.json  format version, embedding model, dimension, chunking, counts
        store.sqlite   articles (metadata + cleaned text)
        passages.npy   structured array: article row, start, end (offsets into text),
                       and the run of sentence units it covers
        vectors.npy    normalised float32 embeddings, one row per passage
        units.npy      sentence units: article row, start, end
        unit_vectors.npy  float16 embeddings of the units (answer extraction, reranking)
        faiss.index    FAISS index over vectors.npy (faiss.write_index)
        bm25/          bm25s index over header + passage text (numpy + JSON)
        bm25_tokens/   the tokenized (stemmed) BM25 corpus, so an ingest only
                       tokenizes its new passages (see :class:`Bm25Tokens`):
            ids.npy      int32 term ids of every passage, concatenated
            offsets.npy  int64, n_passages + 1: passage i is ids[offsets[i]:offsets[i+1]]
            vocab.json   JSON list of terms; a term's id is its position
                       (absent in generations written before it existed: the
                       next ingest re-tokenizes everything once and writes it)
    .lock              serialises writers

Writers build a new generation in a temporary folder, fsync it, rename it into
place and only then point CURRENT at it, so a crash or kill at any moment leaves
the previous generation live and consistent. Readers open whatever CURRENT names
and never see a half-written index. Nothing is unpickled.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import IndexLoadError, RagError
from .models import Article, Passage

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CURRENT = "CURRENT"
# Passages are runs of sentence units [unit_lo, unit_hi) of one article.
PASSAGE_DTYPE = np.dtype(
    [("article_row", "<i4"), ("start", "<i8"), ("end", "<i8"), ("unit_lo", "<i8"), ("unit_hi", "<i8")]
)
UNIT_DTYPE = np.dtype([("article_row", "<i4"), ("start", "<i8"), ("end", "<i8")])

# Measured by `python -m eval.bench scale` (2 cores, one query at a time): exact
# search costs ~0.18 ms per 1k passages (19 ms at 100k, 179 ms at 1M), so above
# ~50k passages HNSW takes over. M=32 / efSearch=256 gave recall@10 0.994 and
# recall@100 0.971 at 1.5 ms over 100k (efSearch 128: 0.975 / 0.909; the retriever
# fuses all 100 dense candidates, so recall@100 matters too).
HNSW_THRESHOLD = 50_000
HNSW_M = 32
HNSW_EF_SEARCH = 256
HNSW_EF_CONSTRUCTION = 80
# At 1M passages efSearch 256 fell to recall@10 0.932; 512 gave 0.967 at 4.9 ms p50
# (index 1.72 GB), so large indexes search wider.
HNSW_LARGE = 500_000
HNSW_EF_SEARCH_LARGE = 512


@contextmanager
def faiss_single_thread() -> Iterator[None]:
    """Run faiss calls made inside on the calling thread alone.

    A search makes a few small faiss calls (one flat search per sub-search, fp16
    decodes of a few thousand sentence vectors). faiss parallelises them with
    OpenMP, whose fork/join and spinning workers cost more than they save on a few
    cores and take them from the embedding runtime's threads: on 2 cores, with both
    threads a search spent ~8.5 ms decoding sentence vectors, with one 2.3 ms.
    OpenMP's thread count is per calling thread (libgomp), so ingest elsewhere
    keeps every core; the previous count is restored on the way out.
    """
    import faiss

    prev = faiss.omp_get_max_threads()
    if prev == 1:
        yield
        return
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(prev)


def hnsw_ef_search(n: int) -> int:
    return HNSW_EF_SEARCH_LARGE if n >= HNSW_LARGE else HNSW_EF_SEARCH

TOKENS_DIR = "bm25_tokens"
TOKEN_FILES = ("ids.npy", "offsets.npy", "vocab.json")


@dataclass(frozen=True)
class Manifest:
    format_version: int
    embedding_model: str
    dim: int
    chunk_max_tokens: int
    chunk_overlap_tokens: int
    index_type: str
    n_articles: int
    n_passages: int
    generation: int
    created_at: float
    embedding_backend: str = "torch"

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise IndexLoadError(
                f"The index manifest {path} is unreadable ({exc}). The index is corrupted: "
                f"delete {path.parent.parent} and ingest again."
            ) from exc


def header_text(meta: Article) -> str:
    from .chunking import header_for

    return header_for(meta.title, meta.source, meta.published_at)


def index_text(meta: Article, passage_text: str) -> str:
    """What is embedded and keyword-indexed for a passage: header + verbatim text."""
    head = header_text(meta)
    return f"{head}\n{passage_text}" if head else passage_text


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
                "SELECT row, article_id, title, source, url, published_at, author, origin "
                "FROM articles ORDER BY row"
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
        for row, aid, title, source, url, date, author, origin in rows:
            self.meta_by_row[row] = Article(aid, title, "", source, url, date, author, origin)
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
        _check_token_files(gen_dir / TOKENS_DIR, n)
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


# -- the tokenized BM25 corpus ---------------------------------------------------

def _token_files_error(tok_dir: Path, problem: str) -> IndexLoadError:
    return IndexLoadError(
        f"The BM25 token files in {tok_dir} {problem}. Delete the folder {tok_dir} (the next "
        f"ingest rebuilds it from the article texts), or delete {tok_dir.parent.parent} and "
        "ingest again."
    )


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a .npy file, reading only its header."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    return shape, dtype


def _check_token_files(tok_dir: Path, n_passages: int) -> None:
    """Cheap consistency check (headers and one offset) of a generation's token files."""
    if not tok_dir.exists():
        return  # written before token files existed; the next ingest adds them
    missing = [name for name in TOKEN_FILES if not (tok_dir / name).is_file()]
    if missing:
        raise _token_files_error(tok_dir, f"are incomplete ({', '.join(missing)} missing)")
    try:
        ids_shape, ids_dtype = _npy_header(tok_dir / "ids.npy")
        offsets = np.load(tok_dir / "offsets.npy", mmap_mode="r", allow_pickle=False)
        ok = (
            ids_dtype == np.int32
            and len(ids_shape) == 1
            and offsets.dtype == np.int64
            and offsets.shape == (n_passages + 1,)
            and int(offsets[0]) == 0
            and int(offsets[-1]) == ids_shape[0]
        )
    except (OSError, ValueError) as exc:
        raise _token_files_error(tok_dir, f"are unreadable ({exc})") from exc
    if not ok:
        raise _token_files_error(
            tok_dir,
            f"do not match the {n_passages} passages of the index (offsets {offsets.dtype}"
            f"{list(offsets.shape)}, ids {ids_dtype}{list(ids_shape)})",
        )


@dataclass(frozen=True, eq=False)
class Bm25Tokens:
    """The BM25 corpus as term ids, one run per passage (in passage order).

    Kept with each generation so that adding articles tokenizes and stems only the
    new passages, and removing them drops their runs: nothing is re-read from the
    article store. The BM25 scores themselves depend on corpus-wide statistics
    (IDF, average length), so the bm25s matrix is still recomputed from the ids.
    """

    ids: np.ndarray  # int32, all passages' term ids concatenated
    offsets: np.ndarray  # int64, len(self) + 1
    vocab: tuple[str, ...]  # term id -> stemmed term; every term occurs in some passage

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def empty(cls) -> "Bm25Tokens":
        return cls(np.zeros(0, dtype=np.int32), np.zeros(1, dtype=np.int64), ())

    @classmethod
    def from_texts(cls, texts: list[str]) -> "Bm25Tokens":
        return cls.empty().extend(texts)

    def extend(self, texts: list[str]) -> "Bm25Tokens":
        """These passages plus ``texts`` (index texts, see :func:`index_text`), tokenized."""
        from .retrieval import bm25_tokenize

        if not texts:
            return self
        new = bm25_tokenize(texts)
        term_id = {t: i for i, t in enumerate(self.vocab)}
        vocab = list(self.vocab)
        to_global = np.empty(len(new.vocab), dtype=np.int32)
        # Sorted so that the same input always gives the same ids (bm25s numbers
        # stems in set order, which varies between runs).
        for term in sorted(new.vocab):
            gid = term_id.get(term)
            if gid is None:
                gid = term_id[term] = len(vocab)
                vocab.append(term)
            to_global[new.vocab[term]] = gid
        lengths = np.fromiter((len(doc) for doc in new.ids), dtype=np.int64, count=len(new.ids))
        local = np.fromiter(
            (i for doc in new.ids for i in doc), dtype=np.int64, count=int(lengths.sum())
        )
        return Bm25Tokens(
            np.concatenate([self.ids, to_global[local]]),
            np.concatenate([self.offsets, self.offsets[-1] + np.cumsum(lengths)]),
            tuple(vocab),
        )

    def select(self, keep: np.ndarray) -> "Bm25Tokens":
        """Only the passages where the boolean mask ``keep`` is true.

        Terms no kept passage uses are dropped from the vocabulary: the retriever
        treats any vocabulary term as known (it is scored and given an IDF), so
        keeping them would make results differ from an index built afresh.
        """
        lengths = np.diff(self.offsets)
        ids = self.ids[np.repeat(keep, lengths)]
        offsets = np.concatenate([[0], np.cumsum(lengths[keep])]).astype(np.int64)
        used = np.bincount(ids, minlength=len(self.vocab)) > 0
        new_id = (np.cumsum(used) - 1).astype(np.int32)
        vocab = tuple(t for t, u in zip(self.vocab, used) if u)
        return Bm25Tokens(new_id[ids], offsets, vocab)

    def build_bm25(self):
        """The bm25s index over these passages (None when there are none)."""
        import bm25s
        from bm25s.tokenization import Tokenized

        if not len(self):
            return None
        flat = self.ids.tolist()
        bounds = self.offsets.tolist()
        docs = [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        retriever = bm25s.BM25()
        # A fresh dict: bm25s adds its "" entry to the vocabulary it is given.
        retriever.index(Tokenized(ids=docs, vocab={t: i for i, t in enumerate(self.vocab)}), show_progress=False)
        return retriever

    def save(self, tok_dir: Path) -> None:
        tok_dir.mkdir()
        np.save(tok_dir / "ids.npy", np.ascontiguousarray(self.ids, dtype=np.int32), allow_pickle=False)
        np.save(tok_dir / "offsets.npy", np.ascontiguousarray(self.offsets, dtype=np.int64), allow_pickle=False)
        (tok_dir / "vocab.json").write_text(json.dumps(list(self.vocab)), encoding="utf-8")

    @classmethod
    def load(cls, tok_dir: Path, n_passages: int) -> "Bm25Tokens":
        _check_token_files(tok_dir, n_passages)
        try:
            # Memory-mapped: the writer only slices or concatenates them once.
            ids = np.load(tok_dir / "ids.npy", mmap_mode="r", allow_pickle=False)
            offsets = np.load(tok_dir / "offsets.npy", allow_pickle=False)
            vocab = json.loads((tok_dir / "vocab.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise _token_files_error(tok_dir, f"are unreadable ({exc})") from exc
        if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
            raise _token_files_error(tok_dir, "have a malformed vocab.json (expected a list of terms)")
        if len(set(vocab)) != len(vocab):
            raise _token_files_error(tok_dir, "have repeated terms in vocab.json")
        if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= len(vocab)):
            raise _token_files_error(tok_dir, f"hold term ids outside the {len(vocab)}-term vocabulary")
        if np.any(np.diff(offsets) < 0):
            raise _token_files_error(tok_dir, "have decreasing offsets")
        return cls(ids, offsets, tuple(vocab))


# -- opening -------------------------------------------------------------------

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
    gen = current_generation(root) if root.exists() else None
    if gen is None:
        raise IndexLoadError(
            f"No index at {root}. Build one with `rag ingest PATH...` (or set RAG_INDEX)."
        )
    manifest = Manifest.load(gen / "manifest.json")
    check_compatible(manifest, root, embedding_model)
    return IndexSnapshot(root, gen, manifest)


def check_compatible(manifest: Manifest, root: Path, embedding_model: str | None) -> None:
    if manifest.format_version != FORMAT_VERSION:
        raise IndexLoadError(
            f"The index at {root} has format version {manifest.format_version}; this version "
            f"of article-rag reads version {FORMAT_VERSION}. Delete the folder and ingest "
            "your articles again."
        )
    if embedding_model is not None and manifest.embedding_model != embedding_model:
        raise IndexLoadError(
            f"The index at {root} was built with the embedding model "
            f"{manifest.embedding_model!r}, but the settings ask for {embedding_model!r}. "
            f"Set RAG_EMBEDDING_MODEL={manifest.embedding_model} or use a new --index folder."
        )


# -- writing -------------------------------------------------------------------

@contextmanager
def writer_lock(root: Path) -> Iterator[None]:
    """One writer at a time per index folder (readers never wait)."""
    root.mkdir(parents=True, exist_ok=True)
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


def choose_index_type(setting: str, n: int) -> str:
    if setting != "auto":
        return setting
    return "hnsw" if n >= HNSW_THRESHOLD else "flat"


def build_faiss(vectors: np.ndarray, index_type: str):
    import faiss

    dim = vectors.shape[1]
    if index_type == "flat":
        index = faiss.IndexFlatIP(dim)
    elif index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    elif index_type == "ivf":
        nlist = max(1, min(4096, int(4 * np.sqrt(max(len(vectors), 1)))))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        if len(vectors) < nlist:
            raise RagError(f"An IVF index needs at least {nlist} passages; use RAG_INDEX_TYPE=flat.")
        train = vectors if len(vectors) <= 100 * nlist else vectors[
            np.random.default_rng(0).choice(len(vectors), 100 * nlist, replace=False)
        ]
        index.train(np.ascontiguousarray(train))
        # eval.bench scale: nprobe 32 of 4*sqrt(N) lists gave recall@10 0.936 at 100k; 64 gave 0.967.
        index.nprobe = min(nlist, max(64, nlist // 16))
    else:
        raise RagError(f"Unknown index type {index_type!r}: use flat, hnsw, ivf or auto.")
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def build_bm25(texts: list[str]):
    """A bm25s index over ``texts``, tokenized from scratch (see :class:`Bm25Tokens`)."""
    return Bm25Tokens.from_texts(texts).build_bm25()


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

    def add_article(self, article: Article) -> int:
        cur = self.db.execute(
            "INSERT INTO articles (article_id, title, source, url, published_at, author, origin, "
            "text, added_at) VALUES (?,?,?,?,?,?,?,?,?)",
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
        for row, aid, title, source, url, date, text in self.db.execute(
            "SELECT row, article_id, title, source, url, published_at, text FROM articles"
        ):
            metas[row] = (Article(aid, title, "", source, url, date), text)
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
