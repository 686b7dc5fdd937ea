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
    answer_mode: Literal["extractive", "llamacpp", "openai"] | None = Field(
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


class ArticleMeta(BaseModel):
    model_config = ConfigDict(extra="allow")
    article_id: str
    title: str
    source: str | None
    url: str | None
    published_at: str | None
    author: str | None
    origin: str | None
    passages: int


class ArticleOut(ArticleMeta):
    text: str = Field(description="the cleaned text every offset points into")


class ArticleList(BaseModel):
    count: int
    articles: list[ArticleMeta]


class FileResultOut(BaseModel):
    file: str = Field(description="the uploaded file's name (plus the record, for JSON/JSONL)")
    status: Literal["added", "duplicate", "rejected", "skipped"]
    reason: str | None = None
    article_id: str | None = None
    title: str | None = None
    passages: int = 0


class IngestOut(BaseModel):
    summary: str
    added: int
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
