"""Passage vectors pooled from sentence vectors (RAG_PASSAGE_VECTORS=pooled)."""

from __future__ import annotations

import numpy as np

from rag.embed.pooled import pooled_vectors

from .conftest import SEED_FILES, make_settings


def test_pooling_weights_each_part_by_its_word_pieces():
    u = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    heads = np.array([[0.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    got = pooled_vectors(u, [3, 1, 2], [(0, 2), (1, 3)], heads, [0, 4])
    want0 = np.array([3.0, 1.0])
    want1 = np.array([0.0, 1.0]) + 2 * np.array([0.6, 0.8]) + 4 * np.array([1.0, 0.0])
    assert np.allclose(got[0], want0 / np.linalg.norm(want0))
    assert np.allclose(got[1], want1 / np.linalg.norm(want1))
    # One unit, no header: the unit's own vector.
    assert np.allclose(pooled_vectors(u, [5, 1, 1], [(2, 3)])[0], u[2])
    assert pooled_vectors(u, [1, 1, 1], []).shape == (0, 2)


def test_an_index_with_pooled_passage_vectors_answers(tmp_path, embedder):
    from rag.chain import ask
    from rag.engine import Engine
    from rag.text.headers import index_text

    engine = Engine(make_settings(tmp_path / "index", passage_vectors="pooled"), embedder=embedder)
    engine.ingest([SEED_FILES["moscow"], SEED_FILES["bbc"]], show_progress=False)
    snap = engine.snapshot
    n = len(snap.passages)
    pooled = snap.passage_vectors(np.arange(n))
    assert np.allclose(np.linalg.norm(pooled, axis=1), 1.0, atol=1e-4)
    # Close to the vector of a pass over the passage with its header, yet not that vector.
    embedded = embedder.embed([index_text(snap.passage_meta(p), snap.passage(p).text) for p in range(n)])
    cos = np.sum(pooled * embedded, axis=1)
    assert cos.min() > 0.75 and cos.mean() > 0.85 and cos.max() < 0.9999, cos
    # The sentence vectors are the ones a separate pass gives.
    units = snap.unit_vectors_f32(np.arange(len(snap.units)))
    alone = embedder.embed([snap.unit_text(u) for u in range(len(snap.units))])
    assert np.all(np.sum(units * alone, axis=1) > 0.999)
    answer = ask(engine, "What is the range of Tomahawk missiles?")
    assert answer.citations and any("2,500" in c.quote or "1,600" in c.quote for c in answer.citations)
