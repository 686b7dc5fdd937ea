"""BM25 over segments: global statistics, so scores never depend on where an article landed.

An index grown by several ingests, with tombstoned deletes, merged or not, must
score and rank exactly (bit for bit) as a single index built afresh from the same
articles in the same order, and as bm25s over the same passages.
"""

from __future__ import annotations

import numpy as np
import pytest

from rag.store.merge import merge_span
from rag.text.headers import index_text
from rag.text.terms import bm25_query_tokens

from .conftest import SEED_FILES, make_settings

FIRST = [SEED_FILES["moscow"], SEED_FILES["bbc"], SEED_FILES["aljazeera"]]
SECOND = [SEED_FILES["econotimes"], SEED_FILES["skai"]]
QUERIES = [
    "Tomahawk missiles for Ukraine",
    "Trump Putin summit in Budapest",
    "Zelensky White House meeting Friday",
    "ceasefire weapons support",
    "Skai freelance",
    "Moscow Times",
    "population of Alaska",
    "zzqx unknownword",
]


def _engine(path, embedder):
    from rag.engine import Engine

    return Engine(make_settings(path), embedder=embedder)


def _fresh_bm25(snap):
    """bm25s over the snapshot's passages, tokenized from scratch the way it always was."""
    import bm25s

    from rag.text.terms import bm25_tokenize

    texts = [index_text(snap.passage_meta(pid), snap.passage(pid).text) for pid in range(len(snap))]
    bm = bm25s.BM25()
    bm.index(bm25_tokenize(texts), show_progress=False)
    return bm


def assert_same_search(got, want) -> None:
    """Same passages, vocabulary, IDF, BM25 scores and rankings, bit for bit; same hybrid hits."""
    gs, ws = got.store, want.store
    # Article rows are store keys (they differ between indexes), so passages are compared by id.
    assert [gs.passage(i) for i in range(len(gs))] == [ws.passage(i) for i in range(len(ws))]
    assert set(gs.vocabulary()) == set(ws.vocabulary())
    g_idf = {t: gs.term_idf()[i] for t, i in gs.vocabulary().items()}
    w_idf = {t: ws.term_idf()[i] for t, i in ws.vocabulary().items()}
    assert g_idf == w_idf
    fresh = _fresh_bm25(gs)
    assert set(fresh.vocab_dict) - {""} == set(gs.vocabulary()) - {""}
    for q in QUERIES:
        g, w = gs.bm25_scores(bm25_query_tokens(q)), ws.bm25_scores(bm25_query_tokens(q))
        assert (g is None) == (w is None), q
        if g is not None:
            assert np.array_equal(g, w), q
            tokens = [t for t in bm25_query_tokens(q) if t in fresh.vocab_dict]
            assert np.array_equal(g, fresh.get_scores(tokens)), q  # bm25s itself, bit for bit
        g_terms, g_w = got.features.query_terms(q, with_unknown=True)
        w_terms, w_w = want.features.query_terms(q, with_unknown=True)
        assert g_terms == w_terms and np.array_equal(g_w, w_w), q
        for mode in ("bm25", "hybrid", "dense"):
            p = got.defaults.but(top_k=10, retrieval_mode=mode)
            g_hits, w_hits = got.search(q, p).hits, want.search(q, p).hits
            assert [h.passage for h in g_hits] == [h.passage for h in w_hits], (q, mode)
            assert [h.score for h in g_hits] == pytest.approx([h.score for h in w_hits], abs=1e-6), (q, mode)


def test_segments_score_as_one_fresh_build(tmp_path, embedder, seed_engine):
    engine = _engine(tmp_path / "index", embedder)
    engine.ingest(FIRST, show_progress=False)
    engine.ingest(SECOND[:1], show_progress=False)
    engine.ingest(SECOND[1:], show_progress=False)
    assert len(engine.snapshot.segments) == 3
    # The seed index is the same five articles ingested in one go (one segment).
    assert len(seed_engine.snapshot.segments) == 1
    assert_same_search(engine.retriever, seed_engine.retriever)
    # Merged into one segment: the same again.
    merge_span(engine.index_dir, 0, 3)
    engine.reload()
    assert len(engine.snapshot.segments) == 1
    assert_same_search(engine.retriever, seed_engine.retriever)


def test_tombstones_score_as_a_fresh_build_without_them(tmp_path, embedder):
    engine = _engine(tmp_path / "index", embedder)
    engine.ingest(FIRST, show_progress=False)
    engine.ingest(SECOND, show_progress=False)
    drop = [a.article_id for a, _ in engine.articles() if a.source in ("Skai", "BBC")]
    assert len(drop) == 2
    engine.remove(drop)
    assert sum(len(s.deleted) for s in engine.snapshot.manifest.segments) == 2  # tombstones
    kept = [a.origin for a, _ in engine.articles()]
    assert len(kept) == 3
    fresh = _engine(tmp_path / "fresh", embedder)
    fresh.ingest(kept, show_progress=False)
    # Same vocabulary means terms only the removed articles used are unknown again.
    assert_same_search(engine.retriever, fresh.retriever)
    # The merge drops the tombstoned passages for good.
    merge_span(engine.index_dir, 0, 2)
    engine.reload()
    (seg,) = engine.snapshot.segments
    assert not seg.info.deleted and len(seg.meta_by_row) == 3 and seg.faiss.ntotal == len(engine.snapshot)
    assert_same_search(engine.retriever, fresh.retriever)
