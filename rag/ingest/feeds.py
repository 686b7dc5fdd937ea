"""Feeds: RSS and Atom (feedparser) and news sitemaps, refreshed into the index.

A refresh, for each feed:

1. GETs the feed conditionally (its stored ETag / Last-Modified): a 304 ends there;
2. reads its items; an item is fetched when it is new, or when its entry changed
   (title, dates or summary: a CMS bumps ``<updated>`` when a story is edited);
   a changed item's page is fetched conditionally too;
3. fetches those pages in parallel (``fetch_concurrency``, with the per-host delay,
   robots.txt, time and size limits of :mod:`.fetch`) and extracts each article, with
   the feed's title, date and author standing in for what the page lacks;
4. ingests all the articles of all the feeds at once (one index generation), where
   a new version of an article replaces the old one (:mod:`.curation`).

One feed's failure (unreachable, HTTP error, malformed XML) is recorded with its
reason and never stops the others; one item's failure likewise.
"""

from __future__ import annotations

import calendar
import hashlib
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Callable

from ..errors import RagError, first_line
from ..settings import Settings
from ..types import Article, FeedRefresh, FeedStatus, ItemProblem, RefreshReport
from .feed_catalog import FeedCatalog, ItemState
from .fetch import Fetched, FetchError, Fetcher
from .metadata import headline_from_text, plausible_author
from .readers import article_from_html, normalise_date, unreadable_reason, with_changes
from .urls import normalize_url, url_problem
from .web import IngestFn, article_from_page

log = logging.getLogger(__name__)

# Fewer characters than this in a feed entry's own content: a teaser, not the article.
MIN_ENTRY_CONTENT_CHARS = 500
MAX_CHILD_SITEMAPS = 20


class FeedError(RagError):
    """A feed cannot be read (the message says why)."""


@dataclass(frozen=True)
class FeedItem:
    key: str  # id/guid, else the link
    link: str | None
    title: str | None
    published_at: str | None  # ISO 8601
    author: str | None
    content_html: str | None  # the entry's full content, when the feed carries it
    fingerprint: str
    item_id: str | None  # the guid/id as the feed gives it
    source: str | None = None  # sitemaps name the publication
    date_source: str = "feed"  # what the item's date is, for Article.date_source


@dataclass(frozen=True)
class ParsedFeed:
    kind: str  # "rss" | "atom" | "sitemap"
    title: str | None
    items: list[FeedItem]
    child_sitemaps: list[str]
    warning: str | None = None  # read, but not cleanly (malformed XML)


# -- intervals -------------------------------------------------------------------------

_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|m|min|mins|h|hr|hrs|hours?|d|days?)?\s*$", re.I)


def parse_every(value: str | int | None, default: str = "30m") -> int:
    """A refresh interval: "30m", "2h", "1d", "90s" (a bare number is minutes) -> seconds."""
    if isinstance(value, int):
        seconds = value
    else:
        m = _EVERY.match(str(value if value is not None else default))
        if not m:
            raise RagError(f"Invalid interval {value!r}: use e.g. 30m, 2h, 1d or 90s.")
        unit = (m.group(2) or "m").lower()[0]
        seconds = int(float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit])
    if seconds < 60:
        raise RagError(f"Invalid interval {value!r}: feeds are refreshed at most once a minute.")
    return seconds


def format_every(seconds: int) -> str:
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % n == 0:
            return f"{seconds // n}{unit}"
    return f"{seconds}s"


# -- parsing ---------------------------------------------------------------------------


def _fingerprint(*parts: str | None) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update((p or "").encode("utf-8", "replace") + b"\x00")
    return h.hexdigest()[:16]


def parse_feed(content: bytes, url: str, content_type: str | None = None) -> ParsedFeed:
    """RSS, Atom or a (news) sitemap. Raises FeedError when it is none of them."""
    head = content[:4096].lstrip()
    if re.search(rb"<(?:\w+:)?(?:urlset|sitemapindex)\b", head):
        return _parse_sitemap(content)
    import feedparser

    parsed = feedparser.parse(content, response_headers={"content-location": url,
                                                         "content-type": content_type or "application/xml"})
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    # Encoding and content-type quirks are harmless; broken XML is not.
    benign = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
    if problem is not None and isinstance(problem, benign):
        problem = None
    if not parsed.entries and not parsed.get("version"):
        why = f": {first_line(problem)}" if problem is not None else ""
        raise FeedError(f"not a valid RSS or Atom feed or news sitemap{why}")
    version = parsed.get("version") or ""
    kind = "atom" if version.startswith("atom") else "rss"
    items = []
    for e in parsed.entries:
        link = e.get("link")
        ident = e.get("id") or None
        key = ident or link
        if not key:
            continue
        # dict.get: feedparser's own get maps a missing "updated" to "published", with a warning.
        updated, updated_parsed = dict.get(e, "updated"), dict.get(e, "updated_parsed")
        stamp = e.get("published_parsed") or updated_parsed
        published = (datetime.fromtimestamp(calendar.timegm(stamp), timezone.utc).isoformat()
                     if stamp else None)
        content_html = None
        if e.get("content"):
            content_html = max((c.get("value") or "" for c in e.content), key=len) or None
        summary = e.get("summary")
        items.append(FeedItem(
            key=key, link=link, title=e.get("title"), published_at=published,
            author=plausible_author(e.get("author")), content_html=content_html,
            fingerprint=_fingerprint(link, e.get("title"), updated, e.get("published"), summary, content_html),
            item_id=ident,
        ))
    warning = None
    if problem is not None:
        # Broken XML: feedparser's lenient parser may still recover items. Keep those
        # that have a link or id, and say so; with none, the feed is unusable.
        if not items:
            raise FeedError(f"not a valid RSS or Atom feed or news sitemap: malformed XML ({first_line(problem)})")
        warning = f"malformed XML ({first_line(problem)}); read the {len(items)} items that parse"
        log.info("%s: %s", url, warning)
    return ParsedFeed(kind, parsed.feed.get("title"), items, [], warning)


def _parse_sitemap(content: bytes) -> ParsedFeed:
    from lxml import etree

    # No DTDs, entities or network: a sitemap is data, never instructions to the parser.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(content, parser)
    except etree.XMLSyntaxError as exc:
        raise FeedError(f"not a valid sitemap: malformed XML ({first_line(exc)})") from None

    def local(el) -> str:
        return etree.QName(el).localname if isinstance(el.tag, str) else ""

    def child_text(el, name: str) -> str | None:
        for c in el.iter():
            if local(c) == name and c.text and c.text.strip():
                return c.text.strip()
        return None

    if local(root) == "sitemapindex":
        children = [t for s in root if local(s) == "sitemap" and (t := child_text(s, "loc"))]
        return ParsedFeed("sitemap", None, [], children[:MAX_CHILD_SITEMAPS])
    if local(root) != "urlset":
        raise FeedError(f"not a sitemap (root element <{local(root)}>)")
    items = []
    for u in root:
        if local(u) != "url" or not (loc := child_text(u, "loc")):
            continue
        published = child_text(u, "publication_date")
        title = child_text(u, "title")
        items.append(FeedItem(
            key=loc, link=loc, title=title, published_at=normalise_date(published), author=None, content_html=None,
            fingerprint=_fingerprint(loc, title, published, child_text(u, "lastmod")), item_id=None,
            source=child_text(u, "name"), date_source="sitemap",
        ))
    return ParsedFeed("sitemap", None, items, [])


# -- refresh ---------------------------------------------------------------------------


@dataclass
class _Work:
    """One item page to fetch, for one or more feeds."""

    item: FeedItem
    feeds: list[str]
    previous: ItemState | None
    article: Article | None = None
    problem: str | None = None
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class _FeedRun:
    url: str
    result: FeedRefresh
    parsed: ParsedFeed | None = None
    fetched: Fetched | None = None
    settled: list[ItemState] | None = None


def article_for_item(item: FeedItem, got: Fetched | None, page_problem: str | None) -> Article:
    """The article of a feed item: its page, with the feed's title, date and author
    where the page lacks them; the feed's own full content when the page failed."""
    if got is not None:
        art = article_from_page(got, feed_item_id=item.item_id)
    elif item.content_html and len(re.sub(r"<[^>]+>", "", item.content_html)) >= MIN_ENTRY_CONTENT_CHARS:
        log.info("%s: using the feed's own content (%s)", item.link, page_problem)
        art = article_from_html(f"<html><body><article>{item.content_html}</article></body></html>",
                                origin=item.link or item.key, feed_item_id=item.item_id)
        art = with_changes(art, url=item.link, canonical_url=normalize_url(item.link) if item.link else None)
    else:
        raise ValueError(page_problem or "no page and no content")
    changes: dict = {}
    if item.published_at and art.date_source in ("ingest", "dateline", None):
        changes.update(published_at=item.published_at, date_source=item.date_source)
    if item.title and art.title == headline_from_text(art.text):
        changes["title"] = " ".join(item.title.split())  # the page had no headline: the feed's
    if item.author and not art.author:
        changes["author"] = item.author
    if item.source and not art.source:
        changes["source"] = item.source
    return with_changes(art, **changes) if changes else art


def refresh_feeds(settings: Settings, ingest: IngestFn, urls: list[str] | None = None, *, due_only: bool = False,
                  now: datetime | None = None) -> RefreshReport:
    """Refresh the given feeds (default: all, or only those due). See the module docstring."""
    t0 = time.perf_counter()
    now = now or datetime.now(timezone.utc)
    catalog = FeedCatalog(settings.index_dir)
    known = {f.url: f for f in catalog.feeds(now)}
    if urls:
        wanted = [normalize_url(u) if not url_problem(u) else u for u in urls]
        missing = [u for u in wanted if u not in known]
        if missing:
            raise RagError(f"Not a subscribed feed: {', '.join(missing)} (see `rag feeds list`).")
    else:
        wanted = catalog.due(now) if due_only else list(known)
    report = RefreshReport()
    if not wanted:
        return report
    runs = [_FeedRun(u, FeedRefresh(u, "ok")) for u in wanted]
    with Fetcher(settings) as fetcher, ThreadPoolExecutor(max_workers=max(1, settings.fetch_concurrency)) as pool:
        list(pool.map(lambda run: _read_feed(run, catalog, fetcher, settings), runs))
        work = _plan_items(runs, catalog, settings)
        list(pool.map(lambda w: _fetch_item(w, fetcher), work.values()))
    articles = [w.article for w in work.values() if w.article is not None]
    ingest_error = None
    if articles:
        try:
            report.ingest = ingest(articles)
        except RagError as exc:
            ingest_error = f"adding the articles failed: {exc}"
            log.error("feed refresh: %s", ingest_error)
    outcome = {r.path: r for r in report.ingest.results}
    for run in runs:
        _settle(run, work, outcome, ingest_error)
        res = run.result
        errors = ([res.error] if res.error else []) + [f"{p.url}: {p.reason}" for p in res.item_problems]
        summary = None
        if errors:
            summary = errors[0] + (f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else "")
        catalog.record_refresh(
            run.url, when=now, new=res.new_items, updated=res.updated_items, error=summary,
            items=run.settled or [], keep_validators=run.fetched is None or run.fetched.not_modified or bool(ingest_error),
            etag=run.fetched.etag if run.fetched else None,
            last_modified=run.fetched.last_modified if run.fetched else None,
            title=run.parsed.title if run.parsed else None, kind=run.parsed.kind if run.parsed else None,
        )
        report.feeds.append(res)
    report.seconds = time.perf_counter() - t0
    return report


def _read_feed(run: _FeedRun, catalog: FeedCatalog, fetcher: Fetcher, settings: Settings) -> None:
    try:
        etag, last_modified = catalog.validators(run.url)
        got = fetcher.get(run.url, etag=etag, last_modified=last_modified)
        run.fetched = got
        if got.not_modified:
            run.result.status = "not-modified"
            return
        parsed = parse_feed(got.content, got.final_url, got.content_type)
        if parsed.warning:
            run.result.item_problems.append(ItemProblem(run.url, parsed.warning))
        items = list(parsed.items)
        for child in parsed.child_sitemaps:
            try:
                sub = fetcher.get(child)
                items += parse_feed(sub.content, child, sub.content_type).items
            except (FetchError, FeedError) as exc:
                run.result.item_problems.append(ItemProblem(child, f"sitemap: {exc}"))
        run.parsed = replace(parsed, items=items[: settings.feed_max_items])
    except (FetchError, FeedError) as exc:
        run.result.status, run.result.error = "error", str(exc)
    except Exception as exc:  # noqa: BLE001 - one feed's failure never stops the others
        log.debug("feed %s failed", run.url, exc_info=exc)
        run.result.status, run.result.error = "error", unreadable_reason(exc)
    if run.result.error:
        run.fetched = None


def _plan_items(runs: list[_FeedRun], catalog: FeedCatalog, settings: Settings) -> dict[str, _Work]:
    """The item pages to fetch: new items and items whose entry changed, once each."""
    work: dict[str, _Work] = {}
    for run in runs:
        if run.parsed is None:
            continue
        seen = catalog.items(run.url)
        run.settled = []
        for item in run.parsed.items:
            prev = seen.get(item.key)
            if prev is not None and prev.fingerprint == item.fingerprint:
                run.result.unchanged_items += 1
                continue
            target = item.link or item.key
            if problem := url_problem(target):
                run.result.item_problems.append(ItemProblem(target, problem))
                continue
            key = normalize_url(target)
            if key in work:
                work[key].feeds.append(run.url)
            else:
                work[key] = _Work(item, [run.url], prev)
    return work


def _fetch_item(w: _Work, fetcher: Fetcher) -> None:
    target = w.item.link or w.item.key
    got, problem = None, None
    try:
        prev = w.previous
        got = fetcher.get(target, etag=prev.etag if prev else None, last_modified=prev.last_modified if prev else None)
        if got.not_modified:
            w.not_modified = True
            return
        w.etag, w.last_modified = got.etag, got.last_modified
    except FetchError as exc:
        problem = f"could not fetch: {exc}"
    try:
        w.article = article_for_item(w.item, got, problem)
    except Exception as exc:  # noqa: BLE001 - one bad page must never cost the others
        w.problem = problem or unreadable_reason(exc)


def _settle(run: _FeedRun, work: dict[str, _Work], outcome: dict, ingest_error: str | None) -> None:
    """Count what happened to this feed's items and what to remember of them."""
    if run.parsed is None:
        return
    settled = run.settled if run.settled is not None else []
    for w in work.values():
        if run.url not in w.feeds:
            continue
        item, target = w.item, w.item.link or w.item.key
        if w.not_modified:
            run.result.unchanged_items += 1
            settled.append(ItemState(item.key, item.link, item.fingerprint, w.previous.article_id if w.previous else None,
                                     w.previous.etag if w.previous else None,
                                     w.previous.last_modified if w.previous else None))
            continue
        if w.article is None:
            run.result.item_problems.append(ItemProblem(target, w.problem or "no article"))
            continue
        if ingest_error:
            run.result.item_problems.append(ItemProblem(target, ingest_error))
            continue
        res = outcome.get(w.article.origin or "")
        if res is None or res.status == "rejected":
            run.result.item_problems.append(ItemProblem(target, res.reason if res else "not added"))
            continue
        if res.status == "added":
            run.result.new_items += 1
        elif res.status == "updated":
            run.result.updated_items += 1
        else:
            run.result.unchanged_items += 1
        settled.append(ItemState(item.key, item.link, item.fingerprint, res.article_id, w.etag, w.last_modified))
    run.settled = settled


# -- subscriptions ---------------------------------------------------------------------


def add_feed(settings: Settings, url: str, every: str | int | None = None) -> FeedStatus:
    """Subscribe to a feed after checking that it is one (fetched and parsed once;
    its items are fetched by the next refresh)."""
    if problem := url_problem(url):
        raise RagError(f"Cannot add {url}: {problem}.")
    every_s = parse_every(every if every is not None else settings.feed_every)
    url = normalize_url(url)
    with Fetcher(settings) as fetcher:
        try:
            got = fetcher.get(url)
            parsed = parse_feed(got.content, got.final_url, got.content_type)
        except (FetchError, FeedError) as exc:
            raise RagError(f"Cannot add {url}: {exc}.") from None
    return FeedCatalog(settings.index_dir).add(url, every_s, title=parsed.title, kind=parsed.kind)


def remove_feed(settings: Settings, url: str) -> None:
    key = normalize_url(url) if not url_problem(url) else url
    if not FeedCatalog(settings.index_dir).remove(key):
        raise RagError(f"Not a subscribed feed: {url} (see `rag feeds list`).")


def list_feeds(settings: Settings) -> list[FeedStatus]:
    return FeedCatalog(settings.index_dir).feeds()


# -- the background service -------------------------------------------------------------


class FeedRefresher:
    """Refreshes due feeds in a background thread (what `rag serve` runs).

    ``refresh`` is called every ``tick_s`` seconds (first right after :meth:`start`);
    it should refresh the feeds that are due, e.g. ``lambda:
    engine.refresh_feeds(due_only=True)``. An exception is logged and the next tick
    tries again: the service never dies of one bad refresh.
    """

    def __init__(self, refresh: Callable[[], RefreshReport], *, tick_s: float = 30.0):
        self._refresh = refresh
        self.tick_s = tick_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_report: RefreshReport | None = None
        self.last_error: str | None = None
        self.runs = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "FeedRefresher":
        if self.running:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="feed-refresher", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Ask the thread to stop and wait for it (a refresh in progress finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                report = self._refresh()
                self.last_report, self.last_error = report, None
                if report.feeds:
                    log.info("feeds: %s", report.summary())
                for failed in report.failed:  # each with its reason; the others went on
                    log.warning("feed %s failed: %s", failed.url, failed.error)
            except Exception as exc:  # noqa: BLE001 - keep the service alive; log the reason
                self.last_error = f"{type(exc).__name__}: {first_line(exc)}"
                log.exception("feed refresh failed")
            self.runs += 1
            self._stop.wait(self.tick_s)
