"""Search filters (article, source, date range) and the date parsing they need."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from ..errors import RagError
from ..types import Article


@dataclass(frozen=True)
class Filters:
    article_ids: frozenset[str] | None = None
    sources: frozenset[str] | None = None  # compared case-insensitively
    date_from: date | None = None
    date_to: date | None = None
    # Not a filter: the newest articles first among the relevant ones ("latest ...").
    recent_first: bool = False

    def is_empty(self) -> bool:
        """No restriction on which passages may be found (``recent_first`` only reorders)."""
        return not (self.article_ids or self.sources or self.date_from or self.date_to)

    def matches(self, article: Article) -> bool:
        """Whether one article passes, by the rule the retriever applies to its rows
        (sources case-insensitively; with a date bound, undated articles are out)."""
        if self.article_ids and article.article_id not in self.article_ids:
            return False
        if self.sources and (article.source or "").lower() not in {s.lower() for s in self.sources}:
            return False
        if self.date_from or self.date_to:
            day = parse_day(article.published_at)
            if day is None or (self.date_from and day < self.date_from) or (self.date_to and day > self.date_to):
                return False
        return True


def parse_day(value: str | None) -> date | None:
    """The calendar day of a stored ISO 8601 date or datetime; None when absent or unparseable."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def parse_date_arg(value: str | None) -> date | None:
    """Parse a user-given date (YYYY-MM-DD) or raise a clear error."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RagError(f"Invalid date {value!r}: use YYYY-MM-DD.") from None
