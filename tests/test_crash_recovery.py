"""Writes survive kill -9 at every step: real processes, real SIGKILL, then the next command writes.

Each trial runs one `rag` command (or a merge) in its own process
(``tests/crash_child.py``) that kills itself with SIGKILL at one named step of the
write (``rag.store.steps``), or is killed from outside at a random moment. After every kill the index must
open, pass ``rag check`` (no damage; leftovers allowed until the next write), hold
exactly the articles of the last committed write (nothing lost, nothing half
added), and take the next write, which also removes the crashed writer's leftovers.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rag.ingest.readers import article_id_for
from rag.store import steps
from rag.store.check import check_index
from rag.store.layout import leftovers, live_manifest
from rag.store.snapshot import open_index
from rag.text.terms import bm25_query_tokens
from rag.types import Article

from . import synthetic
from .conftest import ROOT, SEED_FILES, make_settings

KILLS = 20  # per operation


def child(step: str, *args: str, nth: int = 1) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.crash_child", step, str(nth), *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def tiny_article(tag: str) -> Article:
    title = f"Harbour bulletin {tag}"
    text = (
        f"The harbour authority of district {tag} counted {len(tag) * 7} ships on Monday. "
        f"Crane operators in district {tag} said the new quay opens in spring. "
        "Officials expect traffic to grow through the year."
    )
    return Article(article_id_for(title, text), title, text, "Crash Gazette", published_at="2024-03-01")


def article_file(path: Path, arts: list[Article]) -> Path:
    path.write_text(json.dumps([{"title": a.title, "body": a.text, "source": a.source,
                                 "published_at": a.published_at} for a in arts]))
    return path


def titles(index: Path) -> set[str]:
    snap = open_index(index)
    try:
        return {a.title for a in snap.articles()}
    finally:
        snap.close()


def assert_sound(index: Path) -> None:
    report = check_index(index)
    assert report.ok, "\n".join(f.line() for f in report.findings)


def summary(name: str, tried: int, failures: int, lost: int) -> None:
    print(f"\n{name}: tried {tried}, failures {failures}, data lost {lost}")


@pytest.fixture
def engine(tmp_path, embedder):
    from rag.engine import Engine

    e = Engine(make_settings(tmp_path / "index"), embedder=embedder)
    e.ingest([SEED_FILES["moscow"]], show_progress=False)
    return e


@pytest.mark.slow
@pytest.mark.parametrize("op", ["ingest", "remove"])
def test_kill_at_each_step_of_a_write(engine, tmp_path, op):
    index = engine.index_dir
    plan = steps.INGEST_STEPS if op == "ingest" else steps.REMOVE_STEPS
    have = titles(index)
    victim = tiny_article("v0")
    engine.ingest_articles([victim], show_progress=False)
    have.add(victim.title)
    for i in range(KILLS):
        step = plan[i % len(plan)]
        if op == "ingest":
            new = tiny_article(f"k{i}")
            proc = child(step, "ingest", str(article_file(tmp_path / f"k{i}.json", [new])), "--index", str(index), "-q")
            landed = have | {new.title}
        else:
            proc = child(step, "remove", victim.article_id, "--index", str(index), "-q")
            landed = have - {victim.title}
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL, f"step {step}: exit {proc.returncode}\n{err}"
        committed = plan.index(step) >= plan.index("committed")
        assert titles(index) == (landed if committed else have), step
        assert_sound(index)
        have = landed if committed else have
        # The next command writes, and clears what the killed one left behind.
        engine.reload()
        if op == "remove" and not committed:
            engine.remove([victim.article_id])
            engine.wait_for_merges()
            have.discard(victim.title)
        victim = tiny_article(f"w{i}")
        assert engine.ingest_articles([victim], show_progress=False).added
        engine.wait_for_merges()
        have.add(victim.title)
        assert titles(index) == have and not leftovers(index)
        assert_sound(index)
    summary(f"kill -9 at each {op} step", KILLS, 0, 0)


def kill_at_random(proc, rng: random.Random, took: float) -> tuple[bool, float]:
    """SIGKILL ``proc`` at a random moment of a run expected to last ``took`` seconds;
    whether the kill landed mid-run, and the window to use next (shorter when the run
    had already ended: the shared machine got faster than the calibration run)."""
    time.sleep(rng.uniform(0.2, took))
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    landed = proc.returncode == -signal.SIGKILL
    return landed, took if landed else max(0.4, took * 0.8)


@pytest.mark.slow
def test_kill_at_random_moments_of_an_ingest(engine, tmp_path):
    """SIGKILL from outside at a random moment of a real `rag ingest` of 8 articles."""
    index = engine.index_dir
    rng = random.Random(20)
    have = titles(index)
    # One complete run first, for how long an ingest takes.
    batch = [tiny_article(f"r-calibrate-{j}") for j in range(8)]
    t0 = time.perf_counter()
    proc = child("-", "ingest", str(article_file(tmp_path / "cal.json", batch)), "--index", str(index), "-q")
    assert proc.wait(timeout=300) == 0
    took = time.perf_counter() - t0
    have |= {a.title for a in batch}
    killed = i = 0
    while killed < KILLS and i < 3 * KILLS:  # until 20 kills landed mid-ingest
        i += 1
        batch = [tiny_article(f"r{i}-{j}") for j in range(8)]
        proc = child("-", "ingest", str(article_file(tmp_path / f"r{i}.json", batch)), "--index", str(index), "-q")
        landed, took = kill_at_random(proc, rng, took)
        killed += landed
        now = titles(index)
        assert now in (have, have | {a.title for a in batch}), i  # all or nothing
        assert_sound(index)
        have = now
        engine.reload()
        extra = tiny_article(f"rw{i}")
        assert engine.ingest_articles([extra], show_progress=False).added
        engine.wait_for_merges()
        have.add(extra.title)
        assert titles(index) == have and not leftovers(index)
    assert killed == KILLS, f"only {killed} of {i} runs were still going when killed"
    summary("kill -9 at random moments of an ingest", killed, 0, 0)


def test_an_orphan_segment_does_not_block_the_next_write(engine, tmp_path):
    """The #22 crash point: the new segment renamed into place, no manifest naming it."""
    index = engine.index_dir
    live = live_manifest(index)
    new = tiny_article("orphan")
    proc = child("renamed", "ingest", str(article_file(tmp_path / "o.json", [new])), "--index", str(index), "-q")
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    orphans = [p.name for p in leftovers(index)]
    assert len(orphans) == 1 and orphans[0].startswith("seg-")
    assert live_manifest(index) == live  # not committed
    report = check_index(index)
    assert report.ok and {f.where for f in report.findings if f.kind == "leftover"} == set(orphans)
    # The next writer removes the orphan and commits its own segment.
    engine.reload()
    assert engine.ingest_articles([tiny_article("after")], show_progress=False).added
    assert not leftovers(index)
    engine.wait_for_merges()
    now = titles(index)
    assert "Harbour bulletin after" in now and new.title not in now


def test_check_repair_removes_leftovers_without_a_write(engine):
    index = engine.index_dir
    (index / ".tmp-seg-abc123").mkdir()
    (index / "seg-999999").mkdir()
    (index / "manifest-999998.json").write_text("{}")
    report = check_index(index, repair=True)
    assert sorted(report.repaired) == [".tmp-seg-abc123", "manifest-999998.json", "seg-999999"]
    assert not leftovers(index) and report.ok and not report.findings


# -- merges ------------------------------------------------------------------------


def content(index: Path) -> tuple:
    """What the index holds and answers, independent of how it is cut into segments."""
    snap = open_index(index)
    try:
        passages = tuple(snap.passage(i) for i in range(len(snap)))
        scores = snap.bm25_scores(bm25_query_tokens(f"{synthetic.WORDS[3]} {synthetic.WORDS[17]} quux"))
        return passages, tuple(np.round(scores, 6)) if scores is not None else None
    finally:
        snap.close()


@pytest.fixture
def segmented(tmp_path):
    """A synthetic index of 4 segments of 40 articles (HNSW graphs, so merging takes a while)."""
    index = tmp_path / "segmented"
    for k in range(4):
        synthetic.add(index, synthetic.articles(f"s{k}", 40), index_setting="hnsw", seed=k)
    return index


def _merge_child(step: str, index: Path) -> subprocess.Popen:
    n = len(live_manifest(index).segments)
    return child(step, "merge", str(index), "0", str(n))


@pytest.mark.slow
def test_kill_at_each_step_of_a_merge(segmented):
    index = segmented
    plan = steps.MERGE_STEPS
    for i in range(KILLS):
        step = plan[i % len(plan)]
        before = content(index)
        n_before = len(live_manifest(index).segments)
        proc = _merge_child(step, index)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL, f"step {step}: exit {proc.returncode}\n{err}"
        committed = plan.index(step) >= plan.index("committed")
        assert len(live_manifest(index).segments) == (1 if committed else n_before), step
        assert content(index) == before, step  # a merge changes nothing a reader sees
        assert_sound(index)
        # The next command writes: a new segment, so there is something to merge again.
        synthetic.add(index, synthetic.articles(f"m{i}", 3), index_setting="hnsw", seed=100 + i)
        assert not leftovers(index)
        assert_sound(index)
    summary("kill -9 at each merge step", KILLS, 0, 0)


@pytest.mark.slow
def test_kill_at_random_moments_of_a_merge(segmented):
    index = segmented
    rng = random.Random(22)
    t0 = time.perf_counter()
    proc = _merge_child("-", index)
    assert proc.wait(timeout=300) == 0
    took = time.perf_counter() - t0
    killed = i = 0
    while killed < KILLS and i < 3 * KILLS:  # until 20 kills landed mid-merge
        i += 1
        for k in range(3):  # more segments to merge
            synthetic.add(index, synthetic.articles(f"r{i}-{k}", 40), index_setting="hnsw", seed=1000 + 3 * i + k)
        before = content(index)
        proc = _merge_child("-", index)
        landed, took = kill_at_random(proc, rng, took)
        killed += landed
        assert content(index) == before, i
        assert_sound(index)
    assert killed == KILLS, f"only {killed} of {i} merges were still going when killed"
    summary("kill -9 at random moments of a merge", killed, 0, 0)
