"""Articles from URLs and feeds, against real HTTP servers on 127.0.0.1 (tests/news_site.py).

Site A ("Coastal Ledger") serves article pages in real-looking boilerplate, RSS, Atom
and a news sitemap, a redirect, 404/500, a slow and an oversized response, malformed
XML and a page robots.txt forbids; site B ("Estuary Times", another port) carries a
wire copy of one of A's stories and a different story on the same event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.engine import Engine
from rag.errors import RagError
from rag.ingest.fetch import Fetcher, address_problem

from .conftest import ROOT, make_settings
from .news_site import RAIL_UPDATE, STORIES, Site, article_page, atom, news_sitemap, rss

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sites():
    a, b = Site("Coastal Ledger").start(), Site("Estuary Times").start()
    A, B = a.url, b.url
    a.page("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    a.page("/news/harbour", article_page("Coastal Ledger", "harbour", url=f"{A}/news/harbour", date_iso="2025-10-14T09:30:00Z"))
    a.page("/news/windfarm", article_page("Coastal Ledger", "windfarm", url=f"{A}/news/windfarm", date_iso="2025-10-13"))
    a.page("/news/rail", article_page("Coastal Ledger", "rail", url=f"{A}/news/rail", date_iso=None, with_bio=False))
    a.page("/news/old-windfarm", "", status=301, location=f"{A}/news/windfarm")
    a.page("/news/to-file", "", status=302, location="file:///etc/passwd")
    a.page("/news/to-nowhere", "", status=302, location=f"http://0.0.0.0:{a.server.server_address[1]}/news/harbour")
    a.page("/news/broken", "", status=500)
    a.page("/news/slow", article_page("Coastal Ledger", "ferry", url=f"{A}/news/slow", date_iso=None), delay_s=4)
    a.page("/news/trickle", article_page("Coastal Ledger", "ferry", url=f"{A}/news/trickle", date_iso=None), trickle_s=0.2)
    a.page("/news/huge", "", huge_bytes=3 * 1024 * 1024)
    a.page("/private/memo", article_page("Coastal Ledger", "ferry", url=f"{A}/private/memo", date_iso=None))
    a.page("/feeds/bad.xml", "<rss><channel><title>Broken<item><title>x</title></chan", content_type="application/rss+xml")
    a.page("/feeds/rss.xml", rss("Coastal Ledger - News", [
        {"title": STORIES["harbour"][0], "link": f"{A}/news/harbour", "guid": "cl-1001", "pubDate": "Tue, 14 Oct 2025 09:30:00 GMT"},
        {"title": STORIES["rail"][0], "link": f"{A}/news/rail", "guid": "cl-1003", "pubDate": "Wed, 15 Oct 2025 18:00:00 GMT",
         "description": "Unions walk out"},
        {"title": "Gone", "link": f"{A}/news/missing", "guid": "cl-1004", "pubDate": "Wed, 15 Oct 2025 19:00:00 GMT"},
        {"title": "Broken", "link": f"{A}/news/broken", "guid": "cl-1005", "pubDate": "Wed, 15 Oct 2025 19:00:00 GMT"},
        {"title": "Local file", "link": "file:///etc/passwd", "guid": "../../../../tmp/evil", "pubDate": "Wed, 15 Oct 2025 19:00:00 GMT"},
    ]), content_type="application/rss+xml")
    a.page("/feeds/atom.xml", atom("Coastal Ledger - Energy", [
        {"id": "urn:cl:1002", "title": STORIES["windfarm"][0], "link": f"{A}/news/old-windfarm",
         "updated": "2025-10-13T08:00:00Z", "published": "2025-10-13T08:00:00Z", "summary": "Approved"},
        {"id": "urn:cl:1006", "title": "Slow page", "link": f"{A}/news/slow", "updated": "2025-10-13T08:00:00Z"},
        {"id": "urn:cl:1007", "title": "Huge page", "link": f"{A}/news/huge", "updated": "2025-10-13T08:00:00Z"},
        {"id": "urn:cl:1008", "title": "Private", "link": f"{A}/private/memo", "updated": "2025-10-13T08:00:00Z"},
    ]), content_type="application/atom+xml")
    a.page("/sitemap-news.xml", news_sitemap("Coastal Ledger", [
        (f"{A}/news/harbour", "2025-10-14T09:30:00Z", STORIES["harbour"][0]),
        (f"{A}/news/ferry", "2025-10-16", STORIES["ferry"][0]),
    ]), content_type="application/xml")
    a.page("/news/ferry", article_page("Coastal Ledger", "ferry", url=f"{A}/news/ferry", date_iso=None, author=None))
    # Site B: the harbour story as a lightly edited wire copy in other boilerplate, and
    # a different story about the same bridge.
    paras = list(STORIES["harbour"][1])
    paras[0] = paras[0].replace("on Tuesday", "on Tuesday morning")
    paras = paras[:4] + ["The Estuary Times contributed to this report."]
    b.page("/world/bridge-reopens", article_page("Estuary Times", "harbour", url=f"{B}/world/bridge-reopens",
                                                 date_iso="2025-10-14T11:00:00Z", author="Staff", paragraphs=paras,
                                                 title="Estuary bridge back open after repairs", with_bio=False))
    b.page("/world/bridge-traffic", article_page("Estuary Times", "harbour", url=f"{B}/world/bridge-traffic",
                                                 date_iso="2025-10-15", paragraphs=[
        "Traffic on the reopened Kestrel Harbour bridge was lighter than expected on its first full day, "
        "with queues at the toll plaza clearing before 8 a.m., police said.",
        "Shop owners in the old town said they hoped the reopening would bring back weekend visitors who had "
        "stayed away during the six months of repairs.",
        "The regional authority said it would publish traffic counts for the first month in November.",
    ], title="Light traffic on first day of reopened bridge", with_bio=False))
    b.page("/feed.xml", rss("Estuary Times", [
        {"title": "Estuary bridge back open after repairs", "link": f"{B}/world/bridge-reopens", "guid": f"{B}/world/bridge-reopens",
         "pubDate": "Tue, 14 Oct 2025 11:00:00 GMT"},
        {"title": "Light traffic on first day", "link": f"{B}/world/bridge-traffic", "guid": f"{B}/world/bridge-traffic",
         "pubDate": "Wed, 15 Oct 2025 07:00:00 GMT"},
    ]), content_type="application/rss+xml")
    yield a, b
    a.stop()
    b.stop()


def _engine(tmp_path: Path, embedder, **overrides) -> Engine:
    settings = make_settings(tmp_path / "index", fetch_allow_private=True, fetch_host_delay_s=0.0,
                             fetch_timeout_s=2.0, fetch_max_mb=1.0, **overrides)
    return Engine(settings, embedder=embedder)


def test_ingest_url_keeps_metadata_and_provenance(sites, tmp_path, embedder):
    a, _ = sites
    engine = _engine(tmp_path, embedder)
    report = engine.ingest_urls([f"{a.url}/news/harbour"], show_progress=False)
    assert [r.status for r in report.results] == ["added"], report.results
    art = engine.snapshot.article(report.results[0].article_id)
    assert art.title == STORIES["harbour"][0]
    assert art.source == "Coastal Ledger"
    assert art.author == "Ana Ribeiro"  # not the bio box
    assert (art.published_at[:10], art.date_source) == ("2025-10-14", "metadata")
    assert art.canonical_url == art.url == f"{a.url}/news/harbour"
    assert art.fetched_at and art.fetched_at.endswith("+00:00")
    # The article, and nothing of the site around it.
    assert "212 corroded cable anchors" in art.text and "tolls would stay" in art.text
    for boiler in ("cookies", "Read more", "Lars Holm", "newsletter", "Related stories", "All rights reserved"):
        assert boiler not in art.text, boiler
    ua = a.hits("/news/harbour")[-1]["User-Agent"]
    assert ua.startswith("article-rag/")
    assert a.hits("/robots.txt"), "robots.txt is read before the first page"
    # The same page again: already present, nothing re-indexed.
    again = engine.ingest_urls([f"{a.url}/news/harbour"], show_progress=False)
    assert [r.status for r in again.results] == ["duplicate"]


def test_bad_urls_are_refused_each_with_its_reason(sites, tmp_path, embedder):
    a, _ = sites
    engine = _engine(tmp_path, embedder)
    urls = {
        "file:///etc/passwd": "only http and https",
        "ftp://127.0.0.1/x": "only http and https",
        f"{a.url}/news/missing": "HTTP 404",
        f"{a.url}/news/broken": "HTTP 500",
        f"{a.url}/news/slow": "timed out",
        f"{a.url}/news/trickle": "longer than",
        f"{a.url}/news/huge": "limit",
        f"{a.url}/private/memo": "robots.txt",
        f"{a.url}/news/to-file": "only http and https",
        f"{a.url}/news/to-nowhere": "not a host address",
        f"{a.url}/feeds/rss.xml": "rag feeds add",
        f"{a.url}/news/windfarm": None,
    }
    report = engine.ingest_urls(list(urls), show_progress=False)
    by_url = {r.path: r for r in report.results}
    for url, why in urls.items():
        r = by_url[url]
        if why is None:
            assert r.status == "added", r
        else:
            assert r.status == "rejected" and why in r.reason, (url, r.reason)
    # Only what was fetched lives in the index folder.
    assert {p.name for p in engine.index_dir.iterdir()} <= {"CURRENT", ".lock", ".merge-lock", "wire-signatures.sqlite"} | {
        p.name for p in [*engine.index_dir.glob("seg-*"), *engine.index_dir.glob("manifest-*.json")]}


def test_private_addresses_are_refused_unless_allowed(sites, tmp_path):
    a, _ = sites
    for ip, allowed in [("127.0.0.1", False), ("10.1.2.3", False), ("192.168.0.10", False), ("169.254.169.254", False),
                        ("::1", False), ("fe80::1", False), ("::ffff:127.0.0.1", False), ("100.64.0.1", False),
                        ("8.8.8.8", True), ("2001:4860:4860::8888", True), ("0.0.0.0", False), ("224.0.0.1", False)]:
        assert (address_problem(ip, allow_private=False) is None) == allowed, ip
    assert address_problem("127.0.0.1", allow_private=True) is None
    assert address_problem("0.0.0.0", allow_private=True) is not None
    settings = make_settings(tmp_path / "index")  # RAG_FETCH_ALLOW_PRIVATE not set
    assert settings.fetch_allow_private is False
    with Fetcher(settings) as fetcher:
        for url in (f"{a.url}/news/harbour", a.url.replace("127.0.0.1", "localhost") + "/news/harbour"):
            with pytest.raises(RagError, match="loopback address .* RAG_FETCH_ALLOW_PRIVATE=true"):
                fetcher.get(url)
    before = len(a.requests)
    assert len(a.requests) == before  # refused before connecting
    env_settings = make_settings(tmp_path / "index")
    os.environ["RAG_FETCH_ALLOW_PRIVATE"] = "true"
    try:
        from rag.settings import Settings

        env_settings = Settings()
    finally:
        del os.environ["RAG_FETCH_ALLOW_PRIVATE"]
    assert env_settings.fetch_allow_private is True


def test_feeds_refresh_only_new_or_changed_items(sites, tmp_path, embedder):
    a, b = sites
    engine = _engine(tmp_path, embedder)
    for url in (f"{a.url}/feeds/rss.xml", f"{a.url}/feeds/atom.xml", f"{a.url}/sitemap-news.xml", f"{b.url}/feed.xml"):
        engine.add_feed(url, "30m")
    with pytest.raises(RagError, match="not a valid RSS or Atom feed"):
        engine.add_feed(f"{a.url}/feeds/bad.xml")
    with pytest.raises(RagError, match="HTTP 404"):
        engine.add_feed(f"{a.url}/feeds/none.xml")
    # A feed that breaks after it was added: its error must not stop the others.
    a.page("/feeds/later-bad.xml", rss("Later", []), content_type="application/rss+xml")
    engine.add_feed(f"{a.url}/feeds/later-bad.xml")
    a.page("/feeds/later-bad.xml", "<rss><channel><item><title>oops</ite", content_type="application/rss+xml")
    assert [f.kind for f in engine.feeds()] == ["rss", "atom", "sitemap", "rss", "rss"]

    harbour_fetches = len(a.hits("/news/harbour"))  # earlier tests fetched it too
    report = engine.refresh_feeds()
    res = {f.url: f for f in report.feeds}
    rss_a, atom_a, sitemap_a, rss_b = (res[u] for u in (f"{a.url}/feeds/rss.xml", f"{a.url}/feeds/atom.xml",
                                                        f"{a.url}/sitemap-news.xml", f"{b.url}/feed.xml"))
    bad = res[f"{a.url}/feeds/later-bad.xml"]
    assert bad.status == "error" and "not a valid RSS or Atom feed" in bad.error
    assert (rss_a.status, rss_a.new_items) == ("ok", 2)
    problems = {p.url: p.reason for p in rss_a.item_problems}
    assert "HTTP 404" in problems[f"{a.url}/news/missing"] and "HTTP 500" in problems[f"{a.url}/news/broken"]
    assert any(u.startswith("file:") and "only http and https" in why for u, why in problems.items())
    assert atom_a.new_items == 1  # the wind farm story, through its redirect
    problems = {p.url: p.reason for p in atom_a.item_problems}
    assert "timed out" in problems[f"{a.url}/news/slow"] and "limit" in problems[f"{a.url}/news/huge"]
    assert "robots.txt" in problems[f"{a.url}/private/memo"]
    # The sitemap shares the harbour page with the RSS feed: fetched once, indexed once
    # (a new item of each feed).
    assert sitemap_a.new_items == 2 and rss_b.new_items == 2
    assert len(a.hits("/news/harbour")) == harbour_fetches + 1
    assert len(engine.articles()) == 6

    arts = {a_.url: a_ for a_, _ in engine.articles()}
    rail = arts[f"{a.url}/news/rail"]
    assert (rail.published_at[:16], rail.date_source, rail.feed_item_id) == ("2025-10-15T18:00", "feed", "cl-1003")
    ferry = arts[f"{a.url}/news/ferry"]
    assert (ferry.published_at[:10], ferry.date_source) == ("2025-10-16", "sitemap")
    wind = arts[f"{a.url}/news/windfarm"]  # fetched through /news/old-windfarm
    assert wind.date_source == "metadata" and wind.feed_item_id == "urn:cl:1002"

    listed = {f.url: f for f in engine.feeds()}
    assert listed[f"{a.url}/feeds/rss.xml"].last_new_items == 2 and listed[f"{a.url}/feeds/rss.xml"].last_refresh
    assert "only http and https" in listed[f"{a.url}/feeds/rss.xml"].last_error
    assert "(and 2 more problems)" in listed[f"{a.url}/feeds/rss.xml"].last_error
    assert listed[f"{b.url}/feed.xml"].last_error is None
    assert listed[f"{b.url}/feed.xml"].title == "Estuary Times"

    # Second refresh, nothing changed: the feeds answer 304 to the conditional GET and
    # no article page is fetched again.
    pages_before = len([p for p, _ in a.requests if p.startswith("/news/")])
    again = engine.refresh_feeds([f"{a.url}/feeds/rss.xml", f"{b.url}/feed.xml"])
    assert {f.status for f in again.feeds} == {"not-modified"}
    assert a.hits("/feeds/rss.xml")[-1].get("If-None-Match")
    assert len([p for p, _ in a.requests if p.startswith("/news/")]) == pages_before

    # The feed list lives in the index folder and survives a restart.
    engine2 = _engine(tmp_path, embedder)
    assert [f.url for f in engine2.feeds()] == list(listed)
    engine2.remove_feed(f"{a.url}/feeds/later-bad.xml")
    assert len(engine2.feeds()) == 4
    with pytest.raises(RagError, match="Not a subscribed feed"):
        engine2.remove_feed(f"{a.url}/feeds/later-bad.xml")


def test_changed_article_replaces_its_old_version(sites, tmp_path, embedder):
    a, _ = sites
    A = a.url
    a.page("/feeds/rail.xml", atom("Rail", [{"id": "urn:cl:rail", "title": STORIES["rail"][0], "link": f"{A}/news/rail2",
                                              "updated": "2025-10-15T18:00:00Z", "published": "2025-10-15T18:00:00Z"}]),
           content_type="application/atom+xml")
    a.page("/news/rail2", article_page("Coastal Ledger", "rail", url=f"{A}/news/rail2", date_iso="2025-10-15T18:00:00Z"))
    engine = _engine(tmp_path, embedder)
    engine.add_feed(f"{A}/feeds/rail.xml")
    first = engine.refresh_feeds()
    assert first.feeds[0].new_items == 1
    old = next(x for x, _ in engine.articles() if x.url == f"{A}/news/rail2")
    old_text = engine.snapshot.article(old.article_id).text

    # The story is edited: new text on the page, <updated> bumped in the feed.
    a.page("/news/rail2", article_page("Coastal Ledger", "rail", url=f"{A}/news/rail2", date_iso="2025-10-15T18:00:00Z",
                                       paragraphs=RAIL_UPDATE, title="Rail strike called off after improved pay offer"))
    a.page("/feeds/rail.xml", atom("Rail", [{"id": "urn:cl:rail", "title": "Rail strike called off after improved pay offer",
                                              "link": f"{A}/news/rail2", "updated": "2025-10-15T23:10:00Z",
                                              "published": "2025-10-15T18:00:00Z"}]), content_type="application/atom+xml")
    second = engine.refresh_feeds()
    assert (second.feeds[0].new_items, second.feeds[0].updated_items) == (0, 1)
    assert a.hits("/news/rail2")[-1].get("If-None-Match"), "the changed item's page is fetched conditionally"
    versions = [x for x, _ in engine.articles() if x.url == f"{A}/news/rail2"]
    assert len(versions) == 1  # one version indexed
    new = engine.snapshot.article(versions[0].article_id)
    assert "called off" in new.text and "7 percent" not in new.text
    assert new.previous_hash and new.previous_at and new.article_id != old.article_id
    from rag.ingest.readers import text_hash

    assert new.previous_hash == text_hash(old.title, old_text) and new.previous_at == old.fetched_at
    assert old.article_id not in engine.snapshot.row_by_id
    hits = engine.search("rail strike pay offer", k=5).hits
    assert all(h.article.article_id != old.article_id for h in hits)

    # `rag ingest URL` on a page that changed again reports it as updated.
    a.page("/news/rail2", article_page("Coastal Ledger", "rail", url=f"{A}/news/rail2", date_iso="2025-10-15T18:00:00Z",
                                       paragraphs=RAIL_UPDATE + ["Talks on working hours will resume in January."],
                                       title="Rail strike called off after improved pay offer"))
    report = engine.ingest_urls([f"{A}/news/rail2"], show_progress=False)
    assert [r.status for r in report.results] == ["updated"] and report.results[0].reason.startswith("new version of")
    assert "1 updated" in report.summary()
    assert len([x for x, _ in engine.articles() if x.url == f"{A}/news/rail2"]) == 1


def test_wire_copy_is_grouped_and_counted_once(sites, tmp_path, embedder):
    a, b = sites
    engine = _engine(tmp_path, embedder)
    report = engine.ingest_urls([f"{a.url}/news/harbour", f"{b.url}/world/bridge-reopens",
                                 f"{b.url}/world/bridge-traffic", f"{a.url}/news/windfarm"], show_progress=False)
    assert len(report.added) == 4
    arts = {x.url: x for x, _ in engine.articles()}
    orig, copy = arts[f"{a.url}/news/harbour"], arts[f"{b.url}/world/bridge-reopens"]
    same_topic = arts[f"{b.url}/world/bridge-traffic"]
    assert copy.group == orig.group
    assert same_topic.group == same_topic.article_id  # another story about the same bridge: not a copy
    assert [c.url for c in engine.also_published_by(orig.article_id)] == [copy.url]
    assert [c.source for c in engine.also_published_by(copy.article_id)] == ["Coastal Ledger"]
    assert engine.also_published_by(same_topic.article_id) == ()
    hits = engine.search("How many cable anchors were replaced on the harbour bridge?", k=6).hits
    top = next(h for h in hits if h.article.group == orig.group)
    d = top.to_dict()
    assert d["also_published_by"] and d["also_published_by"][0]["source"] in ("Coastal Ledger", "Estuary Times")
    # Retrieval counts the group once: its two copies share one diversity group.
    r = engine.retriever
    rows = [engine.snapshot.row_by_id[x.article_id] for x in (orig, copy, same_topic)]
    groups = r.groups.index_by_row[rows]
    assert groups[0] == groups[1] != groups[2]


def test_refresher_service_refreshes_due_feeds_in_the_background(sites, tmp_path, embedder):
    _, b = sites
    engine = _engine(tmp_path, embedder)
    engine.add_feed(f"{b.url}/feed.xml", "1h")
    refresher = engine.feed_refresher(tick_s=0.2).start()
    try:
        deadline = time.monotonic() + 120
        while refresher.last_report is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert refresher.last_report is not None and refresher.last_error is None
        assert refresher.last_report.feeds[0].new_items == 2
        runs = refresher.runs
        while refresher.runs < runs + 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        # Refreshed an hour ago at most: not due again, so later ticks fetch nothing.
        assert refresher.last_report.feeds == []
    finally:
        refresher.stop()
    assert not refresher.running
    assert len(engine.articles()) == 2


def rag(*args, env=None, check=True):
    full = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_FETCH_ALLOW_PRIVATE": "true", "RAG_FETCH_HOST_DELAY_S": "0",
            "RAG_FETCH_TIMEOUT_S": "2", "RAG_EMBEDDING_BACKEND": "torch", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=full, capture_output=True,
                          text=True, timeout=600)
    if check and proc.returncode not in (0, 1):
        raise AssertionError(f"rag {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def test_cli_ingest_url_and_feeds(sites, tmp_path):
    a, b = sites
    index = str(tmp_path / "index")
    out = rag("ingest", f"{a.url}/news/harbour", "file:///etc/passwd", "--index", index, "-q").stdout
    assert "added " in out and "file:///etc/passwd: only http and https" in out
    out = rag("feeds", "add", f"{b.url}/feed.xml", "--every", "2h", "--index", index, "-q").stdout
    assert "Estuary Times" in out and "every 2h" in out
    proc = rag("feeds", "add", f"{a.url}/feeds/bad.xml", "--index", index, "-q", check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: Cannot add") and "Traceback" not in proc.stderr
    out = rag("feeds", "refresh", "--index", index, "-q").stdout
    assert "2 new" in out
    listed = json.loads(rag("feeds", "list", "--json", "--index", index).stdout)
    assert listed[0]["url"] == f"{b.url}/feed.xml" and listed[0]["last_new_items"] == 2 and listed[0]["every_s"] == 7200
    arts = json.loads(rag("articles", "--json", "--index", index).stdout)
    copy = next(x for x in arts if x["url"] == f"{b.url}/world/bridge-reopens")
    assert copy["also_published_by"][0]["url"] == f"{a.url}/news/harbour"
    assert copy["date_source"] == "metadata" and copy["fetched_at"]
    hits = json.loads(rag("search", "cable anchors bridge", "--json", "-k", "3", "--index", index).stdout)
    assert any(h["also_published_by"] for h in hits)
    out = rag("feeds", "remove", f"{b.url}/feed.xml", "--index", index).stdout
    assert "removed" in out
    assert json.loads(rag("feeds", "list", "--json", "--index", index).stdout) == []


def test_time_aware_questions_filter_by_the_period_and_say_which(sites, tmp_path, embedder):
    from datetime import datetime, timezone

    from rag.chain import ask

    a, b = sites
    engine = _engine(tmp_path, embedder)
    engine.ingest_urls([f"{a.url}/news/harbour", f"{a.url}/news/windfarm", f"{b.url}/world/bridge-traffic"],
                       show_progress=False)
    days = {x.article_id: x.published_at[:10] for x, _ in engine.articles()}
    assert sorted(days.values()) == ["2025-10-13", "2025-10-14", "2025-10-15"]
    now = datetime(2025, 10, 16, 9, 0, tzinfo=timezone.utc)  # a Thursday
    ans = ask(engine, "What happened with the harbour bridge yesterday?", now=now)
    assert ans.period == "yesterday (15 October 2025)"
    assert ans.related and {days[r.article_id] for r in ans.related} == {"2025-10-15"}
    ans = ask(engine, "How many turbines will the wind farm approved since Monday have?", now=now)
    assert ans.period == "since Monday (13–16 October 2025)"
    assert ans.related and all("2025-10-13" <= days[r.article_id] <= "2025-10-16" for r in ans.related)
    assert "60 turbines" in ans.related[0].text
    # Asked on 14 October, the newest article about the bridge cannot be the one from the 15th.
    ans = ask(engine, "What is the latest on the harbour bridge?", now=datetime(2025, 10, 14, 18, 0, tzinfo=timezone.utc))
    assert ans.period == "the most recent articles (up to 14 October 2025)"
    assert ans.related and max(days[r.article_id] for r in ans.related) == "2025-10-14"
    # Nothing in the period: the answer abstains, and says which days it looked at.
    ans = ask(engine, "What happened with the harbour bridge last month?", now=now)
    assert ans.abstained and ans.period == "last month (1–30 September 2025)" and not ans.related
    # Without a relative phrase nothing changes.
    assert ask(engine, "How many cable anchors were replaced?", now=now).period is None
