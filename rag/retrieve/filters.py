"""Search filters (article, source, date range) and the date parsing they need."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ..errors import RagError
from ..store.protocol import Scope
from ..text.dates import parse_day
from ..types import Article

__all__ = ["Filters", "parse_date_arg", "parse_day"]


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

    def scope(self) -> Scope:
        """The same restriction as a store evaluates it (sources lower-cased, days as ordinals)."""
        return Scope(
            article_ids=frozenset(self.article_ids) if self.article_ids else None,
            sources=frozenset(s.lower() for s in self.sources) if self.sources else None,
            day_from=self.date_from.toordinal() if self.date_from else None,
            day_to=self.date_to.toordinal() if self.date_to else None,
        )

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


def parse_date_arg(value: str | None) -> date | None:
    """Parse a user-given date (YYYY-MM-DD) or raise a clear error."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RagError(f"Invalid date {value!r}: use YYYY-MM-DD.") from None
