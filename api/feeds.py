"""The feed routes under ``/api/v1/feeds``: list, add, remove, refresh.

Each calls the engine's feed function (``Engine.feeds``, ``add_feed``, ``remove_feed``,
``refresh_feeds``) on a worker thread, the same ones `rag feeds` and the Library call.
A feed is named by its URL (the key the engine keeps it under): ``DELETE
/api/v1/feeds?url=...``. The engine's errors (an address that is no feed, a bad
interval) are 400 problems, as for the other routes; an unknown feed is a 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from rag.ingest.urls import normalize_url, url_problem
from rag.types import FeedStatus, RefreshReport

from .models import FeedIn, FeedList, FeedOut, FeedRefreshOut, FeedRemoved, RefreshIn, RefreshOut
from .problems import Problem
from .rest import ERRORS, PREFIX
from .service import Service
from .uploads import ingest_out, url_results

_UNKNOWN = {404: {"description": "no subscribed feed has this URL"}}


def router(svc: Service) -> APIRouter:
    r = APIRouter(prefix=PREFIX + "/feeds", tags=["feeds"], responses=ERRORS)
    engine = svc.engine

    def subscribed(url: str) -> str:
        """The feed's key, or a 404 problem when no feed has this URL."""
        key = url if url_problem(url) else normalize_url(url)
        if key not in {f.url for f in engine.feeds()}:
            raise Problem(404, f"Not a subscribed feed: {url} (GET {PREFIX}/feeds lists them).", code="unknown_feed")
        return key

    @r.get("", response_model=FeedList)
    async def list_feeds():
        """The subscribed feeds: last refresh, new and updated items, last error, next due."""
        feeds = await svc.workers.read(engine.feeds)
        return FeedList(count=len(feeds), feeds=[feed_out(f) for f in feeds])

    @r.post("", response_model=FeedOut, status_code=201)
    async def add_feed(body: FeedIn):
        """Subscribe to an RSS or Atom feed or a news sitemap. It is fetched and parsed once
        to check it (400 with the reason otherwise); its items come with the next refresh
        (`POST /api/v1/feeds/refresh`, or the server's background refresh when it is due)."""
        feed = await svc.workers.write(engine.add_feed, body.url.strip(), body.every)
        return feed_out(feed)

    @r.delete("", response_model=FeedRemoved, responses=_UNKNOWN)
    async def remove_feed(url: Annotated[str, Query(description="the feed's URL, as listed")]):
        """Unsubscribe from a feed; the articles it brought stay in the index."""

        def remove():
            key = subscribed(url)
            engine.remove_feed(key)
            return FeedRemoved(removed=key)

        return await svc.workers.write(remove)

    @r.post("/refresh", response_model=RefreshOut, responses=_UNKNOWN)
    async def refresh(body: RefreshIn | None = None):
        """Fetch the new and changed items of one feed (`{"url": ...}`) or of every feed
        (no body, or `{}`), now, whether due or not. One feed's failure is reported with
        its reason and never stops the others."""
        url = body.url.strip() if body and body.url else None

        def run():
            urls = [subscribed(url)] if url else None
            return engine.refresh_feeds(urls)

        report = await svc.workers.write(run)
        if report.ingest.added or report.ingest.updated:
            svc.index_written()
        return refresh_out(report)

    return r


def feed_out(f: FeedStatus) -> FeedOut:
    return FeedOut(**f.to_dict())


def refresh_out(report: RefreshReport) -> RefreshOut:
    return RefreshOut(summary=report.summary() if report.feeds else "No feeds to refresh.",
                      seconds=round(report.seconds, 3),
                      feeds=[FeedRefreshOut(**f.to_dict()) for f in report.feeds],
                      ingest=ingest_out([(report.ingest, url_results(report.ingest))]))
