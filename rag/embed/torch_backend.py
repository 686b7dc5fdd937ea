"""The reference backend: the model run by sentence-transformers on PyTorch (float32)."""

from __future__ import annotations

import os
from functools import cached_property
from typing import Sequence

import numpy as np

from ..errors import RagError
from ..settings import Settings
from .late import pool, token_ranges
from .model_files import normalise, resolve_model_path


class TorchEmbedder:
    """:class:`~rag.embed.base.Embedder` through ``SentenceTransformer.encode``."""

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

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of each word piece of ``text`` (no [CLS]/[SEP])."""
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return [tuple(o) for o in enc["offset_mapping"]]

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

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray], list[tuple[int, int]]]:
        """Vectors of ``texts`` and of their character ``spans`` from one pass (late chunking,
        see :mod:`rag.embed.late`); returns the (text, span) pairs no token covered too."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        span_out: list[np.ndarray] = []
        missing: list[tuple[int, int]] = []
        step = 256  # texts per encode call: bounds the token outputs held at once
        for lo in range(0, len(texts), step):
            chunk = list(texts[lo : lo + step])
            enc = self.tokenizer(chunk, truncation=True, max_length=self.max_seq_length, return_offsets_mapping=True,
                                 verbose=False)
            outputs = self.model.encode(chunk, batch_size=self.settings.embedding_batch_size, output_value=None,
                                        convert_to_numpy=False, show_progress_bar=False)
            for k, (o, offsets) in enumerate(zip(outputs, enc["offset_mapping"])):
                i = lo + k
                out[i] = o["sentence_embedding"].float().numpy()
                ranges = token_ranges(offsets, spans[i])
                hidden = o["token_embeddings"][: len(offsets)].float().numpy()
                span_out.append(pool(hidden, ranges))
                missing += [(i, j) for j in range(len(ranges)) if ranges[j, 1] <= ranges[j, 0]]
        return normalise(out), span_out, missing

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def warm_up(self) -> None:
        """Load the model before the first question."""
        self.embed_query("warm up")
