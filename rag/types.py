"""Typed data that crosses module boundaries: articles, passages, hits, answers."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, fields
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
    # Where ``published_at`` came from: "metadata" (the page's HTML), "feed" (the feed
    # item), "sitemap", "dateline" (a line in the text), "json" (a record field) or
    # "ingest" (none found: the day it was added, marked as such). None: not recorded.
    date_source: str | None = None
    # Provenance of an article fetched from the web (see docs/news-sources.md).
    canonical_url: str | None = None  # the page's own canonical URL (same site), else the URL fetched
    feed_item_id: str | None = None  # the feed item's id/guid, when it came from a feed
    fetched_at: str | None = None  # ISO 8601 UTC time of the fetch
    # An update replaced an earlier version: that version's text hash and time.
    previous_hash: str | None = None
    previous_at: str | None = None
    # Wire copies: the article id that names the group of near-identical copies this
    # article belongs to (None: its own group).
    group_id: str | None = None

    def meta(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("text")
        return d

    @property
    def group(self) -> str:
        """The key of its wire-copy group (its own id when it is in none)."""
        return self.group_id or self.article_id

    @property
    def has_real_date(self) -> bool:
        """A publication date found in the article or its metadata (not the ingest date)."""
        return bool(self.published_at) and self.date_source != "ingest"


@dataclass(frozen=True)
class WireCopy:
    """Another outlet's copy of the same (wire) story: "also published by"."""

    article_id: str
    source: str | None
    url: str | None
    title: str
    published_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    also_published_by: tuple[WireCopy, ...] = ()  # the other copies of its wire story

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
            "date_source": a.date_source,
            "also_published_by": [c.to_dict() for c in self.also_published_by],
        }


@dataclass
class FileResult:
    """What happened to one input file (or JSON record) during ingest."""

    path: str
    # "added" | "updated" (a new version of an indexed article replaced it) | "duplicate"
    # | "rejected" | "skipped" (in a folder: hidden, unsupported, bad link)
    status: str
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
    def updated(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "updated"]

    @property
    def duplicates(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "duplicate"]

    @property
    def rejected(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "rejected"]

    @property
    def skipped(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "skipped"]

    def summary(self) -> str:
        """One line: how many files or records were added, already present, rejected, skipped."""
        line = f"{len(self.added)} added, "
        if self.updated:
            line += f"{len(self.updated)} updated, "
        line += f"{len(self.duplicates)} already present, {len(self.rejected)} rejected"
        if self.skipped:
            reasons = Counter(r.reason for r in self.skipped)
            line += "; skipped in folders: " + ", ".join(f"{n} {why}" for why, n in reasons.most_common())
        return line


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation."""

    question: str
    answer: str
    query: str | None = None  # the standalone question it was rewritten to, if any
    short_answer: str | None = None  # the answer's short answer, what a follow-up's "there" or "he" often means

    @classmethod
    def of(cls, question: str, answer: "Answer") -> "Turn":
        """The turn a question and its answer leave in a conversation."""
        return cls(question, answer.answer, answer.query, answer.short_answer.text if answer.short_answer else None)


@dataclass(frozen=True)
class Citation:
    """A numbered marker's target: a verbatim span ``quote == article.text[start:end]``."""

    n: int
    article_id: str
    title: str
    source: str | None
    url: str | None
    published_at: str | None
    quote: str
    start: int
    end: int
    passage_id: int | None = None
    # The passage the quote was found in, so a UI can show it with the quote highlighted.
    passage_start: int | None = None
    passage_end: int | None = None
    also_published_by: list[WireCopy] = field(default_factory=list)  # other outlets' copies of the story
    date_source: str | None = None  # where published_at came from ("ingest": only the day it was added)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RelatedPassage:
    rank: int
    score: float
    article_id: str
    title: str
    source: str | None
    url: str | None
    published_at: str | None
    text: str
    start: int
    end: int
    passage_id: int
    also_published_by: list[WireCopy] = field(default_factory=list)
    date_source: str | None = None  # as on Citation

    @classmethod
    def from_hit(cls, hit: SearchHit) -> "RelatedPassage":
        a, p = hit.article, hit.passage
        return cls(hit.rank, round(float(hit.score), 6), a.article_id, a.title, a.source, a.url, a.published_at,
                   p.text, p.start, p.end, p.passage_id, list(hit.also_published_by), a.date_source)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ShortAnswer:
    """The name, place, date or figure that answers a factoid question.

    A verbatim span of citation ``citation``'s quote: ``text ==
    article.text[start:end]`` for that citation's article.
    """

    text: str
    citation: int  # the n of the citation whose quote holds it
    start: int
    end: int
    kind: str = "other"  # what was asked for: person, place, date, number, organisation, name, ...


@dataclass(frozen=True)
class ConflictingValue:
    """One of the values the sources give for what was asked, where they disagree."""

    value: str  # verbatim span of the cited quote(s)
    citations: list[int]  # the n of each citation that gives this value
    sources: list[str]  # their outlets (titles when no outlet is known), in citation order
    published_at: str | None = None  # the earliest date among them


@dataclass
class Answer:
    question: str
    query: str  # the standalone question used for retrieval (differs from question for a follow-up)
    answer: str  # text with [n] markers
    citations: list[Citation]
    abstained: bool
    related: list[RelatedPassage] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # stage -> milliseconds
    answerer: str = "extractive"
    flagged: bool = False  # an LLM answer left with no valid citation
    conflict: bool = False  # the articles disagree on what was asked
    short_answer: ShortAnswer | None = None  # factoid questions: the answer itself, cited
    conflicting: list[ConflictingValue] = field(default_factory=list)  # each value when conflict
    confidence: float | None = None  # extractive: the evidence strength compared with the abstention threshold
    multi_article: bool = False  # extractive: answered with one sentence per outlet or clue, side by side
    evidence: dict[str, float] = field(default_factory=dict)  # extractive: the features behind confidence
    # The period a time-aware question covered ("last week: 13–19 Oct 2025"), or None.
    period: str | None = None
    # Answer mode "local": the reader model's raw reply and what decided the answer
    # ("grounded", "model-none", "unsupported", ...; see rag/answer/reader.py).
    reader: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["timings"] = {k: round(v, 2) for k, v in self.timings.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Answer":
        """The inverse of :meth:`to_dict` (saved conversations read answers back with it).

        Keys this version does not know are ignored, so a record written by a newer
        version still reads.
        """
        def build(kind, value):
            names = {f.name for f in fields(kind)}
            data = {k: v for k, v in value.items() if k in names}
            if "also_published_by" in names:
                data["also_published_by"] = [build(WireCopy, w) for w in value.get("also_published_by") or []]
            return kind(**data)

        names = {f.name for f in fields(cls)}
        data = {k: v for k, v in d.items() if k in names}
        data["citations"] = [build(Citation, c) for c in d.get("citations") or []]
        data["related"] = [build(RelatedPassage, r) for r in d.get("related") or []]
        data["conflicting"] = [build(ConflictingValue, c) for c in d.get("conflicting") or []]
        short = d.get("short_answer")
        data["short_answer"] = build(ShortAnswer, short) if short else None
        return cls(**data)


@dataclass
class FeedStatus:
    """A subscribed feed (RSS, Atom or news sitemap) and how its last refresh went."""

    url: str
    every_s: int  # refresh interval in seconds
    title: str | None = None
    kind: str | None = None  # "rss" | "atom" | "sitemap" (known after the first fetch)
    added_at: str | None = None
    last_refresh: str | None = None  # ISO 8601 UTC
    last_new_items: int = 0  # articles added by the last refresh
    last_updated_items: int = 0  # articles replaced by a new version in the last refresh
    last_error: str | None = None  # why the last refresh (or some of its items) failed
    next_due: str | None = None
    items_seen: int = 0  # items remembered from this feed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ItemProblem:
    url: str  # the item's link (or id)
    reason: str


@dataclass
class FeedRefresh:
    """What one refresh did for one feed."""

    url: str
    status: str  # "ok" | "not-modified" (304: nothing new) | "error" (the feed itself failed)
    new_items: int = 0
    updated_items: int = 0
    unchanged_items: int = 0
    error: str | None = None
    item_problems: list[ItemProblem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RefreshReport:
    feeds: list[FeedRefresh] = field(default_factory=list)
    ingest: IngestReport = field(default_factory=IngestReport)
    seconds: float = 0.0

    @property
    def failed(self) -> list[FeedRefresh]:
        return [f for f in self.feeds if f.status == "error"]

    def summary(self) -> str:
        new = sum(f.new_items for f in self.feeds)
        upd = sum(f.updated_items for f in self.feeds)
        probs = sum(len(f.item_problems) for f in self.feeds)
        line = f"{len(self.feeds)} feeds refreshed in {self.seconds:.1f} s: {new} new, {upd} updated articles"
        if self.failed:
            line += f"; {len(self.failed)} feeds failed"
        if probs:
            line += f"; {probs} items failed"
        return line
