"""Late chunking: vectors of spans of a text (its sentences), pooled from one pass over the text.

Ingest needs a vector for every passage and for every sentence in it. Embedding
each sentence again on its own cost ~40% of all embedding time (12,644 sentences
after 1,950 passages for 120 MultiHop-RAG articles). A backend that exposes the
model's token outputs instead pools them over each sentence's tokens while it
embeds the passage: the passage vector is the model's own (mean over all tokens),
and each sentence vector is the mean of its tokens' outputs, normalised, so it
also carries the sentence's context in the passage ("late chunking", Günther et
al. 2024). Backends without token outputs embed the sentences separately.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

Span = tuple[int, int]  # character offsets [start, end) into the embedded text


def token_ranges(offsets: Sequence[Sequence[int]], spans: Sequence[Span]) -> np.ndarray:
    """Per span, the tokens [t0, t1) whose characters overlap it.

    ``offsets``: per token of the encoded text (special tokens included, as
    ``(0, 0)``), its character span. A span no token overlaps gets an empty range.
    """
    off = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    real = off[:, 1] > off[:, 0]
    # Special tokens (CLS/SEP, padding) never belong to a span.
    starts = np.where(real, off[:, 0], np.iinfo(np.int64).max)
    ends = np.where(real, off[:, 1], -1)
    out = np.zeros((len(spans), 2), dtype=np.int64)
    for i, (s, e) in enumerate(spans):
        hit = np.flatnonzero((ends > s) & (starts < e))
        if len(hit):
            out[i] = hit[0], hit[-1] + 1
    return out


def pool(hidden: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Normalised mean of ``hidden[t0:t1]`` (one row per token) for each range."""
    if not len(ranges):
        return np.zeros((0, hidden.shape[-1]), dtype=np.float32)
    csum = np.concatenate([np.zeros((1, hidden.shape[-1])), np.cumsum(hidden, axis=0, dtype=np.float64)])
    t0, t1 = ranges[:, 0], ranges[:, 1]
    sums = csum[t1] - csum[t0]
    counts = np.maximum(t1 - t0, 1)[:, None]
    means = (sums / counts).astype(np.float32)
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    return means / norms


def embed_with_spans(embedder, texts: Sequence[str], spans: Sequence[Sequence[Span]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Vectors of ``texts`` and of each text's ``spans``.

    In one pass when the embedder has token outputs (``embed_with_spans``); spans
    that got no tokens (cut off by truncation) and embedders without token outputs
    embed the span's text on its own.
    """
    own = getattr(embedder, "embed_with_spans", None)
    if own is not None:
        vectors, span_vectors, missing = own(texts, spans)
    else:
        vectors = embedder.embed(list(texts))
        span_vectors = [np.zeros((len(s), vectors.shape[1]), dtype=np.float32) for s in spans]
        missing = [(i, j) for i, s in enumerate(spans) for j in range(len(s))]
    if missing:
        alone = embedder.embed([texts[i][spans[i][j][0] : spans[i][j][1]] for i, j in missing])
        for (i, j), v in zip(missing, alone):
            span_vectors[i][j] = v
    return vectors, span_vectors
