"""Reading every supported format, and rejecting bad input with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.ingest.readers import article_id_for, decode_bytes, iter_input_files, load_file
from rag.settings import Settings

from .conftest import MULTIHOP, SEED_FILES

BODY = (
    "The city council approved the new bridge on Monday after a long debate. "
    "It will cost 4 million euros and open in 2026, officials said."
)


def _load(path: Path, **settings):
    return load_file(path, Settings().model_copy(update=settings))


def test_json_object_list_and_jsonl(tmp_path):
    rec = {"title": "Bridge approved", "body": BODY, "source": "Daily Planet", "url": "https://x.test/a",
           "published_at": "2024-03-05T10:00:00Z", "author": "Lois Lane"}
    (tmp_path / "one.json").write_text(json.dumps(rec))
    (tmp_path / "many.json").write_text(json.dumps([rec, {**rec, "title": "Other", "text": BODY + " More."}]))
    (tmp_path / "lines.jsonl").write_text(
        json.dumps({"headline": "H1", "content": BODY}) + "\n\n" + json.dumps({"title": "H2", "text": BODY}) + "\n"
    )
    one = _load(tmp_path / "one.json")
    a = one.articles[0]
    assert (a.title, a.source, a.url, a.author) == ("Bridge approved", "Daily Planet", "https://x.test/a", "Lois Lane")
    assert a.published_at.startswith("2024-03-05T10:00:00")
    assert a.text == BODY
    assert len(_load(tmp_path / "many.json").articles) == 2
    assert [x.title for x in _load(tmp_path / "lines.jsonl").articles] == ["H1", "H2"]


def test_jsonl_bad_line_is_reported_and_rest_kept(tmp_path):
    p = tmp_path / "mixed.jsonl"
    p.write_text(json.dumps({"title": "Good", "body": BODY}) + "\n{not json\n" + json.dumps({"title": "No body"}) + "\n")
    res = _load(p)
    assert [a.title for a in res.articles] == ["Good"]
    reasons = " | ".join(f"{r.path}: {r.reason}" for r in res.problems)
    assert "line 2" in reasons and "invalid JSON" in reasons
    assert "no article text" in reasons


def test_html_extraction_keeps_metadata(tmp_path):
    html = f"""<html><head><title>Bridge | Daily Planet</title>
    <meta property="og:site_name" content="Daily Planet"><meta property="og:url" content="https://dp.test/bridge">
    <meta property="article:published_time" content="2024-03-05"></head>
    <body><nav><a href="/">Home</a> <a href="/news">News</a> Menu</nav>
    <article><h1>Bridge approved after long debate</h1><p>{BODY}</p>
    <p>Critics said the plan was rushed and that residents had not been consulted properly before the vote.</p></article>
    <footer>Subscribe to our newsletter. Copyright 2024.</footer></body></html>"""
    (tmp_path / "a.html").write_text(html)
    a = _load(tmp_path / "a.html").articles[0]
    assert a.title == "Bridge approved after long debate"
    assert a.source == "Daily Planet"
    assert a.url == "https://dp.test/bridge"
    assert a.published_at.startswith("2024-03-05")
    assert "approved the new bridge" in a.text and "Critics said" in a.text
    assert "Subscribe" not in a.text and "Menu" not in a.text


def test_markdown_heading_is_title(tmp_path):
    (tmp_path / "a.md").write_text(f"# Bridge approved\n\n{BODY}\n")
    a = _load(tmp_path / "a.md").articles[0]
    assert a.title == "Bridge approved"
    assert a.text.startswith("The city council")


@pytest.mark.parametrize(
    "name,content,reason",
    [
        ("empty.txt", b"", "empty"),
        ("blank.txt", b"   \n\n  ", "empty"),
        ("binary.txt", bytes(range(256)) * 40, "binary"),
        ("broken.json", b'{"title": "x", "body": ', "invalid JSON"),
        ("notext.json", b'{"title": "only a title"}', "no article text"),
        ("tiny.txt", b"Menu\n\nSearch\n", "no article text"),
    ],
)
def test_bad_files_are_rejected_with_reason(tmp_path, name, content, reason):
    p = tmp_path / name
    p.write_bytes(content)
    res = _load(p)
    assert not res.articles
    assert reason in res.problems[0].reason


def test_oversized_file_rejected_by_configurable_limit(tmp_path):
    p = tmp_path / "big.txt"
    p.write_text(BODY * 200)
    res = _load(p, max_file_mb=0.01)
    assert "above the 0.01 MB limit" in res.problems[0].reason
    assert _load(p).articles  # default 20 MB limit accepts it


def test_non_utf8_falls_back_to_detected_encoding(tmp_path):
    text = "Le conseil municipal a approuvé le nouveau pont lundi après un long débat. " * 3
    p = tmp_path / "latin1.txt"
    p.write_bytes(text.encode("cp1252"))
    a = _load(p).articles[0]
    assert "approuvé" in a.text and "débat" in a.text
    assert decode_bytes("hello world".encode("utf-8-sig")) == "hello world"


def test_unsupported_and_missing_paths(tmp_path):
    (tmp_path / "x.pdf").write_bytes(b"%PDF-1.4")
    got = dict((p.name, r) for p, r in iter_input_files([tmp_path / "x.pdf", tmp_path / "nope.txt"]))
    assert got["x.pdf"].status == "rejected" and "unsupported file type" in got["x.pdf"].reason
    assert got["nope.txt"].reason == "no such file or folder"
    # In a folder, unsupported and hidden files are skipped, each with its reason.
    (tmp_path / ".hidden.txt").write_text(BODY)
    (tmp_path / "ok.txt").write_text(BODY)
    got = {p.name: r for p, r in iter_input_files([tmp_path])}
    assert got["ok.txt"] is None
    assert (got["x.pdf"].status, got["x.pdf"].reason) == ("skipped", "unsupported file type '.pdf'")
    assert (got[".hidden.txt"].status, got[".hidden.txt"].reason) == ("skipped", "hidden file")


def test_article_id_is_a_stable_content_hash():
    assert article_id_for("T", "a  b\nc") == article_id_for("T", "a b c")
    assert article_id_for("T", "a b c") != article_id_for("T", "a b d")
    assert len(article_id_for("T", "x")) == 16


def test_seed_titles_and_sources():
    s = Settings()
    moscow = load_file(SEED_FILES["moscow"], s).articles[0]
    assert moscow.title == "Trump and Zelensky to Meet as Kyiv Presses for Tomahawks"
    assert moscow.source == "The Moscow Times"
    econ = load_file(SEED_FILES["econotimes"], s).articles[0]
    assert econ.title == "Trump Pushes for Ukraine-Russia Ceasefire as Zelenskiy Seeks U.S. Weapons Support"
    assert econ.source == "EconoTimes"
    assert load_file(SEED_FILES["aljazeera"], s).articles[0].source == "Al Jazeera"
    assert load_file(SEED_FILES["skai"], s).articles[0].source == "Skai"


def test_multihop_corpus_loads_as_is():
    corpus = MULTIHOP / "corpus.json"
    if not corpus.exists():
        pytest.skip("shared benchmark not present")
    res = load_file(corpus, Settings())
    assert len(res.articles) == 609 and not res.problems
    assert all(a.source and a.published_at and a.url for a in res.articles)
