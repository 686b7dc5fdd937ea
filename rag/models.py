"""Typed data that crosses module boundaries."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Article:
    """A cleaned article. ``text`` is the cleaned body every passage offset points into."""

    article_id: str
    title: str
    text: str
    source: str | None = None
    url: str | None = None
    published_at: str | None = None  # ISO 8601 date or datetime, as given
    author: str | None = None
    origin: str | None = None  # file the article came from (plus record number)

    def meta(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("text")
        return d


@dataclass(frozen=True)
class Passage:
    """A verbatim span ``article.text[start:end]``."""

    passage_id: int  # row in the vector index
    article_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class SearchHit:
    rank: int
    score: float
    passage: Passage
    article: Article  # the article's metadata; ``article.text`` is the full cleaned text

    def to_dict(self) -> dict[str, Any]:
        a = self.article
        return {
            "rank": self.rank,
            "score": round(float(self.score), 6),
            "text": self.passage.text,
            "passage_id": self.passage.passage_id,
            "article_id": a.article_id,
            "title": a.title,
            "source": a.source,
            "url": a.url,
            "published_at": a.published_at,
            "author": a.author,
            "start": self.passage.start,
            "end": self.passage.end,
        }


@dataclass
class FileResult:
    """What happened to one input file (or JSON record) during ingest."""

    path: str
    status: str  # "added" | "duplicate" | "rejected"
    reason: str | None = None
    article_id: str | None = None
    title: str | None = None
    passages: int = 0


@dataclass
class IngestReport:
    results: list[FileResult] = field(default_factory=list)

    @property
    def added(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "added"]

    @property
    def duplicates(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "duplicate"]

    @property
    def rejected(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "rejected"]


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation."""

    question: str
    answer: str
    query: str | None = None  # the standalone question it was rewritten to, if any
