"""Pure ranking functions: top-k, reciprocal rank fusion, article diversity, MMR."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np


def rrf(orders: list[list[int]], weights: list[float], k: int) -> dict[int, float]:
    """Weighted reciprocal rank fusion of ranked id lists."""
    lists = [(np.asarray(o, dtype=np.int64), w) for o, w in zip(orders, weights) if len(o)]
    if not lists:
        return {}
    ids = np.concatenate([o for o, _ in lists])
    parts = np.concatenate([w / (k + np.arange(1, len(o) + 1, dtype=np.float64)) for o, w in lists])
    uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    sums = np.bincount(inverse, weights=parts)  # added in list order, as a loop would
    keep = np.argsort(first, kind="stable")  # first-seen order: ties stay in list order
    return dict(zip(uniq[keep].tolist(), sums[keep].tolist()))


def diversify(
    order: list[int], scores: Mapping[int, float], group_of: np.ndarray, k: int, decay: float
) -> tuple[list[int], dict[int, float]]:
    """Greedy re-ranking that discounts each further passage from an already listed group.

    Questions over news often need several articles (and a list of ten passages
    from one article repeats itself); a multiplicative discount per passage already
    listed from the same article (``group_of[pid]``) keeps a clearly better second
    passage while letting other articles in.
    """
    pool = order[: max(k * 5, 50)]
    seen: dict[int, int] = {}
    out: list[int] = []
    adjusted = dict(scores)
    groups = {pid: int(group_of[pid]) for pid in pool}
    while pool and len(out) < k:
        best = max(pool, key=lambda pid: scores[pid] * decay ** seen.get(groups[pid], 0))
        adjusted[best] = scores[best] * decay ** seen.get(groups[best], 0)
        out.append(best)
        pool.remove(best)
        seen[groups[best]] = seen.get(groups[best], 0) + 1
    taken = set(out)
    return out + [pid for pid in order if pid not in taken], adjusted


def mmr(qvec: np.ndarray, cand: Sequence[int], vectors: np.ndarray, k: int, lam: float) -> list[int]:
    """Maximal marginal relevance over ``cand`` (``vectors[i]`` is candidate ``cand[i]``'s vector)."""
    rel = vectors @ qvec
    pos = {pid: i for i, pid in enumerate(cand)}
    chosen: list[int] = []
    remaining = list(cand)
    while remaining and len(chosen) < k:
        best, best_score = None, -1e9
        for pid in remaining:
            v = vectors[pos[pid]]
            red = max((float(v @ vectors[pos[c]]) for c in chosen), default=0.0)
            s = lam * float(rel[pos[pid]]) - (1 - lam) * red
            if s > best_score:
                best, best_score = pid, s
        chosen.append(best)
        remaining.remove(best)
    return chosen + [c for c in cand if c not in chosen]
