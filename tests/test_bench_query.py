"""`python -m eval.bench query` on the real seed index, with the seed question set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_query_bench_times_a_question_set(seed_engine, tmp_path, capsys):
    from eval.bench import cli as bench

    out = tmp_path / "query.json"
    code = bench.main([
        "query", "--index", str(seed_engine.index_dir), "--questions", str(ROOT / "eval/questions/seeds.jsonl"),
        "--queries", "4", "--cold-runs", "1", "--json", str(out),
    ])
    assert code == 0
    got = json.loads(out.read_text())
    assert got["n_queries"] == 4 and got["questions"] == "seeds.jsonl" and got["mean_question_tokens"] > 3
    for stage in ("embed_query_ms", "search_ms", "ask_ms"):
        row = got[stage]
        assert 0 < row["min"] <= row["p50"] <= row["p95"] <= row["max"], (stage, row)
    assert got["cold_start_s"]["median"] > 0
    assert "seeds.jsonl questions" in capsys.readouterr().out


def test_query_bench_rejects_a_malformed_question_set(seed_engine, tmp_path):
    from eval.bench import cli as bench

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "q1", "question": "Fine?", "answers": ["x"]}\n{not json\n')
    with pytest.raises(SystemExit, match="line 2"):
        bench.main(["query", "--index", str(seed_engine.index_dir), "--questions", str(bad), "--cold-runs", "0"])
