"""The HTTP API end to end: a real `rag serve` process (``python -m server``) on 127.0.0.1.

Driven by the real ``openai`` client (the OpenAI-compatible routes) and by httpx
(every REST route), over a copy of the session's seed index, with the real model.
One server runs open, another with API keys, a browser login and small upload
limits. The last test puts 20 concurrent clients and an upload on the open server.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import fields

import httpx
import openai
import pytest

from eval.api_load import (
    KINDS,
    alone,
    conversations,
    iter_sse,
    latency_table,
    print_table,
    run_load,
    unexplained,
    wait_ready,
)
from eval.server_process import free_port
from rag.answer.citations import cited_numbers
from rag.types import Answer
from tests.servers import ROOT, rag_serve

pytestmark = pytest.mark.slow

PROBLEM = "application/problem+json"
CITATION_KEYS = {"n", "title", "source", "url", "published_at", "quote", "article_id", "start", "end"}
FIRST = "Who will Trump meet in Budapest?"
FOLLOW_UP = "When will they meet?"
# The seed set's accepted answers to the follow-up (eval/questions/seeds.jsonl, s03).
FOLLOW_UP_ANSWERS = ("within two weeks", "within the next few weeks", "in the coming weeks")
SECRET = "The vault combination of the Zorbalian quartermaster is 7-7-3-1, noted privately on the server."
KEYS = ("key-one", "key-two")
LOGIN = ("admin", "door-pass")


@pytest.fixture(scope="module")
def api(tmp_path_factory, seed_engine):
    tmp = tmp_path_factory.mktemp("api")
    index = tmp / "index"
    shutil.copytree(seed_engine.index_dir, index)
    with rag_serve(tmp, index) as srv:
        wait_ready(srv["url"], srv["proc"])
        yield {**srv, "index": index}


@pytest.fixture(scope="module")
def http(api):
    with httpx.Client(base_url=api["url"].rstrip("/"), timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def oai(api):
    client = openai.OpenAI(base_url=api["url"] + "v1", api_key="not-needed", max_retries=0, timeout=120)
    yield client
    client.close()


@pytest.fixture(scope="module")
def locked(tmp_path_factory, seed_engine):
    """API keys, a browser login, and upload limits small enough to hit: 10 KB a file, 50 KB a request."""
    tmp = tmp_path_factory.mktemp("api-locked")
    index = tmp / "index"
    shutil.copytree(seed_engine.index_dir, index)
    env = {"RAG_API_KEYS": ",".join(KEYS), "RAG_MAX_FILE_MB": "0.01", "RAG_MAX_UPLOAD_MB": "0.05"}
    # An LLM server that is not there (a port nobody listens on): the `openai` answer mode
    # is offered, and fails the way an unreachable model does.
    llm = ("--llm-base-url", f"http://127.0.0.1:{free_port()}/v1", "--llm-model", "absent")
    with rag_serve(tmp, index, env=env, args=("--auth", ":".join(LOGIN), *llm)) as srv:
        wait_ready(srv["url"], srv["proc"], key=KEYS[0])
        yield {**srv, "base": srv["url"].rstrip("/")}


def article_text(http: httpx.Client, article_id: str) -> str:
    r = http.get(f"/api/v1/articles/{article_id}")
    assert r.status_code == 200, r.text
    return r.json()["text"]


def assert_cited_verbatim(http: httpx.Client, text: str, citations: list[dict]) -> None:
    """Every marker has a citation, every citation a marker, and each quote is the article's text[start:end]."""
    assert citations, text
    assert set(cited_numbers(text)) == {c["n"] for c in citations}
    for c in citations:
        assert CITATION_KEYS <= set(c), c
        assert article_text(http, c["article_id"])[c["start"]:c["end"]] == c["quote"]


def assert_problem(r: httpx.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"], body
    assert "Traceback" not in r.text and 'File "' not in r.text
    if code:
        assert body["code"] == code, body
    return body


# -- the OpenAI-compatible routes, through the real openai client -------------------------
def test_openai_client_gets_cited_answers_and_a_follow_up_resolves(http, oai):
    first = oai.chat.completions.create(model="article-rag", messages=[{"role": "user", "content": FIRST}])
    content = first.choices[0].message.content
    assert first.choices[0].finish_reason == "stop" and first.model == "article-rag"
    assert "Putin" in content
    assert_cited_verbatim(http, content, first.model_extra["citations"])

    chat = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": FIRST}, {"role": "assistant", "content": content},
            {"role": "user", "content": FOLLOW_UP}]
    follow = oai.chat.completions.create(model="article-rag", messages=chat)
    answer = follow.choices[0].message.content
    assert any(a in answer for a in FOLLOW_UP_ANSWERS), answer
    assert_cited_verbatim(http, answer, follow.model_extra["citations"])
    # The history is what made it resolvable: the same words alone are a different question.
    alone_ = oai.chat.completions.create(model="article-rag", messages=[{"role": "user", "content": FOLLOW_UP}])
    assert alone_.choices[0].message.content != answer


def test_openai_streaming_sends_the_same_answer_and_citations_on_the_last_chunk(oai):
    chat = [{"role": "user", "content": FIRST},
            {"role": "assistant", "content": "Vladimir Putin [1]"},
            {"role": "user", "content": FOLLOW_UP}]
    whole = oai.chat.completions.create(model="article-rag", messages=chat)
    chunks = list(oai.chat.completions.create(model="article-rag", messages=chat, stream=True))
    assert len(chunks) >= 3
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1 and chunks[0].object == "chat.completion.chunk"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == whole.choices[0].message.content
    with_citations = [i for i, c in enumerate(chunks) if "citations" in (c.model_extra or {})]
    assert with_citations == [len(chunks) - 1]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["citations"] == whole.model_extra["citations"]


def test_openai_models_and_errors(oai):
    assert [m.id for m in oai.models.list()] == ["article-rag"]
    assert oai.models.retrieve("article-rag").id == "article-rag"
    with pytest.raises(openai.NotFoundError, match="article-rag"):
        oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": FIRST}])
    with pytest.raises(openai.BadRequestError, match="empty"):
        oai.chat.completions.create(model="article-rag", messages=[{"role": "user", "content": "   "}])
    with pytest.raises(openai.BadRequestError, match="last message"):
        oai.chat.completions.create(model="article-rag", messages=[{"role": "user", "content": FIRST},
                                                                   {"role": "assistant", "content": "Putin"}])
    with pytest.raises(openai.UnprocessableEntityError):
        oai.chat.completions.create(model="article-rag", messages="Where will they meet?")
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("gpt-4o")


def test_chat_content_parts_and_the_extension_fields(http, oai):
    """Text content parts are read; `settings` and `filters` (extra_body) reach retrieval."""
    r = oai.chat.completions.create(
        model="article-rag", messages=[{"role": "user", "content": [{"type": "text", "text": FIRST}]}],
        extra_body={"filters": {"sources": ["bbc"]}, "settings": {"top_k": 3}})
    cites = r.model_extra["citations"]
    assert cites and all(c["source"] == "BBC" for c in cites)
    r = http.post("/v1/chat/completions", json={"model": "article-rag", "settings": {"answer_mode": "openai"},
                                                "messages": [{"role": "user", "content": FIRST}]})
    body = assert_problem(r, 400, "mode_unavailable")
    assert body["error"]["message"] == body["detail"]  # OpenAI's shape, for its clients


# -- REST -----------------------------------------------------------------------------------
def test_ask_returns_the_typed_answer(http):
    r = http.post("/api/v1/ask", json={"question": FIRST})
    assert r.status_code == 200, r.text
    d = r.json()
    assert set(d) == {f.name for f in fields(Answer)}
    assert d["question"] == FIRST and not d["abstained"] and d["answerer"] == "extractive"
    assert_cited_verbatim(http, d["answer"], d["citations"])
    assert d["related"] and d["timings"]["total_ms"] > 0


def test_ask_follow_up_resolves_against_the_history_in_either_shape(http):
    first = http.post("/api/v1/ask", json={"question": FIRST}).json()
    as_turns = http.post("/api/v1/ask", json={"question": FOLLOW_UP, "history": [
        {"question": FIRST, "answer": first["answer"]}]}).json()
    as_messages = http.post("/api/v1/ask", json={"question": FOLLOW_UP, "history": [
        {"role": "user", "content": FIRST}, {"role": "assistant", "content": first["answer"]}]}).json()
    assert as_turns["query"] != FOLLOW_UP and "Budapest" in as_turns["query"]
    assert any(a in as_turns["answer"] for a in FOLLOW_UP_ANSWERS), as_turns["answer"]
    assert as_messages["query"] == as_turns["query"] and as_messages["answer"] == as_turns["answer"]


def test_ask_streams_the_chain_events(http):
    body = {"question": FOLLOW_UP, "history": [{"question": FIRST, "answer": "Putin [1]"}]}
    plain = http.post("/api/v1/ask", json=body).json()
    with http.stream("POST", "/api/v1/ask", json={**body, "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [(name, json.loads(data)) for name, data in iter_sse(r.iter_lines())]
    names = [n for n, _ in events]
    assert names[0] == "query" and names[1] == "passages" and names[-1] == "done"
    assert set(names) == {"query", "passages", "sources", "text", "done"} and names.count("done") == 1
    done = events[-1][1]
    assert events[0][1]["query"] == done["query"] == plain["query"]
    assert "".join(d["text"] for n, d in events if n == "text") == done["answer"] == plain["answer"]
    assert [d for n, d in events if n == "sources"][0]["citations"] == done["citations"] == plain["citations"]
    assert len(events[1][1]["passages"]) == len(done["related"])


def test_ask_settings_and_filters_reach_retrieval(http):
    d = http.post("/api/v1/ask", json={"question": FIRST, "settings": {"top_k": 3, "retrieval_mode": "bm25"}}).json()
    assert 0 < len(d["related"]) <= 3
    d = http.post("/api/v1/ask", json={"question": FIRST, "filters": {"sources": ["BBC"]}}).json()
    assert d["related"] and {p["source"] for p in d["related"]} == {"BBC"}
    assert all(c["source"] == "BBC" for c in d["citations"])
    ids = [a["article_id"] for a in http.get("/api/v1/articles").json()["articles"]][:1]
    d = http.post("/api/v1/ask", json={"question": FIRST, "filters": {"article_ids": ids}}).json()
    assert {p["article_id"] for p in d["related"]} == set(ids)
    assert_problem(http.post("/api/v1/ask", json={"question": FIRST, "filters": {"since": "2025-10-20",
                                                                                  "until": "2025-10-01"}}), 400)
    assert_problem(http.post("/api/v1/ask", json={"question": FIRST, "settings": {"answer_mode": "llamacpp"}}),
                   400, "mode_unavailable")
    assert_problem(http.post("/api/v1/ask", json={"question": FIRST, "settings": {"temperature": 1}}), 422)


def test_search_returns_ranked_passages_with_metadata(http):
    r = http.get("/api/v1/search", params={"q": "range of a Tomahawk missile", "k": 3})
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert hits[0]["score"] >= hits[-1]["score"]
    for h in hits:
        assert article_text(http, h["article_id"])[h["start"]:h["end"]] == h["text"]
        assert {"title", "source", "url", "published_at", "author", "passage_id"} <= set(h)
    bbc = http.get("/api/v1/search", params={"q": "Tomahawk", "source": ["bbc"], "mode": "bm25"}).json()["hits"]
    assert bbc and {h["source"] for h in bbc} == {"BBC"}
    assert_problem(http.get("/api/v1/search", params={"q": " "}), 400, "empty_question")
    assert_problem(http.get("/api/v1/search"), 422)
    assert_problem(http.get("/api/v1/search", params={"q": "x", "k": 0}), 422)
    assert_problem(http.get("/api/v1/search", params={"q": "x", "since": "last week"}), 422)
    assert_problem(http.get("/api/v1/search", params={"q": "x", "mode": "magic"}), 422)


def test_articles_list_and_read(http, seed_engine):
    listed = http.get("/api/v1/articles").json()
    ids = {a["article_id"] for a in listed["articles"]}
    seeds = {a.article_id for a, _ in seed_engine.articles()}
    assert seeds <= ids and listed["count"] == len(listed["articles"])
    some = next(a for a in listed["articles"] if a["article_id"] in seeds)
    got = http.get(f"/api/v1/articles/{some['article_id']}").json()
    assert got["title"] == some["title"] and got["passages"] == some["passages"] > 0
    assert got["text"] == seed_engine.snapshot.article(some["article_id"]).text
    assert_problem(http.get("/api/v1/articles/0000000000000000"), 404, "unknown_article")


def test_upload_reports_each_file_then_delete(http, tmp_path):
    good = ("Quillbrook Falls opened a footbridge over the river on Tuesday, the town council said. "
            "The bridge cost 1.2 million euros and took eight months to build.\n")
    jsonl = (json.dumps({"title": "Riverside library opens", "source": "Riverside Gazette",
                         "body": "Riverside opened a new public library on Monday, the town said. It holds "
                                 "40,000 books and was paid for by a local fund."}) + "\n{broken\n")
    files = [("files", ("../../etc/quillbrook.txt", good.encode(), "text/plain")),
             ("files", ("news.jsonl", jsonl.encode(), "application/json")),
             ("files", ("deep.json", b"[" * 5000 + b"]" * 5000, "application/json")),
             ("files", ("empty.txt", b"", "text/plain")),
             ("files", ("tool.exe", b"MZ\x90\x00", "application/octet-stream"))]
    r = http.post("/api/v1/articles", files=files)
    assert r.status_code == 200, r.text
    report = r.json()
    by_file = {x["file"]: x for x in report["results"]}
    assert by_file["quillbrook.txt"]["status"] == "added"  # the name only: no folders
    assert by_file["news.jsonl (line 1)"]["status"] == "added"
    assert by_file["news.jsonl (line 2)"]["status"] == "rejected" and "JSON" in by_file["news.jsonl (line 2)"]["reason"]
    assert "nested too deeply" in by_file["deep.json"]["reason"]
    assert by_file["empty.txt"]["status"] == "rejected" and "empty" in by_file["empty.txt"]["reason"]
    assert by_file["tool.exe"]["status"] == "rejected" and "unsupported" in by_file["tool.exe"]["reason"]
    assert (report["added"], report["rejected"]) == (2, 4) and "2 added" in report["summary"]
    assert not any("/tmp" in json.dumps(x) for x in report["results"])

    new_id = by_file["quillbrook.txt"]["article_id"]
    hits = http.get("/api/v1/search", params={"q": "Quillbrook footbridge", "k": 1}).json()["hits"]
    assert hits[0]["article_id"] == new_id
    assert http.get(f"/api/v1/articles/{new_id}").json()["text"].startswith("Quillbrook Falls")
    again = http.post("/api/v1/articles", files=files[:1]).json()
    assert again["results"][0]["status"] == "duplicate"

    removed = http.delete(f"/api/v1/articles/{new_id}")
    assert removed.status_code == 200 and removed.json()["removed"]["article_id"] == new_id
    assert_problem(http.get(f"/api/v1/articles/{new_id}"), 404)
    assert_problem(http.delete(f"/api/v1/articles/{new_id}"), 404, "unknown_article")
    hits = http.get("/api/v1/search", params={"q": "Quillbrook footbridge", "k": 3}).json()["hits"]
    assert new_id not in {h["article_id"] for h in hits}
    http.delete(f"/api/v1/articles/{by_file['news.jsonl (line 1)']['article_id']}")


def test_upload_reads_only_the_bytes_sent_never_a_server_path(http, tmp_path):
    """Issue 22's rule on the API: a client names no server file, however it tries."""
    secret = tmp_path / "notes.txt"
    secret.write_text(SECRET + "\n", encoding="utf-8")
    before = http.get("/api/v1/articles").json()["count"]
    # A JSON body or a plain form field naming the path: not files at all.
    assert_problem(http.post("/api/v1/articles", json={"files": [str(secret)]}), 422)
    assert_problem(http.post("/api/v1/articles", data={"files": str(secret)}), 422)
    assert_problem(http.post("/api/v1/articles", data={"path": str(secret)}), 422)
    # A file whose *name* is the server path: its own bytes are read, under its base name.
    decoy = ("Harbourview council approved a new ferry timetable on Wednesday, officials said. "
             "Boats will run every twenty minutes from May.\n")
    r = http.post("/api/v1/articles", files=[("files", (str(secret), decoy.encode(), "text/plain"))])
    result = r.json()["results"][0]
    assert result["status"] == "added" and result["file"] == "notes.txt"
    assert http.get(f"/api/v1/articles/{result['article_id']}").json()["text"].startswith("Harbourview")
    hits = http.get("/api/v1/search", params={"q": "Zorbalian quartermaster vault combination"}).json()["hits"]
    assert not any("Zorbalian" in h["text"] for h in hits)
    assert http.get("/api/v1/articles").json()["count"] == before + 1
    http.delete(f"/api/v1/articles/{result['article_id']}")


def test_bad_input_gets_a_problem_object_never_a_traceback(http):
    ask = "/api/v1/ask"
    assert_problem(http.post(ask, json={"question": ""}), 400, "empty_question")
    assert_problem(http.post(ask, json={"question": " \n\t "}), 400, "empty_question")
    body = assert_problem(http.post(ask, json={"question": 42}), 422, "invalid_request")
    assert body["errors"][0]["loc"] == ["body", "question"]
    assert_problem(http.post(ask, json={}), 422)
    assert_problem(http.post(ask, json={"question": "x", "history": "nope"}), 422)
    assert_problem(http.post(ask, json={"question": "x", "history": [{"role": "wizard", "content": "hi"}]}), 422)
    assert_problem(http.post(ask, json={"question": "x", "settings": {"top_k": "many"}}), 422)
    assert_problem(http.post(ask, json={"question": "x" * 5000}), 422)
    assert_problem(http.post(ask, content=b'{"question": "unterminated', headers={"content-type": "application/json"}),
                   400, "invalid_json")
    assert_problem(http.post(ask, content=b"\xff\xfe\x00garbage", headers={"content-type": "application/json"}), 400)
    deep = b'{"question": "x", "history": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    assert_problem(http.post(ask, content=deep, headers={"content-type": "application/json"}), 400)
    assert_problem(http.post(ask, json={"question": "x" * 3000, "pad": "y" * (5 * 1024 * 1024)}), 413, "too_large")
    assert_problem(http.put(ask, json={"question": "x"}), 405)
    assert_problem(http.get("/api/v1/nothing-here"), 404, "not_found")
    assert_problem(http.get("/v1/engines"), 404)
    assert_problem(http.post("/api/v1/articles"), 422)


def test_health_stats_docs_and_the_browser_app_on_the_same_port(http):
    assert http.get("/api/v1/health").json() == {"status": "ok", "ready": True, "message": "Ready."}
    stats = http.get("/api/v1/stats").json()
    assert stats["articles"] >= 5 and stats["passages"] > stats["articles"]
    assert sum(stats["sources"].values()) == stats["articles"] and "BBC" in stats["sources"]
    assert stats["embedding_model"] and stats["generation"] >= 1
    spec = http.get("/openapi.json").json()
    assert {"/api/v1/ask", "/api/v1/search", "/api/v1/articles", "/api/v1/articles/{article_id}", "/api/v1/health",
            "/api/v1/stats", "/v1/chat/completions", "/v1/models"} <= set(spec["paths"])
    assert "swagger" in http.get("/docs").text.lower()
    page = http.get("/")
    assert page.status_code == 200 and "gradio" in page.text.lower()
    assert http.get("/gradio_api/info").status_code == 200  # the app's own routes still answer


# -- auth -------------------------------------------------------------------------------------
def test_auth_off_needs_no_key(http):
    assert http.get("/api/v1/health").status_code == 200
    assert http.get("/api/v1/health", headers={"Authorization": "Bearer whatever"}).status_code == 200


def test_keys_guard_every_api_route(locked):
    base = locked["base"]
    calls = [("GET", "/api/v1/health", {}), ("GET", "/api/v1/stats", {}), ("GET", "/api/v1/articles", {}),
             ("GET", "/api/v1/search", {"params": {"q": "Tomahawk"}}),
             ("POST", "/api/v1/ask", {"json": {"question": FIRST}}),
             ("GET", "/api/v1/feeds", {}),
             ("GET", "/v1/models", {}), ("GET", "/v1/models/article-rag", {}),
             ("POST", "/v1/chat/completions", {"json": {"model": "article-rag",
                                                        "messages": [{"role": "user", "content": FIRST}]}})]
    with httpx.Client(base_url=base, timeout=120) as c:
        for method, path, kw in calls:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEYS[0]}"},
                            {"Authorization": KEYS[0]}):
                r = c.request(method, path, headers=headers, **kw)
                assert_problem(r, 401, "unauthorized")
                assert r.headers["www-authenticate"] == "Bearer"
            for key in (*KEYS, LOGIN[1]):  # either key, or the browser login's password
                r = c.request(method, path, headers={"Authorization": f"Bearer {key}"}, **kw)
                assert r.status_code == 200, (path, r.text)
        # Unknown routes and uploads too: nothing is revealed or read before the key.
        assert_problem(c.get("/api/v1/secret-route"), 401)
        assert_problem(c.post("/api/v1/articles", files=[("files", ("a.txt", b"text", "text/plain"))]), 401)
        assert_problem(c.delete("/api/v1/articles/whatever"), 401)
        assert_problem(c.post("/api/v1/articles", json={"urls": ["http://example.invalid/a"]}), 401)
        assert_problem(c.post("/api/v1/feeds", json={"url": "http://example.invalid/rss"}), 401)
        assert_problem(c.post("/api/v1/feeds/refresh"), 401)
        assert_problem(c.delete("/api/v1/feeds", params={"url": "http://example.invalid/rss"}), 401)
        assert c.get("/docs").status_code == 200  # the reference itself is public


def test_keys_with_the_openai_client_and_the_browser_keeps_its_own_login(locked):
    good = openai.OpenAI(base_url=locked["base"] + "/v1", api_key=KEYS[1], max_retries=0, timeout=120)
    bad = openai.OpenAI(base_url=locked["base"] + "/v1", api_key="nope", max_retries=0, timeout=120)
    r = good.chat.completions.create(model="article-rag", messages=[{"role": "user", "content": FIRST}])
    assert r.model_extra["citations"]
    with pytest.raises(openai.AuthenticationError, match="Bearer"):
        bad.chat.completions.create(model="article-rag", messages=[{"role": "user", "content": FIRST}])
    with httpx.Client(base_url=locked["base"], timeout=60) as c:
        # An API key is not a browser login, and the browser's login is not lifted by one.
        assert c.get("/gradio_api/login_check", headers={"Authorization": f"Bearer {KEYS[0]}"}).status_code == 401
        assert c.post("/login", data={"username": LOGIN[0], "password": LOGIN[1]}).status_code == 200
        assert c.get("/gradio_api/login_check").status_code == 200


def test_upload_limits_refuse_the_request_and_add_nothing(locked):
    with httpx.Client(base_url=locked["base"], timeout=120, headers={"Authorization": f"Bearer {KEYS[0]}"}) as c:
        before = c.get("/api/v1/articles").json()["count"]
        small = b"Tidewater harbour reopened its pier on Friday, the port authority said.\n"
        big = small * 200  # ~14 KB: over the 10 KB per-file limit
        body = assert_problem(c.post("/api/v1/articles", files=[("files", ("ok.txt", small, "text/plain")),
                                                                ("files", ("big.txt", big, "text/plain"))]),
                              413, "file_too_large")
        assert "big.txt" in body["detail"] and "RAG_MAX_FILE_MB" in body["detail"]
        many = [("files", (f"part{i}.txt", small * 120, "text/plain")) for i in range(7)]  # 7 x 8.5 KB > 50 KB
        body = assert_problem(c.post("/api/v1/articles", files=many), 413, "too_large")
        assert "RAG_MAX_UPLOAD_MB" in body["detail"]
        assert c.get("/api/v1/articles").json()["count"] == before


def test_an_unreachable_model_is_a_502_or_an_error_event_never_a_hang(locked):
    auth = {"Authorization": f"Bearer {KEYS[0]}"}
    body = {"question": FIRST, "settings": {"answer_mode": "openai"}}
    with httpx.Client(base_url=locked["base"], timeout=120, headers=auth) as c:
        problem = assert_problem(c.post("/api/v1/ask", json=body), 502, "model_error")
        assert "LLM server" in problem["detail"]
        with c.stream("POST", "/api/v1/ask", json={**body, "stream": True}) as r:
            assert r.status_code == 200  # the stream had begun: the error comes as its last event
            events = list(iter_sse(r.iter_lines()))
        assert [n for n, _ in events][-1] == "error"
        assert json.loads(events[-1][1])["code"] == "model_error"
    client = openai.OpenAI(base_url=locked["base"] + "/v1", api_key=KEYS[0], max_retries=0, timeout=120)
    messages = [{"role": "user", "content": FIRST}]
    with pytest.raises(openai.APIStatusError, match="LLM server") as raised:
        client.chat.completions.create(model="article-rag", messages=messages,
                                       extra_body={"settings": {"answer_mode": "openai"}})
    assert raised.value.status_code == 502
    with pytest.raises(openai.APIError, match="LLM server"):
        for _ in client.chat.completions.create(model="article-rag", messages=messages, stream=True,
                                                extra_body={"settings": {"answer_mode": "openai"}}):
            pass


# -- the process --------------------------------------------------------------------------------
def test_while_the_index_is_built_the_api_says_so(tmp_path):
    """The first start builds the seed index; another writer holds the lock, so it waits:
    every route that reads the index answers 503 `starting`, with Retry-After."""
    index = tmp_path / "index"
    index.mkdir()
    with open(index / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with rag_serve(tmp_path, index) as srv, httpx.Client(base_url=srv["url"].rstrip("/"), timeout=60) as c:
            health = c.get("/api/v1/health")
            assert health.status_code == 503 and health.json()["status"] == "starting"
            for r in (c.post("/api/v1/ask", json={"question": FIRST}), c.get("/api/v1/search", params={"q": "x"}),
                      c.get("/api/v1/articles"), c.get("/api/v1/stats"),
                      c.post("/v1/chat/completions", json={"model": "article-rag",
                                                           "messages": [{"role": "user", "content": FIRST}]})):
                assert_problem(r, 503, "starting")
                assert r.headers["retry-after"].isdigit()
            assert c.get("/").status_code == 200  # the browser app shows its own progress


def test_a_damaged_index_is_a_503_that_says_what_to_do(tmp_path):
    index = tmp_path / "index"
    index.mkdir()
    (index / "CURRENT").write_text("gen-000042\n", encoding="utf-8")
    with rag_serve(tmp_path, index) as srv, httpx.Client(base_url=srv["url"].rstrip("/"), timeout=60) as c:
        deadline = time.monotonic() + 120
        while (health := c.get("/api/v1/health")).json()["status"] == "starting" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert health.status_code == 503 and health.json()["status"] == "error"
        assert "gen-000042" in health.json()["message"]
        body = assert_problem(c.post("/api/v1/ask", json={"question": FIRST}), 503, "index_unavailable")
        assert "delete" in body["detail"].lower()
        assert_problem(c.get("/api/v1/articles"), 503, "index_unavailable")



def test_serve_fails_in_one_line_on_a_taken_port_and_warns_when_exposed(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RAG_AUTH", "RAG_API_KEYS")}
    env.update({"HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "server", "--port", str(port), "--index", str(tmp_path / "i")],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and f"error: cannot serve on 127.0.0.1:{port}" in r.stderr
    assert "Traceback" not in r.stderr
    # An address beyond loopback (192.0.2.1 is for documentation: never this machine's, so
    # nothing is exposed): both faces warn, then the bind fails.
    r = subprocess.run([sys.executable, "-m", "server", "--host", "192.0.2.1", "--port", str(free_port()),
                        "--index", str(tmp_path / "i")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "without --auth" in r.stderr and "without API keys" in r.stderr
    r = subprocess.run([sys.executable, "-m", "server", "--host", "192.0.2.1", "--port", str(free_port()),
                        "--auth", "a:b", "--index", str(tmp_path / "i")], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "without" not in r.stderr  # the login's password is an API key too


def test_an_empty_server_fills_through_the_api(tmp_path):
    """No index and no seed articles: the API says so (503), and the first upload makes one."""
    (tmp_path / "no-seeds").mkdir()
    with rag_serve(tmp_path, tmp_path / "index", env={"RAG_SEEDS_DIR": str(tmp_path / "no-seeds")}) as srv, \
            httpx.Client(base_url=srv["url"].rstrip("/"), timeout=120) as c:
        deadline = time.monotonic() + 120
        while (health := c.get("/api/v1/health")).json()["status"] == "starting" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert health.json()["status"] == "error" and "No index" in health.json()["message"]
        assert_problem(c.get("/api/v1/articles"), 503, "index_unavailable")
        story = b"Tidewater harbour reopened its pier on Friday, the port authority said. Repairs took a year.\n"
        added = c.post("/api/v1/articles", files=[("files", ("pier.txt", story, "text/plain"))]).json()
        assert added["added"] == 1
        assert c.get("/api/v1/health").json()["status"] == "ok"
        assert c.get("/api/v1/articles").json()["count"] == 1
        hits = c.get("/api/v1/search", params={"q": "Tidewater pier"}).json()["hits"]
        assert hits[0]["article_id"] == added["results"][0]["article_id"]


# -- concurrency (last: its upload changes the open server's index) ---------------------------------
def test_twenty_clients_each_keep_their_own_conversation_while_an_upload_happens(api, http):
    """20 clients x 5 questions at once over the four ways in, plus one upload: 0 errors, and
    every answer is the one its conversation gets when run alone."""
    url = api["url"]
    convs = conversations(20, 5)
    kinds = [KINDS[i % len(KINDS)] for i in range(20)]  # as run_load assigns them
    expected = alone(url, None, kinds, convs)
    run = run_load(url, clients=20, per_client=5, deadline_s=600)

    assert run.errors == []
    assert run.upload is not None and run.upload["added"] == 1
    assert len(run.samples) == 20 * 5 * 2 + 1
    for qs, replies in zip(run.conversations, run.replies):
        assert [r.question for r in replies] == qs
    # An answer may differ from the lone run only where the upload, committed mid-run,
    # changed what it retrieved: then it is the lone run's answer on the index with the upload.
    assert unexplained(run, expected, url) == []
    print()
    print_table(latency_table(run.samples))
