"""The `rag` command line, run as a user would (real subprocesses, real index)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT, SEED_FILES, SEEDS


def rag(*args, check=True):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"rag {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory):
    index = tmp_path_factory.mktemp("cli") / "index"
    out = rag("ingest", str(SEEDS), "--index", str(index), "-q").stdout
    assert "5 added, 0 already present, 0 rejected" in out
    return index


def test_search_json_is_verbatim_with_metadata(cli_index):
    out = rag("search", "What is the range of Tomahawk missiles?", "--index", str(cli_index), "--json", "-k", "5").stdout
    hits = json.loads(out)
    assert len(hits) == 5
    arts = {a["article_id"]: a for a in json.loads(rag("articles", "--index", str(cli_index), "--json").stdout)}
    from rag.store.snapshot import open_index

    snap = open_index(cli_index)
    for i, h in enumerate(hits, 1):
        assert {"rank", "score", "text", "article_id", "title", "source", "url", "published_at", "start", "end"} <= set(h)
        assert h["rank"] == i
        assert snap.article(h["article_id"]).text[h["start"] : h["end"]] == h["text"]
        assert h["title"] == arts[h["article_id"]]["title"]


def test_search_modes_and_human_output(cli_index):
    for mode in ("dense", "bm25", "hybrid"):
        out = rag("search", "Typhoon launcher", "--mode", mode, "-k", "2", "--index", str(cli_index)).stdout
        assert out.startswith("[1] ") and "[2] " in out


def test_ingest_reports_duplicates_and_rejects(cli_index, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02" * 100)
    proc = rag("ingest", str(SEED_FILES["skai"]), str(tmp_path / "empty.txt"), str(tmp_path / "bin.txt"), "--index", str(cli_index), "-q")
    assert proc.returncode == 0  # something was usable (already present)
    assert "unchanged" in proc.stdout and "empty.txt: empty file" in proc.stdout and "bin.txt: binary" in proc.stdout
    # Nothing usable at all: non-zero exit, index untouched.
    proc = rag("ingest", str(tmp_path / "empty.txt"), "--index", str(cli_index), "-q", check=False)
    assert proc.returncode == 1 and "0 added" in proc.stdout


def test_articles_and_remove(tmp_path):
    index = tmp_path / "index"
    rag("ingest", str(SEED_FILES["econotimes"]), str(SEED_FILES["skai"]), "--index", str(index), "-q")
    listed = json.loads(rag("articles", "--index", str(index), "--json").stdout)
    assert len(listed) == 2 and all(a["passages"] > 0 for a in listed)
    victim = listed[0]["article_id"]
    assert f"removed {victim}" in rag("remove", victim, "--index", str(index)).stdout
    assert victim not in rag("articles", "--index", str(index)).stdout


def test_expected_failures_are_one_line_errors(tmp_path):
    proc = rag("search", "anything", "--index", str(tmp_path / "none"), check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: No index at") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_index_from_environment(cli_index):
    env = {**os.environ, "RAG_INDEX": str(cli_index), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "cli.main", "articles"], cwd=ROOT, env=env, capture_output=True, text=True).stdout
    assert "5 articles" in out
