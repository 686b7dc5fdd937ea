"""The Milvus store on a real server, Ray ingest on a real local cluster.

The server is Milvus Lite's gRPC server (``python -m milvus_lite server``), started
here on 127.0.0.1: the client code is the same that talks to Milvus standalone or
distributed. Ray runs a local cluster of 2 CPUs.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from rag.errors import IndexLoadError, RagError
from rag.ingest.readers import article_id_for
from rag.retrieve.filters import Filters
from rag.types import Article

from .conftest import ROOT, SEEDS, make_settings

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("milvus_lite") is None or importlib.util.find_spec("pymilvus") is None,
    reason="the milvus-lite and pymilvus packages are needed for a real Milvus server",
)
_prefixes = itertools.count()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def milvus_uri(tmp_path_factory):
    """A Milvus Lite gRPC server for this module's tests, shut down after them."""
    data = tmp_path_factory.mktemp("milvus-data")
    port = free_port()
    log = open(data / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data / "db"),
                             "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"milvus-lite server did not start: {(data / 'server.log').read_text()[-2000:]}")
            time.sleep(0.3)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def milvus_settings(tmp: Path, uri: str, prefix: str | None = None, **overrides):
    return make_settings(tmp / "unused-local", store="milvus", milvus_uri=uri,
                         milvus_prefix=prefix or f"t{next(_prefixes)}_", **overrides)


@pytest.fixture(scope="module")
def milvus_seed_engine(milvus_uri, seed_engine, tmp_path_factory, embedder):
    """The seed index migrated into Milvus (no re-embedding), and an engine over it."""
    from rag.engine import Engine
    from rag.store.transfer import migrate

    s = milvus_settings(tmp_path_factory.mktemp("m"), milvus_uri, "seeds_")
    report = migrate(s.model_copy(update={"index_dir": seed_engine.index_dir}), "milvus", show_progress=False)
    assert report.copied == 5 and report.passages == len(seed_engine.snapshot)
    return Engine(s, embedder=embedder)


def seed_questions() -> list[str]:
    from eval.question_sets import load_questions

    return [q.question for q in load_questions(ROOT / "eval" / "questions" / "seeds.jsonl")]


def top(engine, question: str, k: int = 5, **kw) -> list[tuple[str, int, int]]:
    return [(h.passage.article_id, h.passage.start, h.passage.end) for h in engine.search(question, k=k, **kw).hits]


def test_same_top_results_and_answers_as_local(seed_engine, milvus_seed_engine) -> None:
    from rag.chain import ask

    questions = seed_questions()
    assert len(questions) >= 40
    pairs = [(top(milvus_seed_engine, q), top(seed_engine, q)) for q in questions]
    # The same passages; the same order except where two passages tie exactly in BM25
    # (each engine orders ties its own way: 1 question of 77 on the seeds).
    assert all(set(m) == set(loc) and m[0] == loc[0] for m, loc in pairs)
    assert sum(m == loc for m, loc in pairs) >= len(questions) - 2
    for q in questions[:12]:
        a, b = ask(seed_engine, q), ask(milvus_seed_engine, q)
        assert (b.answer, b.abstained, [asdict(c) for c in b.citations]) == (a.answer, a.abstained, [asdict(c) for c in a.citations]), q


def test_filters_become_expressions(seed_engine, milvus_seed_engine) -> None:
    arts = seed_engine.snapshot.articles()
    some = arts[1]
    for f in (Filters(sources=[arts[0].source.upper()]), Filters(article_ids=[some.article_id]),
              Filters(sources=["No Such Paper"])):
        got = top(milvus_seed_engine, "What did Trump say about Tomahawks?", filters=f)
        assert got == top(seed_engine, "What did Trump say about Tomahawks?", filters=f)
    assert {a for a, _, _ in top(milvus_seed_engine, "Tomahawks", filters=Filters(article_ids=[some.article_id]))} == {some.article_id}
    assert top(milvus_seed_engine, "Tomahawks", filters=Filters(sources=["No Such Paper"])) == []
    m = milvus_seed_engine.snapshot.manifest
    assert (m.n_articles, m.n_passages) == (5, len(seed_engine.snapshot))
    assert milvus_seed_engine.snapshot.passage_counts() == seed_engine.snapshot.passage_counts()


def test_a_full_cache_opens_a_fresh_snapshot(milvus_uri, milvus_seed_engine, embedder) -> None:
    """A long-running server's snapshot keeps what its searches fetched; past
    RAG_MILVUS_CACHE_PASSAGES the next question gets a fresh one, while a reader
    holding the full one still reads it whole."""
    from rag.engine import Engine

    s = milvus_seed_engine.settings.model_copy(update={"milvus_cache_passages": 3})
    engine = Engine(s, embedder=embedder)
    first = engine.retriever
    want = top(milvus_seed_engine, "Why was Hungary chosen for the summit?")
    assert top(engine, "Why was Hungary chosen for the summit?") == want
    assert first.store.outgrown() and len(first.store.passages) > 3
    second = engine.retriever
    assert second is not first and not second.store.outgrown() and len(second.store.passages) == 0
    held = [h.passage for h in first.search("Why was Hungary chosen for the summit?", engine.search_params(top_k=5)).hits]
    assert [(p.article_id, p.start, p.end) for p in held] == want and all(p.text for p in held)


def test_remove_undo_and_migrate_back(milvus_uri, seed_engine, tmp_path, embedder) -> None:
    from rag.engine import Engine
    from rag.store.transfer import migrate

    s = milvus_settings(tmp_path, milvus_uri)
    migrate(s.model_copy(update={"index_dir": seed_engine.index_dir}), "milvus", show_progress=False)
    engine = Engine(s, embedder=embedder)
    victim = engine.snapshot.articles()[2]
    [removed] = engine.remove([victim.article_id])
    assert removed.text and removed.article_id == victim.article_id
    assert victim.article_id not in {a for a, _, _ in top(engine, removed.title, k=10)}
    with pytest.raises(RagError, match="No article with id"):
        engine.remove(["nope"])
    assert len(engine.ingest_articles([removed], show_progress=False).added) == 1
    assert victim.article_id in {a for a, _, _ in top(engine, removed.title, k=10)}
    # Back to a local folder: same articles, same search results (article order may differ).
    back = s.model_copy(update={"index_dir": tmp_path / "back"})
    assert migrate(back, "local", show_progress=False).copied == 5
    local = Engine(back.model_copy(update={"store": "local"}), embedder=embedder)
    assert local.snapshot.passage_counts() == seed_engine.snapshot.passage_counts()
    # The round trip keeps every passage and vector: the same results as the original
    # local index. (Not compared with the Milvus engine here: Milvus Lite keeps BM25
    # statistics per sealed segment, and the re-added article sealed a second one.)
    for q in seed_questions()[:10]:
        assert top(local, q) == top(seed_engine, q), q


def test_errors_are_one_clear_line(milvus_uri, milvus_seed_engine, tmp_path, embedder) -> None:
    from rag.engine import Engine

    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RagError) as err:
        Engine(milvus_settings(tmp_path, dead), embedder=embedder).snapshot  # noqa: B018
    assert dead in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(RagError, match="RAG_MILVUS_URI"):
        Engine(milvus_settings(tmp_path, None), embedder=embedder).snapshot  # noqa: B018
    other = milvus_seed_engine.settings.model_copy(update={"embedding_model": "another-model"})
    with pytest.raises(IndexLoadError, match="built with the embedding model") as err:
        Engine(other, embedder=embedder).snapshot  # noqa: B018
    assert "\n" not in str(err.value)
    with pytest.raises(IndexLoadError, match="No index in"):
        Engine(milvus_settings(tmp_path, milvus_uri), embedder=embedder).snapshot  # noqa: B018
    # A collection with our name that we did not make.
    from pymilvus import DataType, MilvusClient

    c = MilvusClient(uri=milvus_uri)
    schema = MilvusClient.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    c.create_collection("foreign_articles", schema=schema)
    with pytest.raises(IndexLoadError, match="not made by article-rag"):
        Engine(milvus_settings(tmp_path, milvus_uri, "foreign_"), embedder=embedder).snapshot  # noqa: B018
    c.close()
    # The CLI prints the one line and exits non-zero.
    out = subprocess.run([sys.executable, "-m", "cli.main", "search", "anything"], cwd=ROOT, capture_output=True,
                         text=True, env={**os.environ, "RAG_STORE": "milvus", "RAG_MILVUS_URI": dead})
    assert out.returncode != 0 and "Traceback" not in out.stderr and dead in out.stderr + out.stdout


def tiny_articles(n: int, tag: str) -> list[Article]:
    out = []
    for i in range(n):
        title = f"Harbour bulletin {tag} {i}"
        text = (f"The harbour authority of district {tag}{i} counted {i * 7} ships on Monday. "
                f"Crane operators in district {tag}{i} said the new quay opens in spring. "
                "Officials expect traffic to grow through the year.")
        out.append(Article(article_id_for(title, text), title, text, "Crash Gazette", published_at="2024-03-01"))
    return out


def assert_whole(settings) -> set[str]:
    """Every article a fresh snapshot sees is whole: all its passages, units and text."""
    from rag.store.milvus.snapshot import open_milvus

    snap = open_milvus(settings)
    rows = list(snap.meta_by_row)
    snap.prefetch(rows)
    counts = snap.passage_counts()
    for row, meta in snap.meta_by_row.items():
        mine = snap.passages[snap.passages["article_row"] == row]
        assert len(mine) == counts[meta.article_id] > 0
        text = snap.article_text(row)
        assert all(0 <= p["start"] < p["end"] <= len(text) for p in mine)
        assert (snap.units["article_row"] == row).sum() >= 1
    return {snap.meta_by_row[r].article_id for r in rows}


@pytest.mark.parametrize("step,nth", [("milvus-passages-written", 2), ("milvus-markers-written", 1)])
def test_kill_9_mid_ingest_leaves_articles_whole_or_absent(milvus_uri, tmp_path, step, nth) -> None:
    from rag.store.milvus.collections import MilvusIndex
    from rag.store.milvus.writer import ARTICLES_PER_BATCH

    s = milvus_settings(tmp_path, milvus_uri)
    arts = tiny_articles(ARTICLES_PER_BATCH * 2 + 5, step[:6])
    src = tmp_path / "arts.json"
    src.write_text(json.dumps([{"title": a.title, "body": a.text, "source": a.source, "published_at": a.published_at}
                               for a in arts]))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_STORE": "milvus", "RAG_MILVUS_URI": milvus_uri,
           "RAG_MILVUS_PREFIX": s.milvus_prefix, "RAG_INDEX": str(tmp_path / "unused-local")}
    proc = subprocess.run([sys.executable, "-m", "tests.crash_child", step, str(nth), "ingest", "-q", str(src)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    seen = assert_whole(s)
    # Whole batches only: what a reader sees is a prefix of batches of the ingest.
    assert len(seen) % ARTICLES_PER_BATCH == 0 and len(seen) < len(arts)
    # The next ingest cleans up what the killed one left and adds the rest.
    rerun = subprocess.run([sys.executable, "-m", "cli.main", "ingest", "-q", str(src)], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert assert_whole(s) == {a.article_id for a in arts}
    ix = MilvusIndex(s)
    [stored] = ix.client.query(ix.passages, filter="article_row > 0", output_fields=["count(*)"])
    assert stored["count(*)"] == len(arts)  # one passage each: no leftover rows
    ix.close()


def test_ray_ingest_local_cluster(milvus_uri, seed_engine, tmp_path, embedder, caplog) -> None:
    import logging

    from rag.engine import Engine

    bad = tmp_path / "in"
    bad.mkdir()
    (bad / "empty.txt").write_text("")
    s = milvus_settings(tmp_path, milvus_uri, ray_local_cpus=2)
    engine = Engine(s, embedder=embedder)
    with caplog.at_level(logging.INFO, logger="rag.ingest.distributed"):
        report = engine.ingest_ray([SEEDS, bad / "empty.txt"], workers=1, show_progress=False)
    # The actor's throughput, for sizing a cluster: every passage of the five articles counted.
    n_passages = sum(seed_engine.snapshot.passage_counts().values())
    assert f"embedding: {n_passages} passages and" in caplog.text and "passages/s per actor (1 actors)" in caplog.text
    assert len(report.added) == 5 and [r.path for r in report.rejected] == [str(bad / "empty.txt")]
    import ray

    assert not ray.is_initialized()  # the local cluster it started is shut down
    assert engine.snapshot.passage_counts() == seed_engine.snapshot.passage_counts()
    pairs = [(top(engine, q), top(seed_engine, q)) for q in seed_questions()[:10]]
    # As in test_same_top_results_and_answers_as_local: the same passages and first
    # passage; exact BM25 ties may be ordered differently by each engine.
    assert all(set(m) == set(loc) and m[0] == loc[0] for m, loc in pairs)
    assert sum(m == loc for m, loc in pairs) >= len(pairs) - 1
    # A second run adds nothing: every article is already there.
    again = engine.ingest_ray([SEEDS], workers=1, show_progress=False)
    assert not again.added and len(again.results) == 5
