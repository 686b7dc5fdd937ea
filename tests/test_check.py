"""`rag check`: damage on real index files is found, reported on one line, never a traceback."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from rag.store.check import check_index
from rag.store.snapshot import open_index

from .conftest import SEEDS
from .test_cli import rag


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    index = tmp_path_factory.mktemp("check") / "index"
    rag("ingest", str(SEEDS), "--index", str(index), "-q")
    return index


@pytest.fixture
def index(built, tmp_path):
    copy = tmp_path / "index"
    shutil.copytree(built, copy)
    return copy


def manifest_path(index: Path) -> Path:
    return index / (index / "CURRENT").read_text().strip()


def gen(index: Path) -> Path:
    """The one segment of an index built by one ingest."""
    (seg,) = json.loads(manifest_path(index).read_text())["segments"]
    return index / seg["name"]


def flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x20
    path.write_bytes(bytes(data))


def test_a_sound_index_passes(index):
    proc = rag("check", "--index", str(index))
    assert proc.stdout.strip().endswith("OK, 5 articles, 36 passages") or "OK, 5 articles" in proc.stdout
    out = json.loads(rag("check", "--index", str(index), "--json").stdout)
    assert out["ok"] and out["articles"] == 5 and out["findings"] == []


@pytest.mark.parametrize("name", ["vectors.npy", "faiss.index", "unit_vectors.npy", "postings/docs.npy"])
def test_flipped_bytes_in_data_files_are_detected(index, name):
    path = gen(index) / name
    flip(path, path.stat().st_size // 2)
    open_index(index).close()  # loads silently: only the checksum sees it
    proc = rag("check", "--index", str(index), check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"damaged  {gen(index).name}/{name}: does not match its checksum" in proc.stdout
    assert "DAMAGED" in proc.stdout


def test_a_truncated_file_is_refused_at_open_with_one_line(index):
    path = gen(index) / "vectors.npy"
    path.write_bytes(path.read_bytes()[:-384 * 4])
    proc = rag("search", "Tomahawk", "--index", str(index), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "vectors.npy has" in proc.stderr and "rag check" in proc.stderr


def test_invalid_utf8_in_an_article_is_read_with_replacement_and_flagged(index):
    db = sqlite3.connect(gen(index) / "store.sqlite")
    row, aid, text = db.execute("SELECT row, article_id, text FROM articles WHERE text LIKE '%Tomahawk%' LIMIT 1").fetchone()
    raw = text.encode()
    at = raw.index(b"Tomahawk")
    db.execute("UPDATE articles SET text = CAST(? AS TEXT) WHERE row = ?", (raw[:at] + b"\xff" + raw[at + 1 :], row))
    db.commit()
    db.close()
    for args in (["search", "Tomahawk range", "-k", "20"], ["ask", "What is the range of Tomahawk missiles?"]):
        proc = rag(*args, "--index", str(index), "-q", check=False)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "\ufffdomahawk" in open_index(index).article(aid).text
    report = check_index(index)
    assert not report.ok
    assert any(f"article {aid}" in f.problem and "not UTF-8" in f.problem for f in report.damaged)


def test_a_damaged_article_store_gives_one_line_errors(index):
    path = gen(index) / "store.sqlite"
    data = bytearray(path.read_bytes())
    page = 4096
    for at in range(page * 2, len(data), page):  # every page but the schema's: garbage headers
        data[at : at + 16] = b"\xee" * 16
    path.write_bytes(bytes(data))
    for args in (["search", "Tomahawk"], ["ask", "Where did Trump and Putin agree to meet?"], ["articles"]):
        proc = rag(*args, "--index", str(index), "-q", check=False)
        assert "Traceback" not in proc.stderr, proc.stderr
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    proc = rag("check", "--index", str(index), check=False)
    assert proc.returncode == 1 and "store.sqlite" in proc.stdout and "Traceback" not in proc.stderr


def test_counts_that_disagree_are_reported(index):
    g = gen(index)
    manifest = json.loads(manifest_path(index).read_text())
    # A vectors file with one row missing, recorded as if it had been written so.
    vectors = np.load(g / "vectors.npy")
    np.save(g / "vectors.npy", vectors[:-1], allow_pickle=False)
    from rag.store.checksums import file_digest

    manifest["segments"][0]["files"]["vectors.npy"] = file_digest(g / "vectors.npy")
    manifest_path(index).write_text(json.dumps(manifest))
    report = check_index(index)
    assert not report.ok and any("disagree" in f.problem for f in report.damaged)


def test_postings_that_do_not_add_up_are_reported(index):
    g = gen(index)
    manifest = json.loads(manifest_path(index).read_text())
    tf = np.load(g / "postings" / "tf.npy")
    tf[0] += 1
    np.save(g / "postings" / "tf.npy", tf, allow_pickle=False)
    from rag.store.checksums import file_digest

    manifest["segments"][0]["files"]["postings/tf.npy"] = file_digest(g / "postings" / "tf.npy")
    manifest_path(index).write_text(json.dumps(manifest))
    report = check_index(index)
    assert [f.problem for f in report.damaged] == ["BM25: term counts do not add up to the passage lengths"]


def test_a_segment_without_checksums_gets_a_note(index):
    g = gen(index)
    manifest = json.loads(manifest_path(index).read_text())
    manifest["segments"][0]["files"] = {}
    manifest_path(index).write_text(json.dumps(manifest))
    report = check_index(index)
    assert report.ok and [f.kind for f in report.findings] == ["note"]
    flip(g / "faiss.index", (g / "faiss.index").stat().st_size // 2)
    # Without checksums the FAISS vectors are still compared with vectors.npy.
    assert not check_index(index).ok


def test_no_index_and_a_broken_pointer(tmp_path, index):
    assert not check_index(tmp_path / "none").ok
    (index / "CURRENT").write_text("gen-000042\n")
    proc = rag("check", "--index", str(index), check=False)
    assert proc.returncode == 1 and "CURRENT" in proc.stdout and "Traceback" not in proc.stderr
