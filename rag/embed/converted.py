"""What the converted backends (ONNX, OpenVINO) share: tokenising and a per-user cache.

A converted model is made once, locally, from the packaged torch weights, checked
against torch, and cached under ``Settings.models_dir`` (by default one folder per
user, shared by every index) under a name that hashes the model files (names, sizes
and the bytes at each end of each file: not mtimes, which differ between two installs
of the same package, so two virtual environments share one entry instead of each
deleting the other's as stale), the backend and the conversion recipe. It is written
aside and moved into place with ``os.replace``, so a crash never leaves a half-written
model behind, and converted under a lock file, so two processes starting at once
convert once (the second waits, then loads the first one's entry).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import threading
from abc import ABC, abstractmethod
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np
from filelock import FileLock, Timeout

from ..errors import RagError
from ..settings import Settings
from .model_files import ModelFiles

log = logging.getLogger(__name__)

# Conversions patch process-global exporter state, and two threads converting the
# same model would race for the cache entry: one conversion at a time per process.
CONVERSION_LOCK = threading.Lock()
# A conversion takes ~10 s on two cores; a waiter gives up well after that.
CONVERSION_WAIT_S = 600
HASHED_BYTES = 1 << 20  # bytes hashed at each end of a model file (with its size)


def file_fingerprint(path: Path) -> str:
    """The size and the first and last MiB of a file: cheap, and the same in every install."""
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(HASHED_BYTES))
        if size > 2 * HASHED_BYTES:
            f.seek(-HASHED_BYTES, os.SEEK_END)
            h.update(f.read(HASHED_BYTES))
        elif size > HASHED_BYTES:
            h.update(f.read())
    return h.hexdigest()


def remove_path(path: Path) -> None:
    """Delete a file or folder if it is there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


class ConvertedEmbedder(ABC):
    """An :class:`~rag.embed.base.Embedder` that runs a converted copy of the model.

    Subclasses say what their cache entry is (``FORMAT``, ``SUFFIX``, ``recipe``,
    ``write_entry``, ``entry_complete``, ``model_file``) and how to run it.
    """

    BACKENDS: tuple[str, ...] = ()
    FORMAT = "?"  # for messages
    VERB = "Converting"
    SUFFIX = ""  # the cache entry's name suffix ("" for a folder)
    VARIANT = ""  # a second kind of conversion of the same backend (its own cache entries)

    def __init__(self, settings: Settings, *, for_queries: bool = False):
        backend = settings.embedding_backend
        if backend not in self.BACKENDS:
            raise RagError(f"{type(self).__name__} serves backends {self.BACKENDS}, not {backend!r}.")
        self.settings = settings
        self.backend = backend
        self.for_queries = for_queries
        self.name = settings.embedding_model
        self.files = ModelFiles(self.name)
        self.threads = settings.embedding_threads or os.cpu_count() or 1
        self.lock = threading.Lock()

    # -- the model as the rest of the engine sees it ------------------------------
    @property
    def tokenizer(self):
        return self.files.tokenizer

    @property
    def max_seq_length(self) -> int:
        return self.files.max_seq_length

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.files.count_tokens(texts)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return self.files.token_offsets(text)

    @cached_property
    def dim(self) -> int:
        if self.files.layout["dim"]:
            return self.files.layout["dim"]
        return int(self.run(np.array([[0]], dtype=np.int64), np.ones((1, 1), np.int64)).shape[1])

    def warm_up(self) -> None:
        """Load (the first time: convert) the model before the first question."""
        self.embed_query("warm up")

    # -- what a backend provides -------------------------------------------------
    @property
    @abstractmethod
    def recipe(self) -> dict:
        """What the conversion depends on besides the model files (part of the cache key)."""

    @abstractmethod
    def write_entry(self, tmp: Path) -> None:
        """Convert the model into the cache entry ``tmp`` (checked against torch)."""

    def entry_complete(self, entry: Path) -> bool:
        return entry.is_file()

    def model_file(self, entry: Path) -> Path:
        """The file to load inside a cache entry (the entry itself by default)."""
        return entry

    @abstractmethod
    def run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Embeddings of a padded batch of token ids."""

    @abstractmethod
    def embed(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray: ...

    @abstractmethod
    def embed_query(self, text: str) -> np.ndarray: ...

    # -- the cache ------------------------------------------------------------------
    def cache_key(self) -> str:
        h = hashlib.sha256()
        h.update(json.dumps({"model": self.name, **self.recipe}, sort_keys=True).encode())
        model_dir = self.files.model_dir
        for f in sorted(model_dir.rglob("*")):
            if f.is_file() and not f.name.startswith(".") and f.suffix.lower() != ".md" and "__pycache__" not in f.parts:
                h.update(f"{f.relative_to(model_dir).as_posix()}:{file_fingerprint(f)}\n".encode())
        return h.hexdigest()[:16]

    @cached_property
    def model_path(self) -> Path:
        """The converted model file, converted now if not cached yet."""
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name).strip("._")[-80:] or "model"
        cache = self.settings.models_dir
        prefix = f"{safe}-{self.backend}{self.VARIANT}-"
        dst = cache / f"{prefix}{self.cache_key()}{self.SUFFIX}"
        if self.entry_complete(dst):
            return self.model_file(dst)
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RagError(f"Cannot create the model cache {cache}: {exc}") from exc
        tmp = cache / f".{dst.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            with CONVERSION_LOCK, FileLock(cache / f".{dst.name}.lock", timeout=CONVERSION_WAIT_S):
                if self.entry_complete(dst):  # another embedder or process just converted it
                    return self.model_file(dst)
                # Under the lock nobody else converts this entry: what is left of
                # earlier attempts was left by a killed process.
                for orphan in cache.glob(f".{dst.name}.*.tmp"):
                    remove_path(orphan)
                log.info("%s %s to %s (%s), once: %s", self.VERB, self.name, self.FORMAT, self.backend, dst)
                self.write_entry(tmp)
                remove_path(dst)  # a damaged entry (a folder is not replaced by os.replace)
                os.replace(tmp, dst)  # the whole entry appears at once
        except Timeout as exc:
            raise RagError(
                f"Another process has been converting {self.name!r} into {cache} for over "
                f"{CONVERSION_WAIT_S} s; if none is running, delete {exc.lock_file} and try again."
            ) from exc
        except RagError:
            raise
        except Exception as exc:  # noqa: BLE001 - converter failures come in many types
            raise RagError(
                f"{self.VERB} {self.name!r} to {self.FORMAT} failed ({type(exc).__name__}: {exc}). "
                "Use RAG_EMBEDDING_BACKEND=torch."
            ) from exc
        finally:
            remove_path(tmp)
        # Older conversions of the same model and backend are stale now.
        # Exactly this backend's names: "x-onnx-*" must not catch "x-onnx-int8-*".
        stale = re.compile(re.escape(prefix) + r"[0-9a-f]{16}" + re.escape(self.SUFFIX))
        for old in cache.glob(f"{prefix}*"):
            if old != dst and stale.fullmatch(old.name):
                remove_path(old)
        return self.model_file(dst)

    def forget_model_path(self) -> None:
        """After a damaged cache entry was removed: the next ``model_path`` converts again."""
        self.__dict__.pop("model_path", None)
