"""HTML for the browser app, built from the engine's typed results.

Everything that comes from an article (title, source, quote, passage, body) or a
user (question) is text: it is passed through :func:`html.escape` before it is put
into markup, so an article titled ``<img src=x onerror=...>`` shows those characters
and runs nothing. Only markup written here is ever rendered.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from urllib.parse import urlparse

from rag.answer.citations import iter_markers
from rag.types import Article, IngestReport


def esc(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def safe_url(url: str | None) -> str | None:
    """Only http(s) links become clickable (no ``javascript:`` and friends)."""
    if not url:
        return None
    try:
        scheme = urlparse(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in ("http", "https") else None


def meta_line(source: str | None, published_at: str | None, url: str | None) -> str:
    parts = [f'<span class="src-source">{esc(source)}</span>'] if source else []
    if published_at:
        parts.append(f'<span class="src-date">{esc(published_at[:10])}</span>')
    link = safe_url(url)
    if link:
        parts.append(f'<a class="src-link" href="{esc(link)}" target="_blank" rel="noopener noreferrer nofollow">link ↗</a>')
    return " · ".join(parts)


def _highlight(text: str, start: int, end: int, *, mark_class: str = "cited") -> str:
    return f'{esc(text[:start])}<mark class="{mark_class}">{esc(text[start:end])}</mark>{esc(text[end:])}'


def _lines(text_html: str) -> str:
    return text_html.replace("\n", "<br>")


# -- chat messages -------------------------------------------------------------
def user_message(question: str) -> str:
    return esc(question)


def _markers(text_html: str, n_citations: int | None = None) -> str:
    """Answer markers styled as markers; reference marks inside quotes stay text."""
    out, pos = [], 0
    for start, end, numbers in iter_markers(text_html):
        if n_citations is not None and not all(1 <= n <= n_citations for n in numbers):
            continue
        out.append(text_html[pos:start])
        out.append("".join(f'<span class="marker">[{n}]</span>' for n in numbers))
        pos = end
    out.append(text_html[pos:])
    return "".join(out)


def streaming_message(partial: str) -> str:
    return _lines(_markers(esc(partial))) + '<span class="cursor">▍</span>'


def pending_message(text: str) -> str:
    return f'<span class="pending">{esc(text)}</span>'


def error_message(text: str) -> str:
    return f'<span class="chat-error">⚠ {esc(text)}</span>'


def answer_message(answer) -> str:
    body = _lines(_markers(esc(answer.answer), len(answer.citations)))
    if answer.abstained:
        return f'<span class="abstain"><span class="abstain-badge">no answer</span> {body}</span>'
    notes = []
    if answer.conflict:
        notes.append("The articles give different figures; each is cited.")
    if answer.flagged:
        notes.append("The model's answer cites none of the passages: treat it as unsupported.")
    note = "".join(f'<br><span class="answer-note">⚠ {esc(n)}</span>' for n in notes)
    return f'<span class="answer">{body}</span>{note}'


# -- sources panel ---------------------------------------------------------------
EMPTY_SOURCES = '<div class="sources-empty">Sources of the latest answer appear here.</div>'
SEARCHING_SOURCES = '<div class="sources-empty">Looking for sources…</div>'
EMPTY_ARTICLE = '<div class="article-empty">Pick a source above to read the whole article.</div>'


def source_items(answer) -> list[dict]:
    """What the source picker can open: the citations, or the closest passages of an abstention."""
    if answer.citations:
        return [
            {"label": f"[{c.n}] {c.title}", "article_id": c.article_id, "start": c.start, "end": c.end}
            for c in answer.citations
        ]
    return [
        {"label": f"Closest {i}: {r.title}", "article_id": r.article_id, "start": r.start, "end": r.end}
        for i, r in enumerate(answer.related[:3], 1)
    ]


def sources_panel(answer, get_article) -> str:
    """Citation cards ([n], title, source, date, link, passage with the cited sentence marked)."""
    if answer.citations:
        cards = []
        for c in answer.citations:
            passage = None
            try:
                text = get_article(c.article_id).text
            except Exception:  # removed since the answer was made: fall back to the quote
                text = None
            ps = c.passage_start if c.passage_start is not None else c.start
            pe = c.passage_end if c.passage_end is not None else c.end
            if text is not None and 0 <= ps <= c.start <= c.end <= pe <= len(text):
                passage = _highlight(text[ps:pe], c.start - ps, c.end - ps)
            if passage is None:
                passage = f'<mark class="cited">{esc(c.quote)}</mark>'
            cards.append(
                f'<div class="src-card" data-n="{c.n}">'
                f'<div class="src-head"><span class="marker">[{c.n}]</span> <span class="src-title">{esc(c.title)}</span></div>'
                f'<div class="src-meta">{meta_line(c.source, c.published_at, c.url)}</div>'
                f'<div class="src-passage">{passage}</div></div>'
            )
        return f'<div class="sources">{"".join(cards)}</div>'
    if answer.related:
        cards = [
            f'<div class="src-card related">'
            f'<div class="src-head"><span class="src-title">{esc(r.title)}</span></div>'
            f'<div class="src-meta">{meta_line(r.source, r.published_at, r.url)}</div>'
            f'<div class="src-passage">{esc(r.text)}</div></div>'
            for r in answer.related[:3]
        ]
        return (
            '<div class="sources"><div class="sources-note">No answer in the articles. Closest passages:</div>'
            f'{"".join(cards)}</div>'
        )
    return '<div class="sources-empty">No sources for this answer.</div>'


def article_view(article: Article, start: int, end: int) -> str:
    """The full cleaned article with [start, end) marked (the app scrolls it into view)."""
    text = article.text
    if 0 <= start <= end <= len(text):
        body = _highlight(text, start, end)
    else:
        body = esc(text)
    return (
        '<div class="article-view">'
        f'<div class="article-title">{esc(article.title)}</div>'
        f'<div class="src-meta">{meta_line(article.source, article.published_at, article.url)}</div>'
        f'<div class="article-body">{body}</div></div>'
    )


# -- library -----------------------------------------------------------------------
def library_table(rows: list[tuple[Article, int]]) -> str:
    if not rows:
        return '<div class="library-empty">The index is empty: add article files below.</div>'
    body = "".join(
        f"<tr><td class='lib-title'>{esc(a.title)}</td><td>{esc(a.source or '')}</td>"
        f"<td>{esc((a.published_at or '')[:10])}</td><td class='num'>{n}</td><td class='lib-id'><code>{esc(a.article_id)}</code></td></tr>"
        for a, n in rows
    )
    total = sum(n for _, n in rows)
    return (
        f'<div class="library-count">{len(rows)} articles · {total} passages</div>'
        '<div class="library-wrap"><table class="library"><thead><tr><th>Title</th><th>Source</th><th>Date</th>'
        f"<th>Passages</th><th>ID</th></tr></thead><tbody>{body}</tbody></table></div>"
    )


def ingest_report(report: IngestReport) -> str:
    items = []
    for r in report.results:
        name = esc(Path(r.path).name)
        if r.status == "added":
            items.append(f'<li class="ing-added">✓ added: <b>{esc(r.title)}</b> ({r.passages} passages) <span class="file">{name}</span></li>')
        elif r.status == "duplicate":
            items.append(f'<li class="ing-duplicate">= already present: <b>{esc(r.title)}</b> <span class="file">{name}</span></li>')
        else:
            items.append(f'<li class="ing-rejected">✗ rejected: <span class="file">{name}</span>: {esc(r.reason)}</li>')
    summary = (f"{len(report.added)} added, {len(report.duplicates)} already present, "
               f"{len(report.rejected)} rejected")
    return f'<div class="ingest-report"><ul>{"".join(items)}</ul><div class="ing-summary">{summary}</div></div>'
