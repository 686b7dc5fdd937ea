"""The BM25 token files of a format-1 generation (term ids per passage), read to migrate it.

Format 2 keeps postings instead (see :mod:`.postings`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import IndexLoadError

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
    """The BM25 corpus as term ids, one run per passage (in passage order)."""

    ids: np.ndarray  # int32, all passages' term ids concatenated
    offsets: np.ndarray  # int64, len(self) + 1
    vocab: tuple[str, ...]  # term id -> stemmed term; every term occurs in some passage

    def __len__(self) -> int:
        return len(self.offsets) - 1

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

