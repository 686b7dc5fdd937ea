"""BM25 on incremental ingest and removal: stored token ids, same scores as a fresh build."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.errors import IndexLoadError
from rag.store.bm25_tokens import TOKENS_DIR
from rag.store.generations import GenerationBuilder, open_index
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


def _engine(path: Path, embedder):
    from rag.engine import Engine

    engine = Engine(make_settings(path), embedder=embedder)
    return engine


@pytest.fixture
def no_full_retokenize(monkeypatch):
    """Fail if an ingest or removal re-reads every article to rebuild BM25."""

    def refuse(self, passages):
        raise AssertionError(f"re-read and re-tokenized all {len(passages)} passages")

    monkeypatch.setattr(GenerationBuilder, "all_index_texts", refuse)


def _fresh_bm25(snap):
    """bm25s over the snapshot's passages, tokenized from scratch the way it always was."""
    import bm25s

    from rag.text.terms import bm25_tokenize

    texts = [index_text(snap.passage_meta(pid), snap.passage(pid).text) for pid in range(len(snap))]
    bm = bm25s.BM25()
    bm.index(bm25_tokenize(texts), show_progress=False)
    return bm


def _assert_same_bm25(got, want) -> None:
    """Same passages, vocabulary, IDF and BM25 scores and rankings, bit for bit."""
    gs, ws = got.store, want.store
    # Article rows are store keys (a removal leaves gaps), so passages are compared by id.
    assert [gs.passage(i) for i in range(len(gs))] == [ws.passage(i) for i in range(len(ws))]
    assert all(np.array_equal(gs.passages[f], ws.passages[f]) for f in ("start", "end", "unit_lo", "unit_hi"))
    assert set(gs.bm25.vocab_dict) == set(ws.bm25.vocab_dict)
    g_idf = {t: got.features.idf[i] for t, i in gs.bm25.vocab_dict.items()}
    w_idf = {t: want.features.idf[i] for t, i in ws.bm25.vocab_dict.items()}
    assert g_idf == w_idf
    for q in QUERIES:
        g, w = gs.bm25_scores(bm25_query_tokens(q)), ws.bm25_scores(bm25_query_tokens(q))
        assert (g is None) == (w is None), q
        if g is not None:
            assert np.array_equal(g, w), q
        g_terms, g_w = got.features.query_terms(q, with_unknown=True)
        w_terms, w_w = want.features.query_terms(q, with_unknown=True)
        assert g_terms == w_terms and np.array_equal(g_w, w_w), q
        bm25_only = got.defaults.but(top_k=10, retrieval_mode="bm25")
        g_hits = got.search(q, bm25_only).hits
        w_hits = want.search(q, bm25_only).hits
        assert [(h.passage.passage_id, h.score) for h in g_hits] == [(h.passage.passage_id, h.score) for h in w_hits], q
    fresh = _fresh_bm25(gs)
    for q in QUERIES:
        tokens = [t for t in bm25_query_tokens(q) if t in fresh.vocab_dict]
        if tokens:
            assert np.array_equal(gs.bm25.get_scores(tokens), fresh.get_scores(tokens)), q


def _as_written_before_token_files(gen_dir: Path) -> None:
    """What a generation written before token files (and checksums) existed looks like."""
    import json

    shutil.rmtree(gen_dir / TOKENS_DIR)
    manifest = json.loads((gen_dir / "manifest.json").read_text())
    manifest.pop("files", None)
    (gen_dir / "manifest.json").write_text(json.dumps(manifest))


def _token_files(snap) -> list[str]:
    return sorted(p.name for p in (snap.gen_dir / TOKENS_DIR).iterdir())


def test_incremental_ingest_tokenizes_only_new_passages_and_matches_a_fresh_build(
    tmp_path, embedder, seed_engine, no_full_retokenize
):
    engine = _engine(tmp_path / "index", embedder)
    engine.ingest(FIRST, show_progress=False)
    n_first = len(engine.snapshot)
    tokens = engine.snapshot.bm25_tokens()
    assert tokens is not None and len(tokens) == n_first
    engine.ingest(SECOND, show_progress=False)
    snap = engine.snapshot
    assert _token_files(snap) == ["ids.npy", "offsets.npy", "vocab.json"]
    after = snap.bm25_tokens()
    # The first generation's runs are carried over unchanged.
    assert np.array_equal(after.ids[: tokens.offsets[-1]], tokens.ids)
    assert after.vocab[: len(tokens.vocab)] == tokens.vocab
    # The seed index is the same five articles ingested in one go.
    _assert_same_bm25(engine.retriever, seed_engine.retriever)


def test_remove_drops_token_rows_and_matches_a_fresh_build(tmp_path, embedder, no_full_retokenize):
    engine = _engine(tmp_path / "index", embedder)
    engine.ingest(FIRST + SECOND, show_progress=False)
    drop = [a.article_id for a, _ in engine.articles() if a.source in ("Skai", "BBC")]
    assert len(drop) == 2
    engine.remove(drop)
    kept = [a.origin for a, _ in engine.articles()]
    assert len(kept) == 3

    fresh = _engine(tmp_path / "fresh", embedder)
    fresh.ingest(kept, show_progress=False)
    # Same vocabulary (checked below) means terms only the removed articles used are gone.
    _assert_same_bm25(engine.retriever, fresh.retriever)


def test_generation_without_token_files_is_retokenized_once(tmp_path, embedder, seed_engine, caplog):
    engine = _engine(tmp_path / "index", embedder)
    engine.ingest(FIRST, show_progress=False)
    _as_written_before_token_files(engine.snapshot.gen_dir)
    engine.reload()
    assert engine.snapshot.bm25_tokens() is None
    assert engine.search("Tomahawk missiles", k=3, mode="bm25").hits

    with caplog.at_level(logging.INFO, logger="rag.ingest"):
        engine.ingest(SECOND, show_progress=False)
    assert "re-tokenizing all" in caplog.text
    assert _token_files(engine.snapshot) == ["ids.npy", "offsets.npy", "vocab.json"]
    _assert_same_bm25(engine.retriever, seed_engine.retriever)

    # Removal from an old-format generation falls back the same way.
    _as_written_before_token_files(engine.snapshot.gen_dir)
    skai = next(a for a, _ in engine.articles() if a.source == "Skai")
    engine.remove([skai.article_id])
    assert engine.snapshot.bm25_tokens() is not None
    kept = [a.origin for a, _ in engine.articles()]
    fresh = _engine(tmp_path / "fresh", embedder)
    fresh.ingest(kept, show_progress=False)
    _assert_same_bm25(engine.retriever, fresh.retriever)


def test_token_files_that_do_not_match_the_passages_are_refused(fresh_engine):
    fresh_engine.ingest([SEED_FILES["econotimes"]], show_progress=False)
    tok_dir = fresh_engine.snapshot.gen_dir / TOKENS_DIR
    offsets = np.load(tok_dir / "offsets.npy")
    np.save(tok_dir / "offsets.npy", offsets[:-1], allow_pickle=False)
    # The recorded file sizes catch it first ...
    with pytest.raises(IndexLoadError, match=f"{TOKENS_DIR}/offsets.npy has 152 bytes, 160 were written"):
        open_index(fresh_engine.index_dir)
    # ... and without them (an older generation) the token files' own checks do.
    manifest = json.loads((tok_dir.parent / "manifest.json").read_text())
    manifest.pop("files")
    (tok_dir.parent / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexLoadError, match=f"Delete the folder .*{TOKENS_DIR}"):
        open_index(fresh_engine.index_dir)
    np.save(tok_dir / "offsets.npy", offsets, allow_pickle=False)
    open_index(fresh_engine.index_dir).close()
    (tok_dir / "vocab.json").unlink()
    with pytest.raises(IndexLoadError, match="vocab.json missing"):
        open_index(fresh_engine.index_dir)
