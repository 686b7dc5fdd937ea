"""The segmented store: writes never rewrite, merges are tiered, readers keep their view, old indexes migrate."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from rag.store import steps
from rag.store.commit import writer_lock
from rag.store.layout import leftovers, live_manifest
from rag.store.manifest import Manifest, SegmentInfo
from rag.store.merge import FACTOR, FLOOR, merge_pending, merge_span, plan, tier
from rag.store.protocol import Store
from rag.store.snapshot import open_index
from rag.store.writer import IndexState, delete_articles

from . import synthetic
from .conftest import SEED_FILES, make_settings
from .test_bm25_incremental import assert_same_search


def files_of(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def test_writes_add_segments_and_tombstones_without_rewriting_anything(fresh_engine):
    index = fresh_engine.index_dir
    fresh_engine.ingest([SEED_FILES[k] for k in ("moscow", "bbc", "aljazeera", "econotimes")], show_progress=False)
    first = live_manifest(index).segments[0]
    before = files_of(index / first.name)
    fresh_engine.ingest([SEED_FILES["skai"]], show_progress=False)
    # 4 of the segment's 28 passages: a tombstone, below the share that gets a segment rewritten.
    victim = next(a for a, _ in fresh_engine.articles() if a.source == "The Moscow Times")
    fresh_engine.remove([victim.article_id])
    fresh_engine.wait_for_merges()
    m = live_manifest(index)
    assert [s.name for s in m.segments][0] == first.name and len(m.segments) == 2
    assert files_of(index / first.name) == before  # not a byte rewritten
    assert len(m.segments[0].deleted) == 1 and m.segments[0].deleted_passages == 4
    assert isinstance(fresh_engine.snapshot, Store)
    assert victim.article_id not in fresh_engine.snapshot.row_by_id
    assert all(h.article.article_id != victim.article_id for h in fresh_engine.search("Zelensky missiles", k=20).hits)


def _info(n: int, deleted: int = 0) -> SegmentInfo:
    return SegmentInfo("seg", 1, n, n, "flat", deleted=(1,) if deleted else (), deleted_passages=deleted)


def test_merge_policy_is_tiered_adjacent_and_expunges_deletes():
    m = Manifest(2, "m", 384, 256, 64, "flat", 1, 0.0)
    assert [tier(_info(n)) for n in (1, FLOOR - 1, FLOOR, FLOOR * FACTOR - 1, FLOOR * FACTOR, 10**6)] == [0, 0, 1, 1, 2, 4]
    big = _info(10**6)
    assert plan(m.with_segments([big] + [_info(40)] * (FACTOR - 1))) is None
    assert plan(m.with_segments([big] + [_info(40)] * FACTOR)) == (1, 1 + FACTOR)
    # Same tier but not adjacent: no merge.
    assert plan(m.with_segments([_info(40)] * 5 + [_info(5000)] + [_info(40)] * 5)) is None
    # The lowest tier merges first.
    segs = [big] + [_info(20_000)] * FACTOR + [_info(40)] * FACTOR
    assert plan(m.with_segments(segs)) == (1 + FACTOR, 1 + 2 * FACTOR)
    assert plan(m.with_segments([big, _info(500, deleted=200), _info(40)])) == (1, 2)


def test_tiny_ingests_merge_in_the_background(fresh_engine):
    from rag.ingest.readers import article_id_for
    from rag.types import Article

    for i in range(FACTOR):
        title, text = f"Bulletin {i}", f"Ferry number {i} left the harbour at dawn. The crew of {i} waved."
        assert fresh_engine.ingest_articles([Article(article_id_for(title, text), title, text, "Wire")], show_progress=False).added
    merged = fresh_engine.wait_for_merges()
    assert len(merged) == 1 and len(merged[0].merged) == FACTOR
    m = live_manifest(fresh_engine.index_dir)
    assert len(m.segments) == 1 and m.n_articles == FACTOR
    assert len(fresh_engine.snapshot.segments) == 1  # the engine reloaded after the merge
    assert not leftovers(fresh_engine.index_dir)


def test_a_segment_with_many_tombstones_is_rewritten(tmp_path):
    index = tmp_path / "index"
    synthetic.add(index, synthetic.articles("a", 30))
    synthetic.add(index, synthetic.articles("b", 10))
    with writer_lock(index):
        state = IndexState(index)
        doomed = [aid for aid, (k, _) in state.row_of.items() if k == 0][:12]
        delete_articles(state, doomed)
    before = open_index(index)
    want = [before.passage(i) for i in range(len(before))]
    done = merge_pending(index)
    assert len(done) == 1 and done[0].dropped_articles == 12 and len(done[0].merged) == 1
    m = live_manifest(index)
    assert [s.live_articles for s in m.segments] == [18, 10] and not any(s.deleted for s in m.segments)
    after = open_index(index)
    assert [after.passage(i) for i in range(len(after))] == want
    # The removed articles' texts are gone from disk.
    seg = after.segments[0]
    assert not set(doomed) & set(seg.row_by_id)


def test_readers_keep_the_snapshot_they_opened(tmp_path):
    index = tmp_path / "index"
    for k in range(3):
        synthetic.add(index, synthetic.articles(f"r{k}", 5), seed=k)
    old = open_index(index)
    want = [(old.passage(i), old.article(old.passage(i).article_id).text) for i in range(len(old))]
    old_dirs = [s.folder for s in old.segments]
    merge_span(index, 0, 3)
    assert not any(d.exists() for d in old_dirs)  # merged away and removed from disk
    # The old snapshot still reads everything it listed (open and mapped files live on).
    assert [(old.passage(i), old.article(old.passage(i).article_id).text) for i in range(len(old))] == want
    assert old.unit_vectors_f32(np.arange(len(old.units))).shape == (len(old.units), synthetic.DIM)
    assert old.bm25_scores([synthetic.WORDS[0]]) is not None
    new = open_index(index)
    assert len(new.segments) == 1 and [new.passage(i) for i in range(len(new))] == [p for p, _ in want]


def test_deletes_during_a_merge_become_tombstones_of_the_merged_segment(tmp_path):
    index = tmp_path / "index"
    for k in range(3):
        synthetic.add(index, synthetic.articles(f"d{k}", 4), seed=k)
    victim = open_index(index).articles()[5].article_id
    done = []

    def delete_while_merging(step: str) -> None:
        if step == "files-synced" and not done:  # merged segment written, not yet committed
            done.append(step)
            with writer_lock(index):
                delete_articles(IndexState(index), [victim])

    with steps.listening(delete_while_merging):
        merge_span(index, 0, 3)
    (seg,) = live_manifest(index).segments
    assert done and len(seg.deleted) == 1 and seg.deleted_passages == 3
    snap = open_index(index)
    assert victim not in snap.row_by_id and snap.manifest.n_articles == 11


def as_format_1(index: Path, out: Path, *, tokens: bool = True) -> None:
    """The one-segment index at ``index`` rewritten the way format 1 stored it."""
    from rag.store.article_columns import OPTIONAL_COLUMNS
    from rag.store.bm25_tokens import TOKENS_DIR

    m = live_manifest(index)
    (info,) = m.segments
    seg = index / info.name
    gen = out / "gen-000003"
    gen.mkdir(parents=True)
    for f in ("store.sqlite", "passages.npy", "vectors.npy", "units.npy", "unit_vectors.npy", "faiss.index"):
        shutil.copy2(seg / f, gen / f)
    with sqlite3.connect(gen / "store.sqlite") as db:  # format 1 had no optional article columns
        # nor an ingest date standing in for a missing publication date
        db.execute("UPDATE articles SET published_at = NULL WHERE date_source = 'ingest'")
        for col in OPTIONAL_COLUMNS:
            db.execute(f"ALTER TABLE articles DROP COLUMN {col}")
    db.close()
    if tokens:  # term ids per passage, rebuilt from the postings (order within a passage is free)
        p = open_index(index).segments[0].postings
        term = np.repeat(np.arange(len(p.vocab)), np.diff(p.indptr))
        occ = np.repeat(np.arange(len(p.docs)), np.asarray(p.tf, dtype=np.int64))
        order = np.argsort(np.asarray(p.docs)[occ], kind="stable")
        ids = term[occ][order].astype(np.int32)
        (gen / TOKENS_DIR).mkdir()
        np.save(gen / TOKENS_DIR / "ids.npy", ids)
        np.save(gen / TOKENS_DIR / "offsets.npy", np.concatenate([[0], np.cumsum(p.doc_len)]).astype(np.int64))
        (gen / TOKENS_DIR / "vocab.json").write_text(json.dumps(list(p.vocab)))
    (gen / "manifest.json").write_text(json.dumps({
        "format_version": 1, "embedding_model": m.embedding_model, "dim": m.dim, "chunk_max_tokens": 256,
        "chunk_overlap_tokens": 64, "index_type": "flat", "n_articles": m.n_articles, "n_passages": m.n_passages,
        "generation": 3, "created_at": 0.0, "embedding_backend": m.embedding_backend,
    }))
    (out / "gen-000002").mkdir()  # an orphan of a crashed write
    (out / "CURRENT").write_text("gen-000003\n")


@pytest.mark.parametrize("tokens", [True, False], ids=["with-token-ids", "without"])
def test_a_format_1_index_is_migrated_once(seed_engine, tmp_path, caplog, tokens):
    from rag.engine import Engine

    old = tmp_path / "old"
    as_format_1(seed_engine.index_dir, old, tokens=tokens)
    engine = Engine(make_settings(old), embedder=seed_engine.embedder)
    with caplog.at_level(logging.WARNING, logger="rag.store"):
        snap = engine.snapshot
    said = [r.message for r in caplog.records if "migrated" in r.message]
    assert len(said) == 1 and said[0].startswith(
        f"migrated the index at {old} to format 2 (segments), once: 5 articles, {len(snap)} passages")
    assert sorted(p.name for p in old.iterdir() if not p.name.startswith(".")) == sorted(
        ["CURRENT", f"manifest-{snap.manifest.generation:06d}.json", snap.segments[0].folder.name])
    assert_same_search(engine.retriever, seed_engine.retriever)
    caplog.clear()
    engine.reload()
    assert engine.ingest([SEED_FILES["moscow"]], show_progress=False).duplicates
    assert not [r for r in caplog.records if "migrated" in r.message]


def test_one_writer_adding_twice_keeps_both_writes(fresh_engine):
    """`rag ingest --ray` writes in batches under one writer lock: the second batch must
    build on the manifest the first committed (it once built on the stale one and
    dropped the first batch's segment)."""
    from rag.ingest.pipeline import Chunked, chunk_article, passage_index_texts, write_chunked
    from rag.ingest.readers import load_file
    from rag.store.writes import index_writer
    from rag.types import IngestReport

    settings = fresh_engine.settings
    embedder = fresh_engine.embedder
    arts = [a for k in ("moscow", "bbc", "skai") for a in load_file(SEED_FILES[k], settings).articles]
    report = IngestReport()
    with index_writer(settings) as writer:
        for batch in (arts[:2], arts[2:]):
            chunked = [Chunked(a, chunk_article(a, embedder, settings)) for a in batch]
            texts = passage_index_texts(chunked)
            units = [c.article.text[u.start : u.end] for c in chunked for u in c.chunking.units]
            write_chunked(writer, chunked, embedder.embed(texts), embedder.embed(units), texts, settings,
                          embedder.name, report)
            assert {a.article_id for a in batch} <= {a.article_id for a in writer.articles()}
        removed = writer.delete([arts[0].article_id])
        assert [a.article_id for a in removed] == [arts[0].article_id]
        assert arts[0].article_id not in writer
    m = live_manifest(fresh_engine.index_dir)
    assert len(m.segments) == 2 and m.n_articles == 2
    fresh_engine.reload()
    assert {a.article_id for a, _ in fresh_engine.articles()} == {a.article_id for a in arts[1:]}
    assert len(report.added) == 3
