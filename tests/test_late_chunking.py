"""Late chunking: sentence vectors pooled from the passage's own pass (RAG_SENTENCE_VECTORS=late)."""

from __future__ import annotations

import numpy as np
import pytest

from rag.embed.late import embed_with_spans, pool, token_ranges

from .conftest import SEED_FILES, make_settings

TEXTS = [
    "Trump met Putin in Alaska | BBC | 2025-08-15\nThe summit ended without a deal. Ukraine was not invited. "
    "Officials said talks would continue.",
    "Short one. Another sentence here.",
]


def spans_of(text: str, sentences: list[str]) -> list[tuple[int, int]]:
    return [(text.index(s), text.index(s) + len(s)) for s in sentences]


SPANS = [
    spans_of(TEXTS[0], ["The summit ended without a deal.", "Ukraine was not invited.", "Officials said talks would continue."]),
    spans_of(TEXTS[1], ["Short one.", "Another sentence here."]),
]


def test_token_ranges_cover_each_span_and_skip_special_tokens():
    # [CLS] "ab" "cd" " " "ef" [SEP], as a tokenizer reports them
    offsets = [(0, 0), (0, 2), (2, 4), (5, 7), (0, 0)]
    assert token_ranges(offsets, [(0, 4), (5, 7), (4, 5)]).tolist() == [[1, 3], [3, 4], [0, 0]]
    hidden = np.arange(10, dtype=np.float32).reshape(5, 2) + 1
    got = pool(hidden, np.array([[1, 3]]))
    want = hidden[1:3].mean(0)
    assert np.allclose(got[0], want / np.linalg.norm(want))


@pytest.mark.parametrize("backend", ["torch", "openvino"])
def test_one_pass_gives_the_passage_vector_and_a_vector_per_sentence(backend, embedder):
    from rag.embed.factory import create_embedder
    from rag.settings import Settings

    e = embedder if backend == "torch" else create_embedder(Settings(embedding_backend=backend))
    vectors, span_vectors = embed_with_spans(e, TEXTS, SPANS)
    # The passage vector is the model's own.
    assert np.allclose(np.sum(vectors * e.embed(TEXTS), axis=1), 1.0, atol=1e-3)
    assert [len(v) for v in span_vectors] == [3, 2]
    for v in span_vectors:
        assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # Pooled in context: related to the sentence alone, but not the same vector.
    alone = e.embed([TEXTS[0][a:b] for a, b in SPANS[0]])
    cos = np.sum(span_vectors[0] * alone, axis=1)
    assert np.all(cos > 0.2) and np.all(cos < 0.99)
    # Both backends pool the same outputs.
    if backend != "torch":
        _, torch_spans = embed_with_spans(embedder, TEXTS, SPANS)
        assert np.all(np.sum(span_vectors[0] * torch_spans[0], axis=1) > 0.99)


def test_an_index_with_late_sentence_vectors_answers(tmp_path, embedder):
    from rag.chain import ask
    from rag.engine import Engine

    engine = Engine(make_settings(tmp_path / "index", sentence_vectors="late"), embedder=embedder)
    engine.ingest([SEED_FILES["moscow"], SEED_FILES["bbc"]], show_progress=False)
    snap = engine.snapshot
    units = snap.unit_vectors_f32(np.arange(len(snap.units)))
    assert units.shape == (len(snap.units), embedder.dim)
    assert np.allclose(np.linalg.norm(units, axis=1), 1.0, atol=2e-3)
    answer = ask(engine, "What is the range of Tomahawk missiles?")
    assert answer.citations and any("2,500" in c.quote or "1,600" in c.quote for c in answer.citations)
