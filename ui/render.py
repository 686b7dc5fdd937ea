"""HTML for the browser app, built from the engine's typed results.

Everything that comes from an article (title, source, quote, passage, body, URL) or
a user (question, conversation name) is text: it goes through :func:`esc` before it
is put into markup, so an article titled ``<img src=x onerror=...>`` shows those
characters and runs nothing. Only markup written here is rendered, and only
``http(s)`` URLs become links. Markers are found with the engine's own parser
(:func:`rag.answer.citations.iter_markers`); nothing here decides what is cited.

The page's script (``ui/static/app.js``) reads the ``data-*`` attributes written
here: ``data-a`` / ``data-s`` / ``data-e`` name an article and the span to show in
the side panel, ``data-n`` a citation number, ``data-act`` a message action.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from pathlib import Path
from urllib.parse import urlparse

from rag.answer.citations import iter_markers
from rag.conversations import ConversationInfo, Exchange
from rag.types import Answer, Article, Citation, FeedRefresh, FeedStatus, IngestReport, RelatedPassage, WireCopy

PLACEHOLDER = "Ask a question about the articles, or pick an example below."


def esc(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def safe_url(url: str | None) -> str | None:
    """Only http(s) links become clickable (no ``javascript:`` and friends)."""
    if not url:
        return None
    try:
        parsed = urlparse(url.strip())
    except ValueError:
        return None
    return url.strip() if parsed.scheme.lower() in ("http", "https") and parsed.netloc else None


def day(published_at: str | None) -> str:
    return (published_at or "")[:10]


INGEST_DATE_TIP = "No publication date was found in the article: this is the day it was added."


def shown_date(published_at: str | None, date_source: str | None) -> str:
    """The day as text: "added 2026-11-30" when it is only the day the article was added."""
    d = day(published_at)
    return f"added {d}" if d and date_source == "ingest" else d


def date_span(published_at: str | None, date_source: str | None, cls: str = "src-date") -> str:
    if not published_at:
        return ""
    if date_source == "ingest":
        return (f'<span class="{cls} ingest-date" title="{esc(INGEST_DATE_TIP)}">{esc(shown_date(published_at, date_source))}'
                f'<span class="sr-only"> (no publication date found)</span></span>')
    return f'<span class="{cls}">{esc(day(published_at))}</span>'


def _external(url: str, label_html: str, cls: str) -> str:
    return (f'<a class="{cls}" href="{esc(url)}" target="_blank" rel="noopener noreferrer nofollow">'
            f'{label_html}<span class="sr-only"> (opens in a new tab)</span> ↗</a>')


def meta_line(source: str | None, published_at: str | None, url: str | None, date_source: str | None = None) -> str:
    parts = [f'<span class="src-source">{esc(source)}</span>'] if source else []
    if published_at:
        parts.append(date_span(published_at, date_source))
    link = safe_url(url)
    if link:
        parts.append(_external(link, "original", "src-link"))
    return " · ".join(parts)


def also_published(copies: Sequence[WireCopy]) -> str:
    """ "Also published by" the other outlets that carried the same (wire) story, linked when http(s)."""
    if not copies:
        return ""
    items = []
    for c in copies:
        name = esc(c.source or c.title or c.url or c.article_id)
        link = safe_url(c.url)
        items.append(_external(link, name, "also-link") if link else f'<span class="also-name">{name}</span>')
    return f'<div class="also-by">Also published by {", ".join(items)}</div>'


def _highlight(text: str, start: int, end: int) -> str:
    return f'{esc(text[:start])}<mark class="cited">{esc(text[start:end])}</mark>{esc(text[end:])}'


def _lines(text_html: str) -> str:
    return text_html.replace("\n", "<br>")


def _span_attrs(article_id: str, start: int, end: int) -> str:
    """What the page script needs to open an article at a span."""
    return f'data-a="{esc(article_id)}" data-s="{int(start)}" data-e="{int(end)}"'


# -- markers --------------------------------------------------------------------
def marker_button(c: Citation) -> str:
    """A clickable ``[n]``: its accessible name says which source it opens."""
    label = f"Source [{c.n}]: {c.title}" + (f", {c.source}" if c.source else "")
    return (f'<button type="button" class="marker" data-n="{c.n}" {_span_attrs(c.article_id, c.start, c.end)} '
            f'aria-label="{esc(label)}" title="{esc(label)}">[{c.n}]</button>')


def linked_markers(text: str, citations: Sequence[Citation]) -> str:
    """``text`` escaped, each answer marker whose numbers all name a citation made a button.

    Markers pointing at no citation, and reference marks inside quoted text
    ("Putin[2]", see ``iter_markers``), stay text.
    """
    by_n = {c.n: c for c in citations}
    out, pos = [], 0
    for start, end, numbers in iter_markers(text):
        if not numbers or not all(n in by_n for n in numbers):
            continue
        out.append(esc(text[pos:start]))
        out.append("".join(marker_button(by_n[n]) for n in numbers))
        pos = end
    out.append(esc(text[pos:]))
    return _lines("".join(out))


def styled_markers(text: str) -> str:
    """Markers of text still being written: styled, not yet linked (their numbers are not final)."""
    out, pos = [], 0
    for start, end, numbers in iter_markers(text):
        out.append(esc(text[pos:start]))
        out.append("".join(f'<span class="marker-draft">[{n}]</span>' for n in numbers))
        pos = end
    out.append(esc(text[pos:]))
    return _lines("".join(out))


# -- one answer -------------------------------------------------------------------
def _same_question(a: str, b: str) -> bool:
    return " ".join(a.lower().split()).rstrip("?") == " ".join(b.lower().split()).rstrip("?")


def query_note(answer: Answer) -> str:
    """For a follow-up: the standalone question that was actually searched for."""
    if not answer.query or _same_question(answer.query, answer.question):
        return ""
    return f'<div class="query-note">Searched for: <q>{esc(answer.query)}</q></div>'


def short_answer_block(answer: Answer) -> str:
    sa = answer.short_answer
    if sa is None or not sa.text:
        return ""
    cite = next((c for c in answer.citations if c.n == sa.citation), None)
    marker = " " + marker_button(cite) if cite else ""
    return (f'<div class="short-answer"><span class="sa-label">Answer</span> '
            f'<strong class="sa-text">{esc(sa.text)}</strong>{marker}</div>')


def conflicting_block(answer: Answer) -> str:
    """The values the sources disagree on: value · outlet · date · [n]."""
    if not answer.conflicting:
        return ""
    by_n = {c.n: c for c in answer.citations}
    rows = []
    for v in answer.conflicting:
        parts = [f'<strong class="cv-value">{esc(v.value)}</strong>']
        if v.sources:
            parts.append(f'<span class="cv-source">{esc(", ".join(v.sources))}</span>')
        if v.published_at:
            parts.append(f'<span class="cv-date">{esc(day(v.published_at))}</span>')
        markers = "".join(marker_button(by_n[n]) for n in v.citations if n in by_n)
        if markers:
            parts.append(f'<span class="cv-cites">{markers}</span>')
        rows.append(f'<li>{" · ".join(parts)}</li>')
    return ('<div class="conflicting"><div class="cv-title">The sources give different values:</div>'
            f'<ul>{"".join(rows)}</ul></div>')


def scope_note(filters: dict | None) -> str:
    """Which part of the collection was searched, when the question was filtered."""
    text = describe_filters(filters)
    return f'<div class="scope-note">Searched only {esc(text)}</div>' if text else ""


def describe_filters(filters: dict | None) -> str:
    if not filters:
        return ""
    parts = []
    if filters.get("sources"):
        parts.append("in " + ", ".join(filters["sources"]))
    if filters.get("date_from") and filters.get("date_to"):
        parts.append(f"from {filters['date_from']} to {filters['date_to']}")
    elif filters.get("date_from"):
        parts.append(f"from {filters['date_from']} on")
    elif filters.get("date_to"):
        parts.append(f"up to {filters['date_to']}")
    if filters.get("article_ids"):
        n = len(filters["article_ids"])
        parts.append(f"in {n} chosen article{'s' if n != 1 else ''}")
    return " · ".join(parts)


def source_cards(citations: Sequence[Citation]) -> str:
    """One card per cited article (its quotes together): outlet, date, title, link, quotes."""
    groups: dict[str, list[Citation]] = {}
    for c in sorted(citations, key=lambda c: c.n):
        groups.setdefault(c.article_id, []).append(c)
    cards = []
    for aid, cites in groups.items():
        first = cites[0]
        ns = " ".join(str(c.n) for c in cites)
        quotes = "".join(
            f'<li class="src-quote" data-n="{c.n}"><span class="src-n">[{c.n}]</span> '
            f'<button type="button" class="quote-open" {_span_attrs(aid, c.start, c.end)} data-n="{c.n}">'
            f'“{esc(c.quote)}”</button></li>'
            for c in cites
        )
        cards.append(
            f'<div class="src-card" data-ns=" {ns} " {_span_attrs(aid, first.start, first.end)}>'
            f'<div class="src-head"><button type="button" class="src-open" {_span_attrs(aid, first.start, first.end)}>'
            f'{esc(first.title)}</button></div>'
            f'<div class="src-meta">{meta_line(first.source, first.published_at, first.url, first.date_source)}</div>'
            f'{also_published(first.also_published_by)}'
            f'<ul class="src-quotes">{quotes}</ul></div>'
        )
    return f'<div class="sources" role="group" aria-label="Sources">{"".join(cards)}</div>'


def related_cards(related: Sequence[RelatedPassage], limit: int = 3) -> str:
    if not related:
        return ""
    cards = "".join(
        f'<div class="src-card related" {_span_attrs(r.article_id, r.start, r.end)}>'
        f'<div class="src-head"><button type="button" class="src-open" {_span_attrs(r.article_id, r.start, r.end)}>'
        f'{esc(r.title)}</button></div>'
        f'<div class="src-meta">{meta_line(r.source, r.published_at, r.url, r.date_source)}</div>'
        f'{also_published(r.also_published_by)}'
        f'<p class="src-passage">{esc(r.text)}</p></div>'
        for r in related[:limit]
    )
    return ('<div class="sources related" role="group" aria-label="Closest passages">'
            f'<div class="sources-note">Closest passages in the articles:</div>{cards}</div>')


def copy_text(answer: Answer) -> str:
    """The answer as plain text with its numbered sources, for the clipboard."""
    lines = [answer.answer.strip()]
    if answer.citations:
        lines.append("")
        lines.append("Sources:")
        for c in answer.citations:
            meta = ", ".join(x for x in (c.source, shown_date(c.published_at, c.date_source)) if x)
            link = safe_url(c.url)
            lines.append(f"[{c.n}] {c.title}" + (f" ({meta})" if meta else "") + (f" {link}" if link else ""))
    return "\n".join(lines)


def answer_body(answer: Answer, filters: dict | None = None) -> str:
    """The answer: short answer first, then the text with its markers, the comparison, the sources."""
    parts = [short_answer_block(answer), query_note(answer)]
    text = linked_markers(answer.answer, answer.citations)
    if answer.abstained:
        parts.append(f'<p class="abstain"><span class="abstain-badge">No answer</span> {text}</p>')
    else:
        parts.append(f'<p class="answer">{text}</p>')
    parts.append(conflicting_block(answer))
    notes = []
    if answer.conflict and not answer.conflicting:
        notes.append("The articles give different figures; each is cited.")
    if answer.flagged:
        notes.append("The model's answer cites none of the passages: treat it as unsupported.")
    parts.extend(f'<p class="answer-note">⚠ {esc(n)}</p>' for n in notes)
    parts.append(scope_note(filters))
    if answer.citations:
        parts.append(source_cards(answer.citations))
    elif answer.related:
        parts.append(related_cards(answer.related))
    return "".join(p for p in parts if p)


# -- the conversation ----------------------------------------------------------------
def _actions(*buttons: str) -> str:
    return f'<div class="msg-actions">{"".join(buttons)}</div>'


def _button(act: str, label: str, extra: str = "") -> str:
    return f'<button type="button" class="act act-{act}" data-act="{act}"{extra}>{label}</button>'


def user_bubble(question: str, *, editable: bool = False) -> str:
    actions = _actions(_button("edit", "Edit", ' aria-label="Edit this question"')) if editable else ""
    return f'<div class="msg user" data-testid="user"><div class="bubble">{esc(question)}</div>{actions}</div>'


def exchange_bubble(ex: Exchange, *, last: bool) -> str:
    """The reply half of an exchange: an answer, or the text written before a stop."""
    if ex.answer is not None:
        body = answer_body(ex.answer, ex.filters)
        buttons = [_button("copy", "Copy", f' data-copy="{esc(copy_text(ex.answer))}" aria-label="Copy the answer"')]
    else:
        written = styled_markers(ex.partial) if ex.partial else '<span class="pending">before any text was written.</span>'
        body = f'<p class="stopped"><span class="stopped-badge">Stopped</span> {written}</p>'
        buttons = []
    if last:
        buttons.append(_button("regenerate", "Regenerate", ' aria-label="Regenerate: answer this question again"'))
    return f'<div class="msg bot" data-testid="bot"><div class="bubble">{body}</div>{_actions(*buttons) if buttons else ""}</div>'


def error_bubble(text: str) -> str:
    return f'<div class="msg bot" data-testid="bot"><div class="bubble"><p class="chat-error">⚠ {esc(text)}</p></div></div>'


def transcript(exchanges: Sequence[Exchange], *, pending: str | None = None, error: str | None = None,
               busy: bool = False) -> str:
    """The conversation: each question with its reply; ``pending`` is a question being answered.

    ``error`` is shown as the reply to the last question; actions (edit, regenerate)
    only on the last exchange and not while an answer is being written.
    """
    if not exchanges and pending is None:
        return f'<div class="transcript empty"><p class="placeholder">{esc(PLACEHOLDER)}</p></div>'
    rows = []
    for i, ex in enumerate(exchanges):
        last = i == len(exchanges) - 1 and pending is None and not busy
        rows.append(f'<div class="exchange" data-i="{i}">{user_bubble(ex.question, editable=last)}'
                    f'{exchange_bubble(ex, last=last)}</div>')
    if pending is not None:
        reply = error_bubble(error) if error else ""
        rows.append(f'<div class="exchange pending-q">{user_bubble(pending)}{reply}</div>')
    return f'<div class="transcript">{"".join(rows)}</div>'


def live_message(question: str | None, partial: str | None = None, *, note: str | None = None) -> str:
    """The question being answered and its answer so far (with a cursor), or a note while searching.

    Kept apart from :func:`transcript` so that streaming re-renders only this, never
    the earlier answers (nor the keyboard focus or hover in them).
    """
    if question is None:
        return ""
    if partial is None:
        inner = f'<span class="pending">{esc(note or "")}</span>'
    else:  # a note under a draft: e.g. the local model is still reading it
        inner = styled_markers(partial.lstrip()) + '<span class="cursor" aria-hidden="true">▍</span>'
        if note:
            inner += f'<div class="pending" role="status">{esc(note)}</div>'
    return (f'<div class="exchange live-exchange">{user_bubble(question)}'
            f'<div class="msg bot live" data-testid="bot-live" aria-busy="true"><div class="bubble">{inner}</div></div></div>')


READING_NOTE = "The local model is reading these sources…"


def searching_note(question: str, query: str | None) -> str:
    if query and not _same_question(query, question):
        return f"Searching the articles for “{query}”…"
    return "Searching the articles…"


# -- the article panel ------------------------------------------------------------------
EMPTY_ARTICLE = ('<div class="article-empty">Click a marker such as <span class="src-n">[1]</span> or a source '
                 'card to read the article here, with the cited passage highlighted.</div>')


def article_meta(article: Article, copies: Sequence[WireCopy] = ()) -> str:
    return (f'<div class="src-meta">{meta_line(article.source, article.published_at, article.url, article.date_source)}'
            f'</div>{also_published(copies)}')


def article_view(article: Article, start: int, end: int, copies: Sequence[WireCopy] = ()) -> str:
    """The full cleaned article with [start, end) marked (the page scrolls it into view)."""
    text = article.text
    body = _highlight(text, start, end) if 0 <= start < end <= len(text) else esc(text)
    return (
        f'<div class="article-view" data-a="{esc(article.article_id)}">'
        f'<h2 class="article-title">{esc(article.title)}</h2>'
        f'{article_meta(article, copies)}'
        f'<div class="article-body" tabindex="0" role="region" aria-label="Article text">{body}</div></div>'
    )


def notice(text: str, kind: str = "note") -> str:
    return f'<div class="notice notice-{kind}">{"⚠ " if kind == "error" else ""}{esc(text)}</div>'


# -- conversations -------------------------------------------------------------------------
def _when(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%d %b %H:%M")
    except ValueError:
        return ""


def conversation_list(items: Sequence[ConversationInfo], current: str | None) -> str:
    if not items:
        return '<p class="conv-empty">Your conversations are kept here.</p>'
    rows = []
    for c in items:
        cur = ' aria-current="true"' if c.conversation_id == current else ""
        n = f"{c.exchanges} question{'s' if c.exchanges != 1 else ''}"
        rows.append(
            f'<li><button type="button" class="conv-open" data-id="{esc(c.conversation_id)}"{cur}>'
            f'<span class="conv-title">{esc(c.title)}</span>'
            f'<span class="conv-meta">{esc(_when(c.updated_at))} · {n}</span></button></li>'
        )
    return f'<ul class="conv-list">{"".join(rows)}</ul>'


# -- library ---------------------------------------------------------------------------------
def library_table(rows: Sequence[tuple[Article, int]], *, total: int | None = None) -> str:
    """The articles as a sortable table (the page script sorts it) with a checkbox each."""
    total = len(rows) if total is None else total
    if not total:
        return '<div class="library-empty">The index is empty: add article files below.</div>'
    shown = f" (showing {len(rows)})" if len(rows) != total else ""
    body = "".join(
        f'<tr data-id="{esc(a.article_id)}" data-title="{esc(a.title.lower())}" data-source="{esc((a.source or "").lower())}" '
        f'data-date="{esc(day(a.published_at) if a.has_real_date else "")}" data-passages="{n}">'
        f'<td><input type="checkbox" class="lib-pick" value="{esc(a.article_id)}" aria-label="Select {esc(a.title)}"></td>'
        f'<td class="lib-title"><button type="button" class="lib-preview" data-id="{esc(a.article_id)}">{esc(a.title)}</button></td>'
        f'<td>{esc(a.source or "")}</td><td class="lib-date">{date_span(a.published_at, a.date_source, "lib-day")}</td><td class="num">{n}</td></tr>'
        for a, n in rows
    )
    sort_th = ''.join(
        f'<th scope="col" aria-sort="none"><button type="button" class="sort" data-key="{key}" data-type="{kind}">{label}</button></th>'
        for key, kind, label in (("title", "text", "Title"), ("source", "text", "Outlet"),
                                 ("date", "text", "Date"), ("passages", "number", "Passages"))
    )
    table = (
        f'<table class="library"><caption class="sr-only">Indexed articles</caption><thead><tr>'
        f'<th scope="col"><input type="checkbox" class="lib-all" aria-label="Select all shown articles"></th>{sort_th}'
        f'</tr></thead><tbody>{body}</tbody></table>'
    ) if rows else '<p class="library-empty">No article matches these filters.</p>'
    return (
        f'<div class="library-count">{total} articles · {sum(n for _, n in rows)} passages{shown}</div>'
        f'<div class="library-wrap">{table}</div>'
        '<div class="lib-actions"><button type="button" class="lib-delete" disabled>Delete selected…</button></div>'
    )


def article_preview(article: Article, passages: int, copies: Sequence[WireCopy] = ()) -> str:
    return (
        '<div class="preview">'
        f'<h2 class="article-title">{esc(article.title)}</h2>'
        f'{article_meta(article, copies)}'
        f'<div class="preview-facts">{passages} passages · id <code>{esc(article.article_id)}</code>'
        f'{" · from " + esc(Path(article.origin).name) if article.origin else ""}</div>'
        f'<div class="article-body preview-body" tabindex="0" role="region" aria-label="Article preview">{esc(article.text)}</div></div>'
    )


EMPTY_PREVIEW = '<div class="article-empty">Click an article\'s title to preview it here.</div>'


def delete_question(articles: Sequence[Article], undo_minutes: int) -> str:
    titles = "".join(f"<li>{esc(a.title)}</li>" for a in articles[:8])
    more = f"<li>… and {len(articles) - 8} more</li>" if len(articles) > 8 else ""
    n = len(articles)
    return (f'<div class="confirm-text"><strong>Delete {n} article{"s" if n != 1 else ""}?</strong>'
            f'<ul>{titles}{more}</ul>You can undo this for {undo_minutes} minutes.</div>')


def removed_message(articles: Sequence[Article], until: str) -> str:
    titles = ", ".join(f"<b>{esc(a.title)}</b>" for a in articles[:5]) + (" …" if len(articles) > 5 else "")
    return f'<div class="ingest-report">Deleted {len(articles)}: {titles}. Undo is possible until {esc(until)}.</div>'


def ingest_report(report: IngestReport) -> str:
    """A line per file, record or URL in plain words: added, updated, already present, rejected (why)."""
    items = []
    for r in report.results:
        name = esc(r.path if "://" in r.path else Path(r.path).name)  # a URL is shown whole
        if r.status == "added":
            items.append(f'<li class="ing-added">✓ added: <b>{esc(r.title)}</b> ({r.passages} passages) <span class="file">{name}</span></li>')
        elif r.status == "updated":
            items.append(f'<li class="ing-added">↻ updated: <b>{esc(r.title)}</b> (a new version replaced the one '
                         f'indexed before) <span class="file">{name}</span></li>')
        elif r.status == "duplicate":
            items.append(f'<li class="ing-duplicate">= already present: <b>{esc(r.title)}</b> <span class="file">{name}</span></li>')
        elif r.status == "skipped":
            items.append(f'<li class="ing-skipped">– skipped: <span class="file">{name}</span>: {esc(r.reason)}</li>')
        else:
            items.append(f'<li class="ing-rejected">✗ rejected: <span class="file">{name}</span>: {esc(r.reason)}</li>')
    return f'<div class="ingest-report"><ul>{"".join(items)}</ul><div class="ing-summary">{esc(report.summary())}</div></div>'


def status_line(n_articles: int, n_passages: int) -> str:
    return f'<span class="status-ok">{n_articles} articles · {n_passages} passages indexed</span>'


def status_message(text: str, *, error: bool = False) -> str:
    return f'<span class="status-error">⚠ {esc(text)}</span>' if error else f'<span class="status-busy">{esc(text)}</span>'


def choices_of(rows: Sequence[tuple[Article, int]]) -> tuple[list[str], list[tuple[str, str]]]:
    """The outlets, and (label, id) per article, for the filter pickers."""
    sources = sorted({a.source for a, _ in rows if a.source}, key=str.lower)
    articles = [(_short(a.title) + (f" ({a.source})" if a.source else ""), a.article_id) for a, _ in rows]
    return sources, articles


def _short(text: str, n: int = 70) -> str:
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"



# -- feeds ---------------------------------------------------------------------------------
def _every(seconds: int) -> str:
    for unit, name in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= unit and seconds % unit == 0:
            n = seconds // unit
            return f"every {name}" if n == 1 else f"every {n} {name}s"
    return f"every {seconds} seconds"


def _plain(error: str) -> str:
    """An engine error as a sentence: first letter up, one full stop."""
    text = " ".join(error.split())
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def feed_list(feeds: Sequence[FeedStatus]) -> str:
    """Each feed: title and address, how often, the last refresh and what it brought, the
    last error, when it is due next; buttons to refresh it now and to remove it."""
    if not feeds:
        return '<p class="feeds-empty">No feeds yet. Add an RSS or Atom feed, or a news sitemap, below.</p>'
    rows = []
    for f in feeds:
        name = f.title or f.url
        if f.last_refresh:
            brought = f"{f.last_new_items} new" + (f", {f.last_updated_items} updated" if f.last_updated_items else "")
            last = f"last checked {_when(f.last_refresh)}: {brought}"
        else:
            last = "not checked yet"
        facts = [_every(f.every_s), last]
        if f.next_due:
            facts.append(f"next {_when(f.next_due)}")
        error = (f'<p class="feed-error">⚠ Last time: {esc(_plain(f.last_error))}</p>' if f.last_error else "")
        link = safe_url(f.url)
        address = _external(link, esc(f.url), "feed-url") if link else f'<span class="feed-url">{esc(f.url)}</span>'
        kind = f' <span class="feed-kind">({esc(f.kind.upper() if f.kind in ("rss", "atom") else f.kind)})</span>' if f.kind else ""
        rows.append(
            f'<li class="feed" data-url="{esc(f.url)}"><div class="feed-name">{esc(name)}{kind}</div>'
            f'<div class="feed-addr">{address}</div>'
            f'<div class="feed-facts">{esc(" · ".join(facts))} · {f.items_seen} items seen</div>{error}'
            f'<div class="feed-actions">'
            f'<button type="button" class="feed-refresh" data-url="{esc(f.url)}" '
            f'aria-label="Refresh now: {esc(name)}">Refresh now</button>'
            f'<button type="button" class="feed-remove" data-url="{esc(f.url)}" '
            f'aria-label="Remove feed: {esc(name)}">Remove…</button></div></li>'
        )
    return f'<ul class="feed-list" aria-label="Feeds">{"".join(rows)}</ul>'


def refresh_report(feeds: Sequence[FeedRefresh], ingest: IngestReport, summary: str) -> str:
    """What a refresh did, feed by feed, in plain words."""
    items = []
    for f in feeds:
        if f.status == "error":
            items.append(f'<li class="ing-rejected">✗ {esc(f.url)}: could not refresh: {esc(_plain(f.error or "unknown error"))}</li>')
            continue
        what = "nothing new (the feed has not changed)" if f.status == "not-modified" else (
            f"{f.new_items} new, {f.updated_items} updated, {f.unchanged_items} unchanged")
        items.append(f'<li class="ing-added">✓ {esc(f.url)}: {esc(what)}</li>')
        items.extend(f'<li class="ing-rejected">✗ item {esc(p.url)}: {esc(p.reason)}</li>' for p in f.item_problems[:10])
        if len(f.item_problems) > 10:
            items.append(f'<li class="ing-rejected">… and {len(f.item_problems) - 10} more items failed</li>')
    added = "".join(f'<li class="ing-added">✓ added: <b>{esc(r.title)}</b></li>' for r in ingest.added[:10])
    return (f'<div class="ingest-report"><ul>{"".join(items)}{added}</ul>'
            f'<div class="ing-summary">{esc(summary)}</div></div>')


def feed_question(feed: FeedStatus | None, url: str) -> str:
    name = (feed.title if feed and feed.title else None) or url
    return (f'<div class="confirm-text"><strong>Remove the feed “{esc(name)}”?</strong> '
            'Its articles stay in the library; no new ones are fetched from it.</div>')
