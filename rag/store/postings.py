"""BM25 postings of one segment: for each term, the passages that hold it and how often.

Stored raw (term frequencies and passage lengths), not as BM25 scores: a score
depends on corpus-wide statistics (IDF, average passage length) that change with
every segment added or article deleted, so scores are computed at query time from
global statistics (see :mod:`.bm25`) and never depend on where an article landed.

Files (``postings/`` in a segment)::

    vocab.json   term id -> stemmed term (sorted; every term occurs in some passage)
    indptr.npy   int64, len(vocab) + 1: term t's postings are [indptr[t], indptr[t+1])
    docs.npy     int32, passage (segment-local) of each posting, ascending per term
    tf.npy       uint16, occurrences of the term in that passage
    doc_len.npy  int32, BM25 tokens per passage (stopwords removed, repeats counted)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import IndexLoadError
from ..text.terms import bm25_tokenize

POSTINGS_DIR = "postings"
POSTING_FILES = ("vocab.json", "indptr.npy", "docs.npy", "tf.npy", "doc_len.npy")


@dataclass(frozen=True, eq=False)
class Postings:
    vocab: tuple[str, ...]
    indptr: np.ndarray  # int64
    docs: np.ndarray  # int32
    tf: np.ndarray  # uint16
    doc_len: np.ndarray  # int32, one per passage

    @property
    def n_docs(self) -> int:
        return len(self.doc_len)

    @cached_property
    def term_id(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.vocab)}

    @cached_property
    def df(self) -> np.ndarray:
        return np.diff(self.indptr)

    # -- building ------------------------------------------------------------------
    @classmethod
    def from_texts(cls, texts: list[str]) -> "Postings":
        """Tokenize (stem, drop stopwords) index texts as BM25 always has, and invert."""
        if not texts:
            return cls.empty()
        tok = bm25_tokenize(texts)
        # bm25s numbers stems in set order (varies between runs): renumber sorted.
        terms = sorted(tok.vocab)
        remap = np.empty(len(tok.vocab), dtype=np.int64)
        for new, term in enumerate(terms):
            remap[tok.vocab[term]] = new
        lengths = np.fromiter((len(d) for d in tok.ids), dtype=np.int64, count=len(tok.ids))
        flat = np.fromiter((i for d in tok.ids for i in d), dtype=np.int64, count=int(lengths.sum()))
        return cls.from_runs(remap[flat] if len(flat) else flat, lengths, tuple(terms))

    @classmethod
    def from_runs(cls, term_ids: np.ndarray, lengths: np.ndarray, vocab: tuple[str, ...]) -> "Postings":
        """Invert passages given as runs of term ids (``lengths[i]`` terms for passage i).

        Terms no passage uses are dropped from the vocabulary.
        """
        n = len(lengths)
        doc = np.repeat(np.arange(n, dtype=np.int64), lengths)
        key = np.asarray(term_ids, dtype=np.int64) * max(n, 1) + doc
        return cls._from_keys(key, n, vocab, np.asarray(lengths, dtype=np.int32), counts=None)

    @classmethod
    def _from_keys(cls, key, n, vocab, doc_len, counts) -> "Postings":
        """From term*n + doc keys (one per occurrence, or unique with ``counts``)."""
        if counts is None:
            key, counts = np.unique(key, return_counts=True)
        else:
            order = np.argsort(key, kind="stable")
            key, counts = key[order], counts[order]
        term = key // max(n, 1)
        used = np.zeros(len(vocab), dtype=bool)
        used[term] = True
        new_id = np.cumsum(used) - 1
        kept = tuple(t for t, u in zip(vocab, used) if u)
        term = new_id[term]
        indptr = np.zeros(len(kept) + 1, dtype=np.int64)
        np.cumsum(np.bincount(term, minlength=len(kept)), out=indptr[1:])
        return cls(kept, indptr, (key % max(n, 1)).astype(np.int32), counts.astype(np.uint16), doc_len.astype(np.int32))

    @classmethod
    def empty(cls) -> "Postings":
        return cls((), np.zeros(1, dtype=np.int64), np.zeros(0, np.int32), np.zeros(0, np.uint16), np.zeros(0, np.int32))

    @classmethod
    def merge(cls, parts: list[tuple["Postings", np.ndarray | None]]) -> "Postings":
        """Postings of the given segments' passages back to back, each part keeping only
        the passages where its mask is true (None: all). Terms left unused are dropped."""
        vocab = sorted(set().union(*(p.vocab for p, _ in parts))) if parts else []
        gid = {t: i for i, t in enumerate(vocab)}
        n = sum(p.n_docs if keep is None else int(keep.sum()) for p, keep in parts)
        keys, counts, lens, base = [], [], [], 0
        for p, keep in parts:
            new_doc = np.arange(p.n_docs, dtype=np.int64) if keep is None else np.cumsum(keep) - 1
            live = np.ones(p.n_docs, dtype=bool) if keep is None else keep
            to_g = np.fromiter((gid[t] for t in p.vocab), dtype=np.int64, count=len(p.vocab))
            term = np.repeat(to_g, np.diff(p.indptr))
            docs = np.asarray(p.docs)
            ok = live[docs]
            keys.append(term[ok] * max(n, 1) + base + new_doc[docs[ok]])
            counts.append(np.asarray(p.tf)[ok])
            lens.append(np.asarray(p.doc_len)[live])
            base += int(live.sum())
        key = np.concatenate(keys) if keys else np.zeros(0, np.int64)
        tf = np.concatenate(counts) if counts else np.zeros(0, np.uint16)
        doc_len = np.concatenate(lens) if lens else np.zeros(0, np.int32)
        return cls._from_keys(key, n, tuple(vocab), doc_len, counts=tf)

    # -- files ---------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        folder.mkdir()
        (folder / "vocab.json").write_text(json.dumps(list(self.vocab)), encoding="utf-8")
        np.save(folder / "indptr.npy", np.ascontiguousarray(self.indptr, dtype=np.int64), allow_pickle=False)
        np.save(folder / "docs.npy", np.ascontiguousarray(self.docs, dtype=np.int32), allow_pickle=False)
        np.save(folder / "tf.npy", np.ascontiguousarray(self.tf, dtype=np.uint16), allow_pickle=False)
        np.save(folder / "doc_len.npy", np.ascontiguousarray(self.doc_len, dtype=np.int32), allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, n_docs: int) -> "Postings":
        """Read a segment's postings; cheap checks only (headers, lengths), `rag check` reads all."""
        missing = [name for name in POSTING_FILES if not (folder / name).is_file()]
        if missing:
            raise IndexLoadError(f"The BM25 postings in {folder} are incomplete ({', '.join(missing)} missing).")
        try:
            vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
            indptr = np.load(folder / "indptr.npy", allow_pickle=False)
            # Memory-mapped: a search reads only its terms' postings.
            docs = np.load(folder / "docs.npy", mmap_mode="r", allow_pickle=False)
            tf = np.load(folder / "tf.npy", mmap_mode="r", allow_pickle=False)
            doc_len = np.load(folder / "doc_len.npy", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise IndexLoadError(f"The BM25 postings in {folder} are unreadable ({exc}).") from exc
        if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
            raise IndexLoadError(f"The BM25 vocabulary {folder / 'vocab.json'} is malformed.")
        ok = (
            indptr.dtype == np.int64 and indptr.shape == (len(vocab) + 1,) and (not len(indptr) or indptr[0] == 0)
            and docs.dtype == np.int32 and tf.dtype == np.uint16 and docs.shape == tf.shape
            and int(indptr[-1]) == len(docs) and doc_len.dtype == np.int32 and doc_len.shape == (n_docs,)
        )
        if not ok:
            raise IndexLoadError(
                f"The BM25 postings in {folder} do not match their {n_docs} passages or each other."
            )
        return cls(tuple(vocab), indptr, docs, tf, doc_len)

    def problems(self) -> list[str]:
        """What reading every posting finds wrong (for `rag check`)."""
        out = []
        docs = np.asarray(self.docs)
        if len(docs) and (int(docs.min()) < 0 or int(docs.max()) >= self.n_docs):
            out.append("postings name passages that do not exist")
        if np.any(np.diff(self.indptr) < 0):
            out.append("postings offsets decrease")
        if len(set(self.vocab)) != len(self.vocab):
            out.append("the vocabulary repeats terms")
        elif len(self.vocab) and np.any(self.df == 0):
            out.append("the vocabulary holds terms no passage uses")
        counted = np.bincount(docs, weights=np.asarray(self.tf, dtype=np.float64), minlength=self.n_docs)
        if len(docs) and not np.array_equal(counted.astype(np.int64), np.asarray(self.doc_len, dtype=np.int64)):
            out.append("term counts do not add up to the passage lengths")
        return out
