"""`rag eval` end to end on the seed articles: the Python API, then the CLI as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, SEED_FILES, SEEDS

SEED_SET = ROOT / "eval" / "questions" / "seeds.jsonl"
# factoid, its follow-up, a factoid, a conflict, a multi-article and an unanswerable question
PICK = ("s02", "s03", "s12", "s21", "s09", "s66")
CONFIGS = ["default", "bm25"]
SUMMARY_KEYS = {"counts", "retrieval", "answer", "citation", "abstention", "latency_ms"}
RETRIEVAL_KEYS = {"hits@4", "hits@10", "mrr@10", "map@10", "evidence_recall@10"}
PLOTS = ("by_type.png", "by_config.png", "latency.png")


def rag(*args, cwd=ROOT, module="cli.main"):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def qfile(tmp_path_factory) -> Path:
    lines = {json.loads(line)["id"]: line for line in SEED_SET.read_text(encoding="utf-8").splitlines() if line.strip()}
    path = tmp_path_factory.mktemp("questions") / "six.jsonl"
    path.write_text("\n".join(lines[i] for i in PICK) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, qfile, embedder, seed_engine):
    """Both configurations on the six questions, over a copy of the session's seed index:
    an index rag eval did not build, adopted because it holds exactly the corpus."""
    import shutil

    from eval.run import run_eval

    tmp = tmp_path_factory.mktemp("eval")
    shutil.copytree(seed_engine.index_dir, tmp / "index")
    run = run_eval([SEEDS], qfile, configs=CONFIGS, index=tmp / "index", out=tmp / "out", show_progress=False, embedder=embedder)
    return tmp, run


def test_results_shape(first_run):
    tmp, run = first_run
    results = json.loads((tmp / "out" / "results.json").read_text(encoding="utf-8"))
    assert set(results) == {"configs", "meta"} and list(results["configs"]) == CONFIGS
    meta = results["meta"]
    assert meta["questions"]["n"] == 6 and meta["questions"]["follow_ups"] == 1
    assert meta["corpus"]["indexes"][0]["status"] == "adopted" and meta["corpus"]["indexes"][0]["articles"] == 5
    assert "llm_api_key" not in meta["settings"] and "attribution" not in meta  # not MultiHop-RAG data
    for name in CONFIGS:
        cfg = results["configs"][name]
        assert {"summary", "by_type", "records"} <= set(cfg)
        s = cfg["summary"]
        assert SUMMARY_KEYS <= set(s)
        assert set(s["retrieval"]) == RETRIEVAL_KEYS and all(0 <= v <= 1 for v in s["retrieval"].values())
        assert {"accuracy", "accuracy_answered", "token_f1", "short_em", "short_f1", "contains"} <= set(s["answer"])
        assert s["conflicts"] is None  # the seed set lists no `conflicting` values
        assert set(s["citation"]) == {"valid", "support"} and set(s["abstention"]) == {"precision", "recall"}
        for stage in ("retrieve", "answer", "total"):
            assert s["latency_ms"][stage]["p50"] > 0 and s["latency_ms"][stage]["p95"] >= s["latency_ms"][stage]["p50"]
        assert s["counts"] == {**s["counts"], "questions": 6, "unanswerable": 1, "retrieval_scored": 5, "errors": 0}
        assert set(cfg["by_type"]) == {"factoid", "followup", "conflict", "multi-article", "unanswerable"}
        assert {"n", "hits@10", "mrr@10", "accuracy"} <= set(cfg["by_type"]["factoid"])
        assert cfg["by_type"]["unanswerable"]["hits@10"] is None and cfg["by_type"]["unanswerable"]["accuracy"] is None

        records = {r["id"]: r for r in cfg["records"]}
        assert list(records) == list(PICK)
        for r in records.values():
            assert {"id", "question", "type", "answerable", "query", "retrieved", "answer", "citations", "abstained",
                    "answer_correct", "token_f1", "citation_support", "retrieval", "timings", "short_answer",
                    "conflicting", "short_em", "short_f1", "contains", "confidence", "evidence_features"} <= set(r)
            assert [p["rank"] for p in r["retrieved"]] == list(range(1, len(r["retrieved"]) + 1))
            # BM25 lists only passages sharing a word with the question.
            assert 0 < len(r["retrieved"]) <= 10
            # Whole passage texts, so another tool can re-score the run.
            assert any(len(p["text"]) > 300 for p in r["retrieved"])
            assert name == "bm25" or len(r["retrieved"]) == 10
            assert {"rewrite_ms", "retrieve_ms", "answer_ms", "total_ms"} <= set(r["timings"])
            for c in r["citations"]:
                assert c["valid"] is True  # the extractive answerer quotes verbatim
        # The follow-up was asked with the conversation: its standalone query carries the topic.
        assert records["s03"]["follows"] == "s02" and records["s03"]["query"] != records["s03"]["question"]
        assert records["s66"]["retrieval"] is None and records["s66"]["answer_correct"] is None
        assert set(records["s02"]["retrieval"]) == RETRIEVAL_KEYS
    # Same index for both configurations (retrieval mode does not change it).
    assert results["configs"]["default"]["index"] == results["configs"]["bm25"]["index"] == str(tmp / "index")


def test_report_and_plots(first_run):
    tmp, run = first_run
    out = tmp / "out"
    assert run.report_path == out / "report.md" and run.results_path == out / "results.json"
    report = run.report_path.read_text(encoding="utf-8")
    assert "## Comparison" in report and "`default`" in report and "`bm25`" in report
    assert "Worst 5 questions" in report and "ODC-BY" not in report
    for name in PLOTS:
        png = out / "plots" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"](plots/{name})" in report
    assert run.summary_table.splitlines()[0].split()[:3] == ["config", "H@4", "H@10"]


def test_index_is_reused_by_fingerprint(first_run, qfile, embedder):
    from eval.run import FINGERPRINT_FILE, run_eval
    from rag.store.layout import read_pointer

    tmp, _ = first_run
    index = tmp / "index"
    stored = json.loads((index / FINGERPRINT_FILE).read_text(encoding="utf-8"))
    assert stored["settings"]["chunk_max_tokens"] == 256 and len(stored["corpus"]) == 5 and stored["adopted"]
    generation = read_pointer(index)
    run = run_eval([SEEDS], qfile, configs=["bm25"], index=index, out=tmp / "out2", limit=2, show_progress=False, embedder=embedder)
    assert run.results["meta"]["corpus"]["indexes"][0]["status"] == "reused"
    assert read_pointer(index) == generation
    assert len(run.results["configs"]["bm25"]["records"]) == 2


def test_changed_corpus_rebuilds_and_foreign_index_is_left_alone(tmp_path, qfile, embedder, caplog):
    import shutil

    from eval.run import run_eval
    from rag.errors import RagError

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEED_FILES["skai"], corpus / "a.txt")
    index = tmp_path / "index"
    kw = dict(configs=["bm25"], index=index, limit=1, show_progress=False, embedder=embedder)
    assert run_eval([corpus], qfile, out=tmp_path / "o1", **kw).results["meta"]["corpus"]["indexes"][0]["status"] == "built"
    shutil.copy(SEED_FILES["econotimes"], corpus / "b.txt")
    with caplog.at_level("INFO", logger="rag.eval"):
        run = run_eval([corpus], qfile, out=tmp_path / "o2", **kw)
    assert run.results["meta"]["corpus"]["indexes"][0]["status"] == "rebuilt"
    assert run.results["meta"]["corpus"]["indexes"][0]["articles"] == 2
    assert any("rebuilding the index" in m and "corpus files added: b.txt" in m for m in caplog.messages)

    # A folder rag eval did not build is never deleted, whatever it holds.
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(RagError, match="left alone"):
        run_eval([corpus], qfile, out=tmp_path / "o3", **{**kw, "index": foreign})
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_cli_end_to_end(first_run, qfile, tmp_path):
    tmp, _ = first_run
    out = tmp_path / "cli-out"
    proc = rag("eval", "--corpus", str(SEEDS), "--questions", str(qfile), "--index", str(tmp / "index"),
               "--config", "default", "bm25", "--out", str(out), "--limit", "3", "-q")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[0] == "config" and lines[2].split()[0] == "default" and lines[3].split()[0] == "bm25"
    assert f"report:  {out / 'report.md'}" in proc.stdout
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["meta"]["corpus"]["indexes"][0]["status"] == "reused"
    assert results["meta"]["command"].startswith("rag eval --corpus")
    assert all((out / "plots" / p).exists() for p in PLOTS)


@pytest.mark.parametrize("module", ["cli.main", "eval"])
def test_malformed_question_file_is_a_one_line_error(tmp_path, module):
    """No usable question at all: one line naming the first bad record (a set with some
    good records keeps them: tests/test_bad_input.py)."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "question": "Where?", "answers": 5}\n{"question": \n', encoding="utf-8")
    args = ["--corpus", str(SEEDS), "--questions", str(bad), "--out", str(tmp_path / "out")]
    proc = rag(*(["eval", *args] if module == "cli.main" else args), module=module)
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("error: ") and "no questions (all 2 records rejected; first:" in err
    assert "bad.jsonl: line 1: `answers` must be a list" in err


def test_configs_only_override_real_settings():
    from eval.configs import CONFIGS, INDEX_FIELDS
    from rag.settings import Settings

    fields = set(Settings.model_fields)
    assert set(INDEX_FIELDS) <= fields
    for name, cfg in CONFIGS.items():
        assert cfg["description"] and set(cfg["overrides"]) <= fields, name
