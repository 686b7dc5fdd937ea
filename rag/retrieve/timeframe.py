"""Time-aware questions: "last week", "yesterday", "since Monday", "latest" ...

A relative phrase is resolved against the time of the question (``now``: the clock
by default; ``--now`` and a question set's ``now`` field make it reproducible) into a
period of calendar days, which becomes a date filter; "latest" / "most recent" ask
for the newest articles first instead. The period's label goes into the answer, so
it says which days it covered.

Rules (weeks start on Monday):

=====================================  ==========================================
"today", "yesterday"                   that day
"this week" / "last week"              Monday to today / the previous Monday-Sunday
"this month" / "last month"            the 1st to today / the previous month
"this year" / "last year"              1 January to today / the previous year
"in the last/past N days|weeks|months" the N days (weeks, months) up to today
"the past week", "the past few days"   the 7 / 3 days up to today
"since Monday" ... "since Sunday"      that weekday (today if it is today) to today
"since 3 October", "since Oct 3, 2025" that day to today
"last Monday" ... "last Sunday"        that day (the latest one before today)
"latest", "most recent", "newest"      the newest articles first (none after today)
=====================================  ==========================================

A question that names a calendar date ("on October 14, 2023") is about that date:
its relative words ("last summer") are left alone, as are words inside a
publisher's name ("Business Today"). "recent"/"recently" are left alone too: they
rarely mean a period ("his recent promotion").
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Iterable

from .filters import Filters

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
            "eight": 8, "nine": 9, "ten": 10, "few": 3, "couple of": 2}
_NUM = r"(\d{1,3}|a|an|one|two|three|four|five|six|seven|eight|nine|ten|few|couple of)"
_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|december|"
           "jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec")

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("since_date", re.compile(
        rf"\bsince\s+(?:the\s+)?(?:(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTHS})\.?|({_MONTHS})\.?\s+(\d{{1,2}})"
        rf"(?:st|nd|rd|th)?)(?:,?\s+(\d{{4}}))?\b", re.I)),
    ("since_weekday", re.compile(rf"\bsince\s+(?:last\s+)?({'|'.join(_WEEKDAYS)})\b", re.I)),
    ("last_weekday", re.compile(rf"\blast\s+({'|'.join(_WEEKDAYS)})\b", re.I)),
    ("rolling", re.compile(rf"\b(?:in|over|during|within|for)?\s*(?:the\s+)?(?:last|past)\s+{_NUM}\s+(day|week|month)s?\b", re.I)),
    ("past_unit", re.compile(r"\b(?:in|over|during|within)?\s*the\s+(?:last|past)\s+(day|week|month|year)\b", re.I)),
    ("past_few", re.compile(r"\b(?:in|over)?\s*the\s+(?:last|past)\s+(?:few|couple of)\s+(days|weeks)\b", re.I)),
    ("named", re.compile(r"\b(today|yesterday|tonight|this\s+morning|this\s+week|last\s+week|this\s+month|last\s+month|"
                         r"this\s+year|last\s+year|past\s+24\s+hours|last\s+24\s+hours)\b", re.I)),
    ("latest", re.compile(r"\b(?:the\s+)?(latest|most\s+recent|newest|most\s+recently\s+published)\b", re.I)),
]


@dataclass(frozen=True)
class Period:
    """The days a time-aware question asks about (``start``/``end`` inclusive; None: open)."""

    label: str  # what the answer says it covered, e.g. "last week (13–19 October 2025)"
    start: date | None = None
    end: date | None = None
    recent_first: bool = False  # "latest": the newest articles first, no filter
    spans: tuple[tuple[int, int], ...] = ()  # where the phrase is in the question

    def filters(self, base: Filters | None = None) -> Filters:
        """These days as search filters (added to ``base``'s)."""
        base = base or Filters()
        start = max(filter(None, (base.date_from, self.start)), default=None)
        end = min(filter(None, (base.date_to, self.end)), default=None)
        return Filters(base.article_ids, base.sources, start, end, base.recent_first or self.recent_first)


def _days(a: date, b: date) -> str:
    if a == b:
        return f"{a.day} {a:%B %Y}"
    if (a.year, a.month) == (b.year, b.month):
        return f"{a.day}–{b.day} {b:%B %Y}"
    if a.year == b.year:
        return f"{a.day} {a:%B} – {b.day} {b:%B %Y}"
    return f"{a.day} {a:%B %Y} – {b.day} {b:%B %Y}"


def _month_bounds(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _minus_months(d: date, n: int) -> date:
    y, m = divmod(d.month - 1 - n, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _resolve(kind: str, m: re.Match, today: date) -> tuple[str, date | None, date | None, bool] | None:
    text = " ".join(m.group(0).split()).strip()
    if kind == "latest":
        return "the most recent articles", None, None, True
    if kind == "since_weekday":
        wd = _WEEKDAYS.index(m.group(1).lower())
        start = today - timedelta(days=(today.weekday() - wd) % 7)
        return f"since {m.group(1).capitalize()} ({_days(start, today)})", start, today, False
    if kind == "last_weekday":
        wd = _WEEKDAYS.index(m.group(1).lower())
        back = (today.weekday() - wd) % 7 or 7
        day = today - timedelta(days=back)
        return f"last {m.group(1).capitalize()} ({_days(day, day)})", day, day, False
    if kind == "since_date":
        day_s, month_s = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        year = int(m.group(5)) if m.group(5) else today.year
        try:
            start = datetime.strptime(f"{int(day_s)} {month_s[:3]} {year}", "%d %b %Y").date()
        except ValueError:
            return None
        if not m.group(5) and start > today:
            start = start.replace(year=year - 1)
        return f"since {_days(start, start)} ({_days(start, today)})", start, today, False
    if kind in ("rolling", "past_unit", "past_few"):
        if kind == "rolling":
            n, unit = _NUMBERS.get(m.group(1).lower(), None) or int(m.group(1)), m.group(2).lower()
        elif kind == "past_unit":
            n, unit = 1, m.group(1).lower()
        else:
            n, unit = (3, "day") if m.group(1).lower() == "days" else (3, "week")
        if unit == "day":
            start = today - timedelta(days=n - 1) if n > 1 else today - timedelta(days=1)
        elif unit == "week":
            start = today - timedelta(days=7 * n - 1)
        elif unit == "month":
            start = _minus_months(today, n)
        else:
            start = date(today.year - n, today.month, min(today.day, 28))
        phrase = re.sub(r"^(?:in|over|during|within|for)\s+", "", text, flags=re.I)
        return f"{phrase} ({_days(start, today)})", start, today, False
    word = " ".join(m.group(1).lower().split())
    if word in ("today", "tonight", "this morning", "past 24 hours", "last 24 hours"):
        start = today - timedelta(days=1) if "24" in word else today
        return f"{word} ({_days(start, today)})", start, today, False
    if word == "yesterday":
        d = today - timedelta(days=1)
        return f"yesterday ({_days(d, d)})", d, d, False
    if word == "this week":
        start = today - timedelta(days=today.weekday())
        return f"this week ({_days(start, today)})", start, today, False
    if word == "last week":
        start = today - timedelta(days=today.weekday() + 7)
        return f"last week ({_days(start, start + timedelta(days=6))})", start, start + timedelta(days=6), False
    if word == "this month":
        start = today.replace(day=1)
        return f"this month ({_days(start, today)})", start, today, False
    if word == "last month":
        start, end = _month_bounds(*((today.year - 1, 12) if today.month == 1 else (today.year, today.month - 1)))
        return f"last month ({_days(start, end)})", start, end, False
    if word == "this year":
        start = date(today.year, 1, 1)
        return f"this year ({_days(start, today)})", start, today, False
    if word == "last year":
        start, end = date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)
        return f"last year ({today.year - 1})", start, end, False
    return None


def find_period(question: str, now: datetime, *, skip: Iterable[tuple[int, int]] = ()) -> Period | None:
    """The period a question's relative time words ask about, or None.

    ``skip``: spans not to read (publisher names). The first phrase that sets dates
    wins; "latest" adds its preference to it.
    """
    skip = list(skip)
    today = now.date()
    found: list[tuple[int, tuple[int, int], tuple[str, date | None, date | None, bool]]] = []
    taken: list[tuple[int, int]] = []
    for kind, rx in _PATTERNS:
        for m in rx.finditer(question):
            span = m.span()
            if any(a < span[1] and span[0] < b for a, b in skip + taken):
                continue
            resolved = _resolve(kind, m, today)
            if resolved is not None:
                found.append((span[0], span, resolved))
                taken.append(span)
    if not found:
        return None
    found.sort(key=lambda x: x[0])
    dated = [f for f in found if f[2][1] is not None or f[2][2] is not None]
    recent = any(f[2][3] for f in found)
    spans = tuple(f[1] for f in found)
    if dated:
        label, start, end, _ = dated[0][2]
        return Period(label, start, end, recent, spans)
    # The newest as of the question: nothing published after it (when replaying a past day).
    return Period(f"the most recent articles (up to {_days(today, today)})", None, today, True, spans)


def parse_now(value: str | None) -> datetime | None:
    """The time a question is asked at, as given by ``--now`` or a question set's ``now``:
    ISO 8601, a date alone meaning noon that day (local time). None when not given."""
    from ..errors import RagError

    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RagError(f"Invalid time {value!r}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (ISO 8601).") from None
    if len(text) == 10:
        parsed = parsed.replace(hour=12)
    return parsed if parsed.tzinfo else parsed.astimezone()
