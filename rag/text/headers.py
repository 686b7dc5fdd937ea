"""The context line (title | source | date) embedded and indexed with every passage.

Ingest embeds it, BM25 indexes it, and the LLM prompt labels each passage with it:
one owner, so the three always agree.
"""

from __future__ import annotations

from ..types import Article

# Long titles are cut so the header stays well inside the chunker's header budget.
MAX_HEADER_TITLE_CHARS = 140


def header_for(title: str | None, source: str | None, published_at: str | None) -> str:
    """Context line embedded and indexed with every passage of an article."""
    if title and len(title) > MAX_HEADER_TITLE_CHARS:
        title = title[:MAX_HEADER_TITLE_CHARS].rsplit(" ", 1)[0]
    parts = [p for p in (title, source, (published_at or "")[:10] or None) if p]
    return " | ".join(parts)


def article_header(meta: Article) -> str:
    # The ingest date stands in for a missing publication date in listings and date
    # filters, but says nothing about the content: not embedded, so an article's
    # vectors do not depend on the day it was added.
    date = meta.published_at if meta.date_source != "ingest" else None
    return header_for(meta.title, meta.source, date)


def index_text(meta: Article, passage_text: str) -> str:
    """What is embedded and keyword-indexed for a passage: header + verbatim text."""
    head = article_header(meta)
    return f"{head}\n{passage_text}" if head else passage_text
