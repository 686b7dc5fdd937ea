"""The BM25 corpus kept as term ids per passage, and the bm25s index built from it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import IndexLoadError
from ..text.terms import bm25_tokenize

TOKENS_DIR = "bm25_tokens"
TOKEN_FILES = ("ids.npy", "offsets.npy", "vocab.json")


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


def check_token_files(tok_dir: Path, n_passages: int) -> None:
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
        check_token_files(tok_dir, n_passages)
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


def build_bm25(texts: list[str]):
    """A bm25s index over ``texts``, tokenized from scratch (see :class:`Bm25Tokens`)."""
    return Bm25Tokens.from_texts(texts).build_bm25()
