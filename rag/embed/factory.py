"""Which :class:`~rag.embed.base.Embedder` a setting asks for."""

from __future__ import annotations

import logging
from typing import Callable

from ..errors import RagError
from ..settings import Settings
from .base import Embedder

log = logging.getLogger(__name__)


def create_embedder(settings: Settings, *, for_queries: bool = False) -> Embedder:
    """The embedder for ``settings.embedding_backend``.

    ``for_queries``: an embedder that only embeds single questions between other
    work (see :func:`create_query_embedder`); ONNX Runtime then lets its idle
    threads sleep at once instead of spinning.
    """
    backend = settings.embedding_backend
    if backend == "torch":
        from .torch_backend import TorchEmbedder

        return TorchEmbedder(settings)
    if backend == "openvino":
        try:
            from .openvino_backend import OpenVinoEmbedder
        except ImportError as exc:
            raise RagError(
                f"The openvino backend needs the openvino package ({exc}): reinstall with "
                "`.venv/bin/pip install -e .`, or set RAG_EMBEDDING_BACKEND=torch."
            ) from exc
        return OpenVinoEmbedder(settings, for_queries=for_queries)
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
