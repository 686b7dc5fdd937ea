"""Bad input gets a clear reason and loses nothing: every file and record on its own.

Real files and real `rag` processes: a traceback or a lost good file fails the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEEP = "[" * 1000 + "]" * 1000
BODY = ("The council of {town} approved a new footbridge over the river on Tuesday, the mayor said. "
        "It will cost 1.2 million euros and open in the spring, after eight months of building work.")


def rag(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> Path:
    """13 good articles among every kind of bad input a folder can hold."""
    d = tmp_path_factory.mktemp("messy")
    for i in range(13):
        (d / f"good{i:02d}.txt").write_text(BODY.format(town=f"Town{i} Falls"), encoding="utf-8")
    (d / "nested.json").write_text(DEEP)
    (d / "deepfield.json").write_text(json.dumps({"title": "Deep", "body": BODY.format(town="Deepville")})[:-1]
                                      + ', "extra": ' + DEEP + "}")
    lines = [json.dumps({"title": "Line one", "body": BODY.format(town="Lineton")}), DEEP,
             '{"title": "Broken", "body": oops}']
    (d / "lines.jsonl").write_text("\n".join(lines) + "\n")
    (d / "controls.txt").write_bytes(bytes([1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15]) * 60)
    (d / "report.pdf").write_bytes(b"%PDF-1.4 not read")
    (d / ".hidden.txt").write_text(BODY.format(town="Hidden"))
    os.symlink(d / "loop-b.txt", d / "loop-a.txt")
    os.symlink(d / "loop-a.txt", d / "loop-b.txt")
    os.symlink(d / "nowhere.txt", d / "dangling.txt")
    (d / "two\nlines.txt").write_text(BODY.format(town="Newline Falls"), encoding="utf-8")
    return d


def test_folder_ingest_keeps_every_good_file_and_names_every_bad_one(messy, tmp_path):
    proc = rag("ingest", str(messy), "--index", str(tmp_path / "ix"), "-q")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "DEBUG" not in proc.stderr + proc.stdout
    out = proc.stdout
    lines = out.strip().split("\n")
    # 13 good files, the good JSONL line and the file with a newline in its name.
    assert sum(line.startswith("added ") for line in lines) == 15, out
    assert "two\\nlines.txt" in out  # one report line per file, the newline escaped
    for name, reason in [
        ("nested.json", "nested too deeply"),
        ("deepfield.json", "nested too deeply"),
        ("lines.jsonl (line 2)", "nested too deeply"),
        ("lines.jsonl (line 3)", "invalid JSON at column 29: Expecting value"),
        ("controls.txt", "mostly control characters"),
    ]:
        assert any(line.startswith("rejected") and name in line and reason in line for line in lines), (name, out)
    for name, reason in [("report.pdf", "unsupported file type '.pdf'"), (".hidden.txt", "hidden file"),
                         ("loop-a.txt", "symbolic link loop"), ("dangling.txt", "link to nothing")]:
        assert any(line.startswith("skipped") and name in line and reason in line for line in lines), (name, out)
    summary = lines[-1]
    assert summary.startswith("15 added, 0 already present, 5 rejected; skipped in folders: ")
    assert "2 a symbolic link loop" in summary and "1 hidden file" in summary and "unsupported file type" in summary

    listed = json.loads(rag("articles", "--index", str(tmp_path / "ix"), "--json").stdout)
    assert len(listed) == 15


def test_paths_named_directly_say_what_is_wrong(messy, tmp_path):
    proc = rag("ingest", str(messy / "loop-a.txt"), str(messy / "dangling.txt"), str(messy / "missing.txt"),
               "--index", str(tmp_path / "ix"), "-q")
    assert proc.returncode == 1  # nothing could be ingested
    assert "loop-a.txt: a symbolic link loop" in proc.stdout
    assert "dangling.txt: a symbolic link to nothing" in proc.stdout
    assert "missing.txt: no such file or folder" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_an_index_path_that_cannot_be_an_index_is_one_clear_line(messy, tmp_path):
    a_file = messy / "good00.txt"
    for args in (("ingest", str(a_file)), ("search", "bridge"), ("articles",)):
        proc = rag(*args, "--index", str(a_file), "-q")
        assert proc.returncode == 2
        assert proc.stderr.strip() == f"error: {a_file} is a file, not an index folder. Pass another folder with --index (or RAG_INDEX)."
    proc = rag("ingest", str(a_file), "--index", "/proc/no-such-process/index", "-q")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: Cannot create the index folder /proc/no-such-process/index")
    proc = rag("search", "bridge", "--index", str(tmp_path / "none"), "-q")
    assert proc.returncode == 2 and f"No index at {tmp_path / 'none'}" in proc.stderr


def test_a_file_of_only_symbols_is_not_an_article(tmp_path):
    from rag.ingest.readers import load_file
    from rag.settings import Settings

    (tmp_path / "digits.txt").write_text("0123456789 +-*/ " * 20)
    (tmp_path / "ctrl.md").write_bytes(b"\x07\x08\x1b" * 200)
    for name in ("digits.txt", "ctrl.md"):
        res = load_file(tmp_path / name, Settings(index_dir=tmp_path / "ix"))
        assert not res.articles and res.problems[0].status == "rejected", name


def test_eval_keeps_the_good_questions_of_a_set_with_bad_records(seed_engine, tmp_path):
    qs = tmp_path / "qs.jsonl"
    qs.write_text("\n".join([
        json.dumps({"id": "ok", "question": "Where will Trump and Putin meet?", "answers": ["Budapest"]}),
        DEEP,
        '{"id": "bad", "question": "x", "answers": 5}',
        "{not json",
    ]) + "\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "eval", "--corpus", str(ROOT / "seeds"), "--questions", str(qs),
                           "--index", str(tmp_path / "ix"), "--out", str(out), "-q"],
                          cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert [r["id"] for r in results["configs"]["default"]["records"]] == ["ok"]
    rejected = results["meta"]["rejected_questions"]
    assert [r.split(": ")[1] for r in rejected] == ["line 2", "line 3", "line 4"]
    assert "nested too deeply" in rejected[0] and "`answers` must be a list" in rejected[1]
    assert "invalid JSON" in rejected[2]
