"""Passage vectors pooled from the passage's sentence vectors (no passage forward pass).

all-MiniLM-L6-v2's vector of a text is the mean of its word pieces' contextual
embeddings. A passage is a run of sentence units plus the article header it is
embedded with, so the mean of those parts' vectors, each weighted by its word
pieces, approximates the passage's own vector without running the transformer
over the passage again: ingest embeds every word piece once instead of twice.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def pooled_vectors(
    unit_vectors: np.ndarray,
    unit_weights: Sequence[float],
    runs: Sequence[tuple[int, int]],
    head_vectors: np.ndarray | None = None,
    head_weights: Sequence[float] | None = None,
) -> np.ndarray:
    """One L2-normalised vector per run ``[lo, hi)`` of units (plus its header, if given).

    ``head_vectors``/``head_weights`` hold one row per run (the header of the run's
    article; weight 0 where it has none).
    """
    u = np.asarray(unit_vectors, dtype=np.float32)
    w = np.asarray(unit_weights, dtype=np.float32)
    dim = u.shape[1] if u.ndim == 2 else (head_vectors.shape[1] if head_vectors is not None else 0)
    if not len(runs):
        return np.zeros((0, dim), dtype=np.float32)
    # Weighted prefix sums: each run's sum is two row lookups, whatever its length.
    csum = np.zeros((len(u) + 1, dim), dtype=np.float64)
    np.cumsum(u * w[:, None], axis=0, out=csum[1:])
    lo = np.array([r[0] for r in runs], dtype=np.int64)
    hi = np.array([r[1] for r in runs], dtype=np.int64)
    out = csum[hi] - csum[lo]
    if head_vectors is not None:
        hw = np.asarray(head_weights, dtype=np.float64)
        out += np.asarray(head_vectors, dtype=np.float64) * hw[:, None]
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (out / norms).astype(np.float32)
