"""Request and response bodies of the REST routes (pydantic: validated in, documented in /docs).

The answer itself is the engine's typed :class:`rag.types.Answer`, used as the
response model as it is, so the API shows every field the engine adds.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# A question is a sentence or two; anything this long is a mistake, not a question.
MAX_QUESTION_CHARS = 4000
# Pages fetched by one request (each is fetched politely, one host at a time).
MAX_URLS = 100


class Strict(BaseModel):
    """Unknown fields are an error (a misspelt setting must not be ignored silently)."""

    model_config = ConfigDict(extra="forbid")


class HistoryTurn(Strict):
    """An earlier exchange: the user's question and the answer given."""

    question: str
    answer: str = ""


class ContentPart(BaseModel):
    """A part of a message's content, as OpenAI clients send it (only text parts are read)."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class Message(BaseModel):
    """A chat message (OpenAI's shape; fields other than role and content are ignored)."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None


class AskSettings(Strict):
    """Per-request settings; the server's defaults for the rest."""

    top_k: int | None = Field(None, ge=1, le=100, description="passages to retrieve")
    retrieval_mode: Literal["hybrid", "dense", "bm25"] | None = None
    answer_mode: Literal["extractive", "local", "llamacpp", "openai"] | None = Field(
        None, description="an LLM mode only when the server has that model configured")
    mmr: bool | None = Field(None, description="diversify the passages (maximal marginal relevance)")


class FiltersIn(Strict):
    """Restrict retrieval to some articles, sources (case-insensitive) or days (inclusive)."""

    sources: list[str] | None = None
    article_ids: list[str] | None = None
    since: date | None = None
    until: date | None = None


class AskRequest(Strict):
    question: str = Field(max_length=MAX_QUESTION_CHARS)
    history: list[HistoryTurn] | list[Message] = Field(
        default_factory=list,
        description="the conversation so far, oldest first: [{question, answer}] or chat messages [{role, content}]")
    settings: AskSettings | None = None
    filters: FiltersIn | None = None
    stream: bool = Field(False, description="send Server-Sent Events: query, passages, text, sources, done")


class SearchHitOut(BaseModel):
    """A ranked passage: ``text == cleaned_article_text[start:end]``."""

    model_config = ConfigDict(extra="allow")
    rank: int
    score: float
    text: str
    passage_id: int
    article_id: str
    title: str
    source: str | None
    url: str | None
    published_at: str | None
    author: str | None
    start: int
    end: int


class SearchOut(BaseModel):
    query: str
    hits: list[SearchHitOut]
    took_ms: float


class WireCopyOut(BaseModel):
    """Another outlet's copy of the same (wire) story."""

    article_id: str
    source: str | None
    url: str | None
    title: str
    published_at: str | None = None


class ArticleMeta(BaseModel):
    model_config = ConfigDict(extra="allow")
    article_id: str
    title: str
    source: str | None
    url: str | None
    published_at: str | None
    date_source: str | None = Field(
        None, description="where published_at came from: metadata, feed, sitemap, dateline, json, or ingest "
                          "(none found: the day the article was added)")
    author: str | None
    origin: str | None
    canonical_url: str | None = Field(None, description="the page's own canonical URL (web articles)")
    fetched_at: str | None = Field(None, description="when the page was fetched (ISO 8601 UTC; web articles)")
    also_published_by: list[WireCopyOut] = Field(default_factory=list,
                                                 description="other outlets' copies of the same wire story")
    passages: int


class ArticleOut(ArticleMeta):
    text: str = Field(description="the cleaned text every offset points into")


class ArticleList(BaseModel):
    count: int
    articles: list[ArticleMeta]


class UrlsIn(Strict):
    """Article pages to fetch and add (http and https only)."""

    urls: list[str] = Field(min_length=1, max_length=MAX_URLS, description="the pages' addresses")


class FileResultOut(BaseModel):
    file: str | None = Field(None, description="the uploaded file's name (plus the record, for JSON/JSONL)")
    url: str | None = Field(None, description="the address, for an article added by URL")
    status: Literal["added", "updated", "duplicate", "rejected", "skipped"] = Field(
        description="updated: a new version of an indexed article (same URL or feed item) replaced it")
    reason: str | None = None
    article_id: str | None = None
    title: str | None = None
    passages: int = 0


class IngestOut(BaseModel):
    summary: str
    added: int
    updated: int = 0
    duplicates: int
    rejected: int
    results: list[FileResultOut]


class Removed(BaseModel):
    removed: ArticleMeta


class Health(BaseModel):
    status: Literal["ok", "starting", "error"]
    ready: bool
    message: str


class Stats(BaseModel):
    articles: int
    passages: int
    sources: dict[str, int] = Field(description="articles per source")
    generation: int
    embedding_model: str
    index_type: str
    updated_at: float = Field(description="when the live index generation was written (Unix time)")


class FeedIn(Strict):
    url: str = Field(description="an RSS or Atom feed, or a news sitemap (http/https)")
    every: str | None = Field(None, description='refresh interval: "15m", "2h", "1d" (default: RAG_FEED_EVERY, 30m)')


class FeedOut(BaseModel):
    """A subscribed feed and how its last refresh went (times are ISO 8601 UTC)."""

    url: str
    every_s: int = Field(description="refresh interval in seconds")
    title: str | None = None
    kind: str | None = Field(None, description="rss, atom or sitemap")
    added_at: str | None = None
    last_refresh: str | None = None
    last_new_items: int = 0
    last_updated_items: int = 0
    last_error: str | None = Field(None, description="why the last refresh (or some of its items) failed")
    next_due: str | None = None
    items_seen: int = 0


class FeedList(BaseModel):
    count: int
    feeds: list[FeedOut]


class FeedRemoved(BaseModel):
    removed: str = Field(description="the feed's URL (its articles stay in the index)")


class RefreshIn(Strict):
    url: str | None = Field(None, description="only this feed (default: every feed)")


class ItemProblemOut(BaseModel):
    url: str
    reason: str


class FeedRefreshOut(BaseModel):
    url: str
    status: Literal["ok", "not-modified", "error"]
    new_items: int = 0
    updated_items: int = 0
    unchanged_items: int = 0
    error: str | None = None
    item_problems: list[ItemProblemOut] = Field(default_factory=list)


class RefreshOut(BaseModel):
    summary: str
    seconds: float
    feeds: list[FeedRefreshOut]
    ingest: IngestOut = Field(description="what happened to each fetched item")
