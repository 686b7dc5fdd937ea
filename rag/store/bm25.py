"""BM25 over all segments of a snapshot, with global statistics.

The number of passages, their average length and each term's document frequency
are summed over the live passages of every segment (tombstoned ones excluded), so a
passage scores exactly as it would in a single index built afresh from the same
articles, wherever its article landed. The arithmetic is bm25s's "lucene" variant
step for step (k1 1.5, b 0.75, float64 term weights stored as float32, summed in
float32 in query-token order), so scores are bit-identical to bm25s over the same
passages (tests/test_bm25_incremental.py).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .postings import Postings

K1 = 1.5
B = 0.75


class GlobalBm25:
    """BM25 scoring of query tokens over several segments' postings.

    ``parts``: per segment, its postings, the first snapshot passage id of its live
    passages, and the snapshot id of each of its passages (-1: tombstoned), or None
    when none is tombstoned (ids are then ``base + local``).
    """

    def __init__(self, parts: Sequence[tuple[Postings, int, np.ndarray | None]]):
        self.parts = list(parts)
        live_lens = [p.doc_len if ids is None else p.doc_len[ids >= 0] for p, _, ids in self.parts]
        self.n_docs = int(sum(len(x) for x in live_lens))
        total = int(sum(int(np.sum(x, dtype=np.int64)) for x in live_lens))
        # == numpy's mean of the lengths (an exact integer sum), as bm25s computes it
        self.avg_len = np.float64(total) / self.n_docs if self.n_docs else np.float64(1.0)
        # Length normalisation per passage: k1 * ((1 - b) + b * len / avg), float64.
        self._norm = [K1 * ((1 - B) + B * p.doc_len / self.avg_len) for p, _, _ in self.parts]
        # Global vocabulary: every term some live passage uses, with its live df.
        term_id: dict[str, int] = {}
        vocab: list[str] = []
        dfs: list[np.ndarray] = []
        maps: list[np.ndarray] = []
        for p, _, ids in self.parts:
            df = p.df if ids is None else self._live_df(p, ids >= 0)
            to_g = np.empty(len(p.vocab), dtype=np.int64)
            for i, t in enumerate(p.vocab):
                g = term_id.get(t)
                if g is None:
                    g = term_id[t] = len(vocab)
                    vocab.append(t)
                to_g[i] = g
            dfs.append(df)
            maps.append(to_g)
        df_all = np.zeros(len(vocab), dtype=np.int64)
        for df, to_g in zip(dfs, maps):
            np.add.at(df_all, to_g, df)
        self.df = df_all
        if len(df_all) and np.any(df_all == 0):
            # Terms only tombstoned passages use are unknown, as in a fresh build.
            term_id = {t: i for t, i in term_id.items() if df_all[i] > 0}
        self.term_id = term_id

    @staticmethod
    def _live_df(p: Postings, live: np.ndarray) -> np.ndarray:
        alive = live[np.asarray(p.docs)].astype(np.int64)
        if not len(alive):
            return np.zeros(len(p.vocab), dtype=np.int64)
        starts = np.minimum(p.indptr[:-1], len(alive) - 1)  # reduceat needs indices in range
        return np.add.reduceat(alive, starts) * (np.diff(p.indptr) > 0)

    def idf(self) -> np.ndarray:
        """IDF per global term id (0 for terms no live passage uses)."""
        n = float(self.n_docs)
        df = self.df.astype(np.float64)
        out = np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        out[self.df == 0] = 0.0
        return out

    def scores(self, tokens: Sequence[str]) -> np.ndarray | None:
        """BM25 score of every live passage (snapshot order); None: no token is known."""
        known = [t for t in tokens if t in self.term_id]
        if not known:
            return None
        out = np.zeros(self.n_docs, dtype=np.float32)
        n = self.n_docs
        for t in known:
            df = int(self.df[self.term_id[t]])
            idf = np.float32(math.log(1 + (n - df + 0.5) / (df + 0.5)))
            for (p, base, ids), norm in zip(self.parts, self._norm):
                local = p.term_id.get(t)
                if local is None:
                    continue
                lo, hi = int(p.indptr[local]), int(p.indptr[local + 1])
                docs = np.asarray(p.docs[lo:hi])
                tf = np.asarray(p.tf[lo:hi]).astype(np.float32)
                weight = (idf * (tf / (norm[docs] + tf))).astype(np.float32)
                if ids is None:
                    out[base + docs] += weight
                else:
                    pid = ids[docs]
                    keep = pid >= 0
                    out[pid[keep]] += weight[keep]
        return out
