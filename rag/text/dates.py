"""The calendar day of a stored publication date (filters, sub-searches and stores share it)."""

from __future__ import annotations

from datetime import date, datetime


def parse_day(value: str | None) -> date | None:
    """The calendar day of a stored ISO 8601 date or datetime; None when absent or unparseable."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None
