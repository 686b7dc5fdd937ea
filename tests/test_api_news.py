"""News from the web through the HTTP API and `rag serve`'s background feed refresh.

A real `rag serve` process (``python -m server``) over a copy of the seed index, and
real news sites on 127.0.0.1 (tests/news_site.py). Before the server starts, the
index is subscribed to two feeds: one that works, and one whose server then fails
(500). With a 1-second tick the server refreshes both in the background: the good
feed's articles arrive, the failing feed's reason is recorded and logged, and the
service keeps running. Then the REST routes: URLs in POST /articles (JSON and form),
and list / add / refresh / remove feeds, with their errors as problem objects.
Loopback addresses are allowed with RAG_FETCH_ALLOW_PRIVATE=true, as the engine
refuses them otherwise.
"""

from __future__ import annotations

import logging
import shutil
import signal
import time

import httpx
import pytest

from eval.api_load import wait_ready
from rag.engine import Engine
from rag.types import FeedStatus
from server.feeds import BackgroundFeeds
from tests.servers import rag_serve

from .conftest import make_settings
from .news_site import STORIES, Site, article_page, news_desk, rss

pytestmark = pytest.mark.slow

PROBLEM = "application/problem+json"
APPEAL = ("Fishing cooperatives filed an appeal on Thursday against the approval of the Brisa Norte offshore wind "
          "farm, saying the environmental study ignored spawning grounds for hake and sardine. The regional court is "
          "expected to rule on whether construction may start before the appeal is heard within three months.")
NEWS_ENV = {"RAG_FETCH_ALLOW_PRIVATE": "true", "RAG_FETCH_HOST_DELAY_S": "0", "RAG_FEED_TICK_S": "1"}


@pytest.fixture(scope="module")
def site():
    a = news_desk(Site("Coastal Ledger").start())
    A = a.url
    a.page("/news/windfarm", article_page("Coastal Ledger", "windfarm", url=f"{A}/news/windfarm", date_iso="2025-10-13"))
    a.page("/news/ferry", article_page("Coastal Ledger", "ferry", url=f"{A}/news/ferry", date_iso=None, author=None))
    # One more feed per story: (path, title, story, guid, date).
    for path, title, story, guid, date in (
        ("energy", "Energy", "windfarm", "cl-1002", "Mon, 13 Oct 2025 08:00:00 GMT"),
        ("ferry", "Ferries", "ferry", "cl-1009", "Thu, 16 Oct 2025 07:00:00 GMT"),
        ("flaky", "Flaky", "harbour", "cl-1001", "Tue, 14 Oct 2025 09:30:00 GMT"),
    ):
        a.page(f"/feeds/{path}.xml", rss(f"Coastal Ledger - {title}", [
            {"title": STORIES[story][0], "link": f"{A}/news/{story}", "guid": guid, "pubDate": date}]),
            content_type="application/rss+xml")
    yield a
    a.stop()


@pytest.fixture(scope="module")
def api(tmp_path_factory, seed_engine, embedder, site):
    tmp = tmp_path_factory.mktemp("api-news")
    index = tmp / "index"
    shutil.copytree(seed_engine.index_dir, index)
    # Subscribed before the server starts: both are due at once.
    engine = Engine(make_settings(index, fetch_allow_private=True), embedder=embedder)
    engine.add_feed(f"{site.url}/feeds/rail.xml", "1h")
    engine.add_feed(f"{site.url}/feeds/flaky.xml", "1h")
    site.page("/feeds/flaky.xml", "", status=500)  # ... and then its server fails
    with rag_serve(tmp, index, env=NEWS_ENV) as srv:
        wait_ready(srv["url"], srv["proc"])
        with httpx.Client(base_url=srv["url"].rstrip("/"), timeout=120) as client:
            yield {**srv, "http": client}


def feeds_by_url(http: httpx.Client) -> dict[str, dict]:
    r = http.get("/api/v1/feeds")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == len(body["feeds"])
    return {f["url"]: f for f in body["feeds"]}


def articles_by_url(http: httpx.Client) -> dict[str, dict]:
    r = http.get("/api/v1/articles")
    assert r.status_code == 200, r.text
    return {a["url"]: a for a in r.json()["articles"] if a["url"]}


def assert_problem(r: httpx.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body = r.json()
    assert body["detail"] and "Traceback" not in r.text
    if code:
        assert body["code"] == code, body
    return body


def test_serve_refreshes_due_feeds_in_the_background_and_one_failure_stops_nothing(api, site):
    http = api["http"]
    good, flaky = f"{site.url}/feeds/rail.xml", f"{site.url}/feeds/flaky.xml"
    deadline = time.monotonic() + 120
    while True:
        feeds = feeds_by_url(http)
        if feeds[good]["last_refresh"] and feeds[flaky]["last_error"]:
            break
        assert time.monotonic() < deadline, feeds
        time.sleep(0.5)
    assert feeds[good]["last_new_items"] == 1 and feeds[good]["last_error"] is None, feeds[good]
    assert "500" in feeds[flaky]["last_error"], feeds[flaky]
    assert feeds[good]["next_due"] > feeds[good]["last_refresh"]  # refreshed once, due again in an hour
    rail = articles_by_url(http)[f"{site.url}/news/rail"]
    assert rail["title"] == STORIES["rail"][0]
    assert rail["date_source"] == "feed" and rail["published_at"].startswith("2025-10-15"), rail
    assert rail["fetched_at"] and rail["canonical_url"] == f"{site.url}/news/rail"
    assert rail["also_published_by"] == []
    log = api["log"].read_text()
    assert "feed refresh: on" in log
    assert f"feed {flaky} failed" in log and "500" in log
    assert api["proc"].poll() is None  # still serving
    assert http.get("/api/v1/health").json()["status"] == "ok"


def test_articles_by_url_json_and_form_one_result_each(api, site):
    http = api["http"]
    harbour, missing = f"{site.url}/news/harbour", f"{site.url}/news/missing"
    r = http.post("/api/v1/articles", json={"urls": [harbour, missing, "file:///etc/passwd"]})
    assert r.status_code == 200, r.text
    body = r.json()
    by_url = {x["url"]: x for x in body["results"]}
    assert set(by_url) == {harbour, missing, "file:///etc/passwd"}
    assert by_url[harbour]["status"] == "added" and by_url[harbour]["title"] == STORIES["harbour"][0]
    assert by_url[missing]["status"] == "rejected" and "404" in by_url[missing]["reason"]
    assert by_url["file:///etc/passwd"]["status"] == "rejected" and "http" in by_url["file:///etc/passwd"]["reason"]
    assert (body["added"], body["rejected"]) == (1, 2) and all(x["file"] is None for x in body["results"])
    article = http.get(f"/api/v1/articles/{by_url[harbour]['article_id']}").json()
    assert article["date_source"] == "metadata" and article["published_at"].startswith("2025-10-14")
    assert "Kestrel Harbour bridge reopened" in article["text"]

    # The same page again, as a form field: already present.
    r = http.post("/api/v1/articles", data={"urls": [harbour]})
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["duplicate"]
    # A file and a URL in one multipart request.
    note = (b"Quayside Notes\n\nThe Quayside market opens at 6 a.m. on Saturdays, "
            b"the harbour office said on Friday.")
    r = http.post("/api/v1/articles", data={"urls": [f"{site.url}/news/ferry"]},
                  files=[("files", ("note.txt", note, "text/plain"))])
    assert r.status_code == 200, r.text
    got = {(x["file"], x["url"], x["status"]) for x in r.json()["results"]}
    assert got == {("note.txt", None, "added"), (None, f"{site.url}/news/ferry", "added")}, got


def test_articles_post_bad_input_is_a_problem(api):
    http = api["http"]
    assert_problem(http.post("/api/v1/articles", content=b'{"urls": [', headers={"content-type": "application/json"}),
                   400, "invalid_json")
    assert_problem(http.post("/api/v1/articles", json={"urls": "http://x"}), 422)
    assert_problem(http.post("/api/v1/articles", json={"urls": []}), 422)
    assert_problem(http.post("/api/v1/articles", json={"url": ["http://x"]}), 422)
    assert_problem(http.post("/api/v1/articles", data={"urls": ["  "]}), 422, "nothing_to_add")
    assert_problem(http.post("/api/v1/articles", json={"urls": [f"http://example.invalid/{i}" for i in range(101)]}),
                   422)


def test_feed_routes_add_list_refresh_remove(api, site):
    http = api["http"]
    energy = f"{site.url}/feeds/energy.xml"
    r = http.post("/api/v1/feeds", json={"url": energy, "every": "2h"})
    assert r.status_code == 201, r.text
    feed = r.json()
    assert (feed["url"], feed["every_s"], feed["title"], feed["kind"]) == (energy, 7200, "Coastal Ledger - Energy", "rss")
    assert energy in feeds_by_url(http)

    # The server's background refresh may fetch a new feed's first items (it is due at
    # once); then it is not due for two hours, so what "refresh now" brings is its own.
    deadline = time.monotonic() + 60
    while f"{site.url}/news/windfarm" not in articles_by_url(http):
        r = http.post("/api/v1/feeds/refresh", json={"url": energy})
        assert r.status_code == 200 and r.json()["feeds"][0]["status"] in ("ok", "not-modified"), r.text
        assert time.monotonic() < deadline
    # A new item in the feed: refreshing just this feed now fetches it.
    site.page("/news/appeal", article_page("Coastal Ledger", "windfarm", url=f"{site.url}/news/appeal",
                                           date_iso="2025-10-16", title="Fishing groups appeal wind farm approval",
                                           paragraphs=[APPEAL]))
    site.page("/feeds/energy.xml", rss("Coastal Ledger - Energy", [
        {"title": "Fishing groups appeal wind farm approval", "link": f"{site.url}/news/appeal", "guid": "cl-1010",
         "pubDate": "Thu, 16 Oct 2025 10:00:00 GMT"},
        {"title": STORIES["windfarm"][0], "link": f"{site.url}/news/windfarm", "guid": "cl-1002",
         "pubDate": "Mon, 13 Oct 2025 08:00:00 GMT"}]), content_type="application/rss+xml")
    r = http.post("/api/v1/feeds/refresh", json={"url": energy})
    assert r.status_code == 200, r.text
    report = r.json()
    assert [(f["url"], f["status"], f["new_items"]) for f in report["feeds"]] == [(energy, "ok", 1)], report
    assert [x["url"] for x in report["ingest"]["results"]] == [f"{site.url}/news/appeal"]
    assert "1 new" in report["summary"]
    assert f"{site.url}/news/appeal" in articles_by_url(http)
    assert feeds_by_url(http)[energy]["last_new_items"] == 1
    # All feeds: the failing one reports its reason, the others go on.
    r = http.post("/api/v1/feeds/refresh")
    assert r.status_code == 200, r.text
    status = {f["url"]: f for f in r.json()["feeds"]}
    assert status[f"{site.url}/feeds/flaky.xml"]["status"] == "error"
    assert "500" in status[f"{site.url}/feeds/flaky.xml"]["error"]
    assert status[energy]["status"] in ("ok", "not-modified") and status[energy]["new_items"] == 0

    # Errors: not a feed, bad interval, unknown feed.
    body = assert_problem(http.post("/api/v1/feeds", json={"url": f"{site.url}/news/harbour"}), 400)
    assert "not a valid RSS or Atom feed" in body["detail"]
    assert_problem(http.post("/api/v1/feeds", json={"url": f"{site.url}/feeds/energy.xml", "every": "soon"}), 400)
    assert_problem(http.post("/api/v1/feeds", json={"every": "1h"}), 422)
    assert_problem(http.post("/api/v1/feeds/refresh", json={"url": f"{site.url}/feeds/none.xml"}), 404, "unknown_feed")
    assert_problem(http.delete("/api/v1/feeds", params={"url": f"{site.url}/feeds/none.xml"}), 404, "unknown_feed")
    assert_problem(http.delete("/api/v1/feeds"), 422)

    r = http.delete("/api/v1/feeds", params={"url": energy})
    assert r.status_code == 200 and r.json() == {"removed": energy}, r.text
    assert energy not in feeds_by_url(http)
    assert f"{site.url}/news/appeal" in articles_by_url(http)  # its articles stay


def test_shutdown_stops_the_refresher_cleanly(api):
    proc = api["proc"]
    proc.terminate()
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it (exit status -15).
    assert proc.wait(30) in (0, -signal.SIGTERM)
    log = api["log"].read_text()
    assert "feed refresh stopped after" in log and "Application shutdown complete" in log, log[-2000:]
    assert "Traceback" not in log, log[-3000:]


def test_feed_refresh_can_be_turned_off(tmp_path, embedder, site, caplog):
    engine = Engine(make_settings(tmp_path / "index", fetch_allow_private=True, feed_refresh=False), embedder=embedder)
    engine.add_feed(f"{site.url}/feeds/ferry.xml")

    class Ready:  # an index that is ready at once
        def __init__(self):
            import threading

            self.ready = threading.Event()
            self.ready.set()
            self.message, self.error = "Ready.", None

    with caplog.at_level(logging.INFO, logger="rag.server"):
        feeds = BackgroundFeeds(engine, Ready())
        feeds.start()
        time.sleep(1.0)
        assert not feeds.running and feeds.refresher is None
        feeds.stop()
    assert "feed refresh: off" in caplog.text
    status: FeedStatus = engine.feeds()[0]
    assert status.last_refresh is None  # nothing was fetched
