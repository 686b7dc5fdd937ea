"""Dates, titles, authors and boilerplate of news articles; time-aware questions; the
optional article columns of old indexes. Real files and real parsers, no model."""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from pathlib import Path

import pytest

from rag.errors import RagError
from rag.ingest.dates import find_dateline
from rag.ingest.feeds import FeedError, parse_every, parse_feed
from rag.ingest.metadata import HEADLINE_MAX_WORDS, headline_from_text, plausible_author
from rag.ingest.readers import load_file
from rag.ingest.urls import normalize_url, same_site
from rag.retrieve.query import QueryAnalyzer
from rag.retrieve.timeframe import find_period, parse_now
from rag.settings import Settings
from rag.text.headers import article_header

from .conftest import SEED_FILES

LEDE = ("The council approved the new harbour bridge on Monday after a long debate that lasted well into the "
        "night, officials said, and work will begin in the spring.\n\nIt will cost 4 million euros.")


def _load(path: Path):
    res = load_file(path, Settings())
    assert not res.problems, res.problems
    return res.articles[0]


def test_outlet_dateline_gives_date_and_source_and_is_not_the_title(tmp_path):
    p = tmp_path / "reef.txt"
    p.write_text("Coral spawning season starts early\n\nReef Daily Wire — 3 March 2025\n\n" + LEDE)
    a = _load(p)
    assert (a.published_at, a.date_source, a.source) == ("2025-03-03", "dateline", "Reef Daily Wire")
    assert a.title == "Coral spawning season starts early"
    assert "Reef Daily Wire" not in a.text and a.text.startswith("The council approved")
    assert a.has_real_date and "2025-03-03" in article_header(a)


def test_wire_dateline_gives_agency_and_a_date_without_year(tmp_path):
    p = tmp_path / "wire.txt"
    p.write_text("WASHINGTON, Oct 17 (Reuters) - The United States imposed new sanctions on two oil companies on "
                 "Friday, the Treasury said, in a move aimed at cutting revenue.\n\nMore text follows here.")
    # A missing year is the latest one not after the file was written.
    os.utime(p, (datetime(2026, 1, 5).timestamp(),) * 2)
    a = _load(p)
    assert (a.published_at, a.date_source, a.source) == ("2025-10-17", "dateline", "Reuters")
    assert a.text.startswith("WASHINGTON, Oct 17 (Reuters) -")  # the lede is kept verbatim
    assert a.title == "The United States imposed new sanctions on two oil companies on Friday"


@pytest.mark.parametrize("line,expected", [
    ("Published: 17 October 2025 08:45 GMT", "2025-10-17"),
    ("By Jane Doe | October 17, 2025", "2025-10-17"),
    ("Friday, October 17, 2025", "2025-10-17"),
    ("Updated Oct. 17, 2025 at 9:30 a.m.", "2025-10-17"),
    ("2025-10-17T08:00:00Z", "2025-10-17T08:00:00+00:00"),
])
def test_date_lines(line, expected):
    assert find_dateline(f"A headline of a few words\n{line}\n\n{LEDE}").published_at == expected


def test_no_date_is_the_ingest_date_marked_as_such(tmp_path):
    p = tmp_path / "plain.txt"
    p.write_text(LEDE + "\n\nThe mayor called the 3 March 2025 vote historic.")  # a date inside the body is not a dateline
    a = _load(p)
    assert a.date_source == "ingest" and not a.has_real_date
    assert a.published_at[:10] == datetime.now().astimezone().date().isoformat() or a.published_at[:10] == str(date.today())
    # Not embedded: vectors do not depend on the day an article was added.
    assert a.published_at[:10] not in article_header(a)


def test_json_date_field_or_dateline(tmp_path):
    p = tmp_path / "recs.jsonl"
    p.write_text(json.dumps({"title": "T1", "body": LEDE, "published_at": "2024-03-05"}) + "\n"
                 + json.dumps({"title": "T2", "body": "Eastport Gazette — 4 March 2024\n\n" + LEDE}) + "\n")
    a, b = load_file(p, Settings()).articles
    assert (a.date_source, b.date_source, b.published_at, b.source) == ("json", "dateline", "2024-03-04", "Eastport Gazette")


def test_untitled_texts_get_a_headline_not_a_sentence():
    for key in ("aljazeera", "skai"):  # the two seeds without a headline line
        a = _load(SEED_FILES[key])
        first_sentence = a.text.split(". ")[0]
        assert len(a.title.split()) <= HEADLINE_MAX_WORDS + 1 and len(a.title) < len(first_sentence), a.title
    assert headline_from_text(LEDE) == "The council approved the new harbour bridge on Monday…"
    assert headline_from_text("U.S. President Donald Trump met Mr. Smith in Washington on Friday, aides said.") == (
        "Donald Trump met Mr. Smith in Washington on Friday")


def test_author_bio_is_not_an_author_and_not_text(tmp_path):
    assert plausible_author("Lars Holm has covered energy; Climate") is None
    assert plausible_author("By Jane Doe and John Roe") == "Jane Doe, John Roe"
    assert plausible_author("Ludwig van Beethoven") == "Ludwig van Beethoven"
    body = "".join(f"<p>{s}</p>" for s in [LEDE.split("\n")[0]] * 3)
    (tmp_path / "p.html").write_text(
        f"""<html><head><title>Bridge approved</title><meta name="author" content="Ana Ribeiro"></head><body>
        <article><h1>Bridge approved</h1>{body}<p>Critics said the plan was rushed and residents were not consulted.</p>
        <p>Read more: Why bridges fail</p>
        <div class="author-box"><span class="author">Lars Holm has covered energy</span>; <a>Climate</a></div>
        <p>Lars Holm has covered energy and climate for the Ledger since 2015.</p></article>
        <footer>© 2023 The Ledger</footer></body></html>""")
    a = _load(tmp_path / "p.html")
    assert a.author == "Ana Ribeiro"
    assert "Read more" not in a.text and "Lars Holm" not in a.text and "Critics said" in a.text
    # Neither the copyright year nor "since 2015" is a publication date.
    assert a.date_source == "ingest"


def test_read_more_lines_are_boilerplate_in_saved_pages(tmp_path):
    p = tmp_path / "page.txt"
    p.write_text("Bridge approved after long debate\n\n" + LEDE + "\n\nREAD MORE: Storm closes coastal road\n\n"
                 "Critics said the plan was rushed and residents were not consulted before the vote.\n\n"
                 "Jane Doe is a reporter covering city politics for the Ledger.")
    a = _load(p)
    assert "READ MORE" not in a.text and "Critics said" in a.text and "Jane Doe is a reporter" not in a.text


def test_urls_and_sites():
    assert normalize_url("HTTPS://Example.COM:443/a?utm_source=x&id=3#top") == "https://example.com/a?id=3"
    assert same_site("https://www.bbc.co.uk/a", "https://news.bbc.co.uk/b")
    assert not same_site("http://127.0.0.1:8001/a", "http://127.0.0.1:8002/a")


def test_feed_parsing_refuses_malformed_xml_and_resolves_no_entities():
    with pytest.raises(FeedError, match="malformed XML"):
        parse_feed(b"<rss><channel><title>x<item><title>y</title></chan", "http://x.test/f")
    with pytest.raises(FeedError, match="malformed XML"):
        parse_feed(b"<urlset><url><loc>http://x.test/a</loc></url>", "http://x.test/s")
    xxe = (b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY e SYSTEM "file:///etc/hostname">]>'
           b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>http://x.test/&e;</loc></url></urlset>')
    try:
        items = parse_feed(xxe, "http://x.test/s").items
    except FeedError:
        items = []
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else "\0"
    assert all(hostname not in (i.link or "") for i in items)
    assert parse_every("30m") == 1800 and parse_every("2h") == 7200 and parse_every("1d") == 86400 and parse_every("90") == 5400
    for bad in ("soon", "10s", "-5m"):
        with pytest.raises(RagError, match="interval"):
            parse_every(bad)


NOW = datetime(2025, 10, 17, 15, 0)  # a Friday


@pytest.mark.parametrize("question,label,start,end", [
    ("What happened last week with the rail strike?", "last week (6–12 October 2025)", "2025-10-06", "2025-10-12"),
    ("What did the council decide yesterday?", "yesterday (16 October 2025)", "2025-10-16", "2025-10-16"),
    ("Wind farm news this month", "this month (1–17 October 2025)", "2025-10-01", "2025-10-17"),
    ("What has happened since Monday?", "since Monday (13–17 October 2025)", "2025-10-13", "2025-10-17"),
    ("Anything in the past week about ferries?", "the past week (11–17 October 2025)", "2025-10-11", "2025-10-17"),
    ("What happened last Tuesday?", "last Tuesday (14 October 2025)", "2025-10-14", "2025-10-14"),
    ("Stories since 3 October", "since 3 October 2025 (3–17 October 2025)", "2025-10-03", "2025-10-17"),
    ("What was reported last month?", "last month (1–30 September 2025)", "2025-09-01", "2025-09-30"),
])
def test_relative_periods(question, label, start, end):
    p = find_period(question, NOW)
    assert (p.label, str(p.start), str(p.end), p.recent_first) == (label, start, end, False)
    f = p.filters()
    assert (str(f.date_from), str(f.date_to)) == (start, end)


def test_latest_prefers_recent_and_absolute_dates_or_names_are_left_alone():
    p = find_period("What is the latest on the harbour bridge?", NOW)
    assert p.recent_first and p.start is None and p.end == NOW.date() and p.filters().recent_first
    assert p.label == "the most recent articles (up to 17 October 2025)"
    assert find_period("his recent promotion and the recently opened office", NOW) is None
    qa = QueryAnalyzer(["business today | latest stock market and economy news india", "techcrunch"])
    # "Today" and "Latest" are part of a publisher's name; "last summer ... on October 14, 2023" names a day.
    assert qa.period("Does the Business Today | Latest Stock Market And Economy News India article say X?", NOW) is None
    assert qa.period("Did they win last year, as reported on October 14, 2023?", NOW) is None
    assert qa.content_query("What did TechCrunch report last week about layoffs at startups?") == (
        "What did about layoffs at startups?")
    assert parse_now("2025-10-17").hour == 12 and parse_now("2025-10-17T08:30:00+00:00").hour == 8
    with pytest.raises(RagError, match="Invalid time"):
        parse_now("next tuesday")


def test_an_index_from_before_the_new_columns_opens_merges_and_keeps_them(tmp_path, embedder):
    """Format 1 article stores (linked by the migration, not rewritten) lack the optional
    columns: their values read as None, new segments have them, and a merge of old and
    new segments keeps both."""
    from rag.engine import Engine
    from rag.store.merge import merge_span

    from .conftest import make_settings
    from .test_segments import as_format_1

    engine = Engine(make_settings(tmp_path / "index"), embedder=embedder)
    engine.ingest([SEED_FILES["econotimes"]], show_progress=False)
    engine.close()
    as_format_1(tmp_path / "index", tmp_path / "old")
    old_engine = Engine(make_settings(tmp_path / "old"), embedder=embedder)
    old = old_engine.articles()[0][0]
    assert old.source == "EconoTimes" and old.date_source is None and old.group == old.article_id
    old_engine.ingest([SEED_FILES["skai"]], show_progress=False)
    old_engine.wait_for_merges()
    arts = {a.source: a for a, _ in old_engine.articles()}
    assert arts["Skai"].date_source == "ingest" and arts["EconoTimes"].date_source is None
    assert len(old_engine.snapshot.segments) == 2
    merge_span(tmp_path / "old", 0, 2)
    old_engine.reload()
    assert len(old_engine.snapshot.segments) == 1
    arts = {a.source: a for a, _ in old_engine.articles()}
    assert arts["Skai"].date_source == "ingest" and arts["EconoTimes"].date_source is None
    old_engine.close()


def test_question_sets_carry_a_now(tmp_path):
    from eval.question_sets import load_questions, read_question_set

    p = tmp_path / "set.jsonl"
    p.write_text(json.dumps({"id": "a", "question": "What happened yesterday?", "answers": ["x"],
                             "now": "2023-11-18T20:00:00+00:00"}) + "\n"
                 + json.dumps({"id": "b", "question": "And today?", "answers": ["y"], "now": "not a time"}) + "\n")
    good, rejected = read_question_set(p)
    assert [q.now for q in good] == ["2023-11-18T20:00:00+00:00"]
    assert "`now` must be an ISO 8601 date or time" in rejected[0]
    questions = load_questions(Path(__file__).resolve().parent.parent / "eval" / "questions" / "timeaware.jsonl")
    assert len(questions) == 24 and all(q.now for q in questions)
