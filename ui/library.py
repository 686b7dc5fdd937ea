"""The library tab's handlers: the table (filtered by outlet and date), preview, upload,
adding by URL, the feeds (list, add, remove with confirmation, refresh now), delete
with confirmation and undo, and the counts every view shows. Every action calls the
engine function the CLI and the API call (``Engine.ingest_urls``, ``feeds``,
``add_feed``, ``remove_feed``, ``refresh_feeds``).

Undo keeps the removed articles, text included, in this browser's session state for
:data:`UNDO_S` seconds and puts them back with ``engine.ingest_articles``: article ids
are hashes of their content, so they come back with the same ids.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder as gradio_upload_folder

from rag.engine import Engine
from rag.errors import RagError
from rag.retrieve.filters import Filters, parse_date_arg
from rag.types import Article, FileResult, IngestReport

from . import render
from .status import IndexStatus, index_version, status_html

log = logging.getLogger("rag.ui")

UNDO_S = 300  # how long a delete can be undone


def uploaded_files(files) -> tuple[list[str], list[FileResult]]:
    """The paths among ``files`` that a browser actually uploaded, and a refusal for each other.

    A Gradio client names its files by server path. Gradio itself refuses, when it
    prepares an event's inputs, paths outside its upload folder; this is checked again
    here, on the resolved path (no ``..`` or symlink leads out), because indexing an
    arbitrary server file would let any client read it back through the chat.
    """
    root = Path(gradio_upload_folder()).resolve()
    paths: list[str] = []
    refused: list[FileResult] = []
    for f in files or []:
        raw = f if isinstance(f, str) else getattr(f, "path", None) or getattr(f, "name", None) or str(f)
        try:
            real = Path(raw).resolve(strict=True)
            ok = real.is_relative_to(root) and real != root and real.is_file()
        except (OSError, RuntimeError, ValueError):
            ok = False
        if ok:
            paths.append(str(real))
        else:
            log.warning("upload refused: %r is not a file uploaded through the app", raw)
            refused.append(FileResult(Path(str(raw)).name or "?", "rejected", "not a file uploaded through this page"))
    return paths, refused


def table_filters(sources, date_from, date_to) -> Filters:
    start = parse_date_arg((date_from or "").strip() or None)
    end = parse_date_arg((date_to or "").strip() or None)
    return Filters(sources=frozenset(s for s in (sources or []) if s) or None, date_from=start, date_to=end)


def urls_in(text: str | None) -> list[str]:
    """The addresses typed in the "Add by URL" box: one per line (or separated by spaces or commas)."""
    return [u for u in re.split(r"[\s,]+", text or "") if u]


def undo_deadline_text(until: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(until))


@dataclass
class LibraryView:
    table: Any
    preview: Any
    status: Any
    version: Any
    report: Any
    files: Any
    lib_sources: Any  # the table's outlet filter
    chat_sources: Any  # the chat's filters
    chat_articles: Any
    pending: Any  # ids waiting for the delete confirmation
    confirm: Any
    confirm_text: Any
    undo: Any  # {"articles": [Article], "until": epoch seconds} after a delete
    undo_btn: Any
    timer: Any
    url_box: Any  # "Add by URL": one address per line
    feeds: Any  # the feed list
    feed_url: Any
    feed_every: Any
    feed_pending: Any  # the feed waiting for the remove confirmation
    feed_confirm: Any
    feed_confirm_text: Any
    feed_report: Any


class Library:
    def __init__(self, engine: Engine, status: IndexStatus):
        self.engine = engine
        self.status = status
        self.v: LibraryView | None = None

    def rows(self) -> list[tuple[Article, int]]:
        if not (self.status.ready.is_set() or self.engine.has_index()):
            return []
        return self.engine.articles()

    def refresh(self, lib_sources=None, lib_from=None, lib_to=None, chat_sources=None, chat_articles=None) -> dict:
        """Every view of the collection: counts, table, and the choices of each filter picker."""
        v = self.v
        out: dict = {v.status: status_html(self.engine, self.status), v.version: index_version(self.engine, self.status)}
        try:
            rows = self.rows()
        except RagError as exc:
            out[v.table] = render.notice(str(exc), "error")
            return out
        sources, articles = render.choices_of(rows)
        known_ids = {a for _, a in articles}
        out[v.chat_sources] = gr.update(choices=sources, value=[s for s in (chat_sources or []) if s in sources])
        out[v.chat_articles] = gr.update(choices=articles, value=[a for a in (chat_articles or []) if a in known_ids])
        kept = [s for s in (lib_sources or []) if s in sources]
        out[v.lib_sources] = gr.update(choices=sources, value=kept)
        out[v.table] = self._table(rows, kept, lib_from, lib_to)
        out[v.feeds] = self.feed_list()
        return out

    def feed_list(self) -> str:
        try:
            return render.feed_list(self.engine.feeds())
        except RagError as exc:
            return render.notice(str(exc), "error")

    def _table(self, rows, sources, date_from, date_to) -> str:
        try:
            f = table_filters(sources, date_from, date_to)
        except RagError as exc:
            return render.notice(str(exc), "error")
        shown = rows if f.is_empty() else [(a, n) for a, n in rows if f.matches(a)]
        return render.library_table(shown, total=len(rows))

    def filter_table(self, lib_sources, lib_from, lib_to):
        try:
            return self._table(self.rows(), lib_sources, lib_from, lib_to)
        except RagError as exc:
            return render.notice(str(exc), "error")

    def tick(self, version, *pickers):
        """Timer: the start-up progress, then a refresh whenever the index changed (another browser's upload)."""
        v = self.v
        settled = self.status.settled
        timer = gr.Timer(value=5.0 if settled else 1.0, active=True)
        if not settled:
            return {v.status: status_html(self.engine, self.status), v.timer: timer}
        if index_version(self.engine, self.status) == version and version != -1:
            return {v.timer: timer}
        return {**self.refresh(*pickers), v.timer: timer}

    def preview(self, evt: gr.EventData):
        aid = str((evt._data or {}).get("id") or "")
        try:
            article = self.engine.snapshot.article(aid)
            passages = self.engine.snapshot.passage_counts().get(aid, 0)
            copies = self.engine.also_published_by(aid)
        except RagError:
            return render.notice("This article is no longer in the library.", "error")
        return render.article_preview(article, passages, copies)

    # -- upload -----------------------------------------------------------------------
    def upload(self, files, progress=gr.Progress()):
        """Index the uploaded files; the page then refreshes its views (``refresh``)."""
        v = self.v
        paths, refused = uploaded_files(files)
        if not paths and not refused:
            return {}
        if not paths:
            gr.Warning(f"{len(refused)} file(s) refused: see the list below.")
            return {v.report: render.ingest_report(IngestReport(refused)), v.files: None}
        if not self.status.settled:
            self.status.wait(900)  # the seed build holds the writer lock anyway

        def on_progress(stage: str, done: int, total: int) -> None:
            progress((done, max(total, 1)), desc=stage)

        try:
            report = self.engine.ingest(paths, progress=on_progress, show_progress=False)
        except RagError as exc:
            gr.Warning(str(exc))
            return {v.report: render.notice(str(exc), "error"), v.files: None}
        report.results[:0] = refused
        self._written(report)
        if report.rejected:
            gr.Warning(f"{len(report.rejected)} file(s) rejected: see the list below.")
        return {v.report: render.ingest_report(report), v.files: None}

    def _written(self, report: IngestReport) -> None:
        if (report.added or report.updated) and not self.status.ready.is_set():
            self.status.error = None
            self.status.ready.set()  # an index exists now (e.g. first upload into an empty one)

    # -- web pages and feeds ----------------------------------------------------------------
    def add_urls(self, text):
        """Fetch the pages typed in the box and add them; a result per URL (the views follow)."""
        v = self.v
        urls = urls_in(text)
        if not urls:
            gr.Warning("Type the address of an article page (http:// or https://) first.")
            return {}
        if not self.status.settled:
            self.status.wait(900)
        try:
            report = self.engine.ingest_urls(urls, show_progress=False)
        except RagError as exc:
            return {v.report: render.notice(str(exc), "error")}
        self._written(report)
        if report.rejected:
            gr.Warning(f"{len(report.rejected)} address(es) could not be added: see the list below.")
        return {v.report: render.ingest_report(report), v.url_box: ""}

    def add_feed(self, url, every):
        v = self.v
        url = (url or "").strip()
        if not url:
            gr.Warning("Type the address of an RSS or Atom feed or a news sitemap first.")
            return {}
        try:
            feed = self.engine.add_feed(url, every or None)
        except RagError as exc:
            return {v.feed_report: render.notice(str(exc), "error")}
        name = f"“{feed.title}”" if feed.title else feed.url
        note = (f"Added the feed {name}. Its articles are fetched when it is next due, "
                "or now with “Refresh now”.")
        return {v.feeds: self.feed_list(), v.feed_url: "", v.feed_report: render.notice(note)}

    def refresh_feeds(self, url: str | None = None):
        """Refresh one feed (or all) now, whether due or not; the views follow."""
        v = self.v
        if not self.status.settled:
            self.status.wait(900)
        try:
            report = self.engine.refresh_feeds([url] if url else None)
        except RagError as exc:
            return {v.feeds: self.feed_list(), v.feed_report: render.notice(str(exc), "error")}
        self._written(report.ingest)
        summary = report.summary() if report.feeds else "No feeds to refresh: add one first."
        return {v.feeds: self.feed_list(),
                v.feed_report: render.refresh_report(report.feeds, report.ingest, summary)}

    def refresh_all(self):
        return self.refresh_feeds(None)

    def feed_action(self, evt: gr.EventData):
        """A feed's "Refresh now" button (the page script sends ``{act, url}``)."""
        data = evt._data or {}
        url = str(data.get("url") or "")
        return self.refresh_feeds(url) if url else {}

    def ask_remove_feed(self, evt: gr.EventData):
        v = self.v
        url = str((evt._data or {}).get("url") or "")
        if not url:
            return {}
        feed = next((f for f in self.engine.feeds() if f.url == url), None)
        return {v.feed_pending: url, v.feed_confirm: gr.update(visible=True),
                v.feed_confirm_text: render.feed_question(feed, url)}

    def cancel_remove_feed(self):
        v = self.v
        return {v.feed_pending: "", v.feed_confirm: gr.update(visible=False)}

    def remove_feed(self, url):
        v = self.v
        if not url:
            return self.cancel_remove_feed()
        try:
            self.engine.remove_feed(url)
            note = render.notice(f"Removed the feed {url}. Its articles stay in the library.")
        except RagError as exc:
            note = render.notice(str(exc), "error")
        return {**self.cancel_remove_feed(), v.feeds: self.feed_list(), v.feed_report: note}

    # -- delete, confirm, undo -----------------------------------------------------------
    def ask_delete(self, evt: gr.EventData):
        v = self.v
        ids = [str(i) for i in ((evt._data or {}).get("ids") or []) if i]
        try:
            snapshot = self.engine.snapshot
            articles = [snapshot.article(i) for i in ids]
        except RagError as exc:
            gr.Warning(str(exc))
            return {}
        if not articles:
            gr.Warning("Select one or more articles to delete first.")
            return {}
        return {v.pending: ids, v.confirm: gr.update(visible=True),
                v.confirm_text: render.delete_question(articles, UNDO_S // 60)}

    def cancel_delete(self):
        v = self.v
        return {v.pending: [], v.confirm: gr.update(visible=False)}

    def delete(self, pending, *pickers):
        v = self.v
        ids = [i for i in (pending or []) if i]
        if not ids:
            return self.cancel_delete()
        try:
            removed = self.engine.remove(ids)
        except RagError as exc:
            gr.Warning(str(exc))
            return {**self.cancel_delete(), v.report: render.notice(str(exc), "error")}
        until = time.time() + UNDO_S
        return {**self.refresh(*pickers), **self.cancel_delete(),
                v.undo: {"articles": removed, "until": until},
                v.undo_btn: gr.update(visible=True, value=f"Undo delete ({len(removed)})"),
                v.report: render.removed_message(removed, undo_deadline_text(until)),
                v.preview: render.EMPTY_PREVIEW}

    def undo(self, undo, *pickers, now: float | None = None):
        v = self.v
        hidden = gr.update(visible=False)
        if not undo or not undo.get("articles"):
            return {v.undo_btn: hidden}
        if (now or time.time()) > undo["until"]:
            gr.Warning("Too late to undo: the deleted articles are no longer kept. Add their files again.")
            return {v.undo: None, v.undo_btn: hidden}
        try:
            report = self.engine.ingest_articles(list(undo["articles"]), show_progress=False)
        except RagError as exc:
            gr.Warning(str(exc))
            return {v.report: render.notice(str(exc), "error")}
        restored = len(report.added) + len(report.duplicates)
        return {**self.refresh(*pickers), v.undo: None, v.undo_btn: hidden,
                v.report: render.notice(f"Restored {restored} article{'s' if restored != 1 else ''}.")}
