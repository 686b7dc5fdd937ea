"""Articles from URLs: fetch a page, extract the article, keep where and when it came from."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable

from ..settings import Settings
from ..types import Article, FileResult, IngestReport
from .fetch import Fetched, FetchError, Fetcher
from .readers import article_from_html, decode_bytes, unreadable_reason
from .urls import url_problem

log = logging.getLogger(__name__)

HTML_TYPES = ("text/html", "application/xhtml+xml")
FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/xml", "text/xml")

# What an ingest of articles is: the engine's (it reloads its snapshot afterwards).
IngestFn = Callable[[list[Article]], IngestReport]


def page_text(got: Fetched) -> str:
    """The body of a fetched page as text: its declared charset, else UTF-8 or the detected one."""
    if got.charset:
        try:
            return got.content.decode(got.charset)
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_bytes(got.content)


def article_from_page(got: Fetched, **provenance: Any) -> Article:
    """The article in a fetched HTML page. Raises ValueError with the reason when there is none."""
    if got.content_type and got.content_type not in HTML_TYPES:
        if got.content_type in FEED_TYPES or got.content_type.endswith("+xml"):
            raise ValueError(f"this is a feed or XML ({got.content_type}), not an article page: "
                             "add it with `rag feeds add`")
        raise ValueError(f"not an HTML page (content type {got.content_type})")
    return article_from_html(page_text(got), origin=got.url, url=got.final_url, fetched_at=got.fetched_at,
                             **provenance)


def fetch_articles(urls: list[str], settings: Settings, fetcher: Fetcher | None = None
                   ) -> tuple[list[Article], list[FileResult]]:
    """Fetch and extract each URL (in parallel, politely); problems come back per URL."""
    articles: list[Article] = []
    problems: list[FileResult] = []
    own = fetcher is None
    fetcher = fetcher or Fetcher(settings)

    def one(url: str) -> Article | FileResult:
        if problem := url_problem(url):
            return FileResult(url, "rejected", problem)
        try:
            return article_from_page(fetcher.get(url))
        except FetchError as exc:
            return FileResult(url, "rejected", f"could not fetch: {exc}")
        except Exception as exc:  # noqa: BLE001 - one bad page must never cost the others
            return FileResult(url, "rejected", unreadable_reason(exc))

    try:
        with ThreadPoolExecutor(max_workers=max(1, settings.fetch_concurrency)) as pool:
            for result in pool.map(one, list(dict.fromkeys(urls))):
                (problems if isinstance(result, FileResult) else articles).append(result)
    finally:
        if own:
            fetcher.close()
    return articles, problems


def ingest_urls(urls: Iterable[str], settings: Settings, ingest: IngestFn) -> IngestReport:
    """``rag ingest URL...``: fetch each page and add (or update) its article."""
    articles, problems = fetch_articles(list(urls), settings)
    report = ingest(articles) if articles else IngestReport()
    report.results[:0] = problems
    return report
