"""Publication dates written in an article's text: datelines, "Published ..." lines.

Pages saved as text, Markdown notes and feed bodies carry their date, when at all,
as a line near the top rather than as metadata:

* an outlet line:      ``Reef Daily Wire — 3 March 2025`` (also names the source)
* a wire dateline:     ``WASHINGTON, Oct 17 (Reuters) - ...`` (names the agency; a
                       missing year is the latest one that is not in the future)
* a label:             ``Published: 17 October 2025 08:45 GMT``, ``Updated Oct. 17, 2025``
* a byline with a date ``By Jane Doe | October 17, 2025``
* a bare date line:    ``Friday, October 17, 2025``

Only the first lines are read: a date deep in the body is something the article
talks about, not when it was published. Everything here is pure (no I/O).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_MONTH_NAMES = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec"
)
MONTH = rf"(?i:{_MONTH_NAMES})\.?"
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_WEEKDAY = r"(?i:(?:mon|tues|wednes|thurs|fri|satur|sun)day|mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)\.?,?\s+"
# A calendar date with a year, in the forms news sites print.
DATE_WITH_YEAR = (
    rf"(?:{_WEEKDAY})?(?:{_DAY}\s+{MONTH},?\s+\d{{4}}|{MONTH}\s+{_DAY},?\s+\d{{4}}"
    r"|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?)"
)
_TIME = r"(?:,?\s*(?:at\s+)?\d{1,2}[:.]\d{2}(?:\s*(?i:am|pm|a\.m\.|p\.m\.))?(?:\s*\(?[A-Z]{2,5}\)?)?)?"
_SEP = r"\s*[—–|·•-]\s*"
_NAME = r"(?!By\s|BY\s|Published|Updated|Posted)[A-Z][\w&.'’]*(?:\s+(?:of\s+|the\s+|&\s+)?[A-Z][\w&.'’]*){0,5}"

_DATED_OUTLET = re.compile(rf"^(?P<src>{_NAME}){_SEP}(?P<date>{DATE_WITH_YEAR}){_TIME}\.?$")
# Outlet names with their own separators ("The Roar | Sports Writers Blog — 26 October 2023"):
# only a dash before the date separates.
_DATED_OUTLET_DASH = re.compile(rf"^(?P<src>(?!By\s|BY\s)[A-Z][^—–\n]{{1,70}}?)\s+[—–]\s+(?P<date>{DATE_WITH_YEAR}){_TIME}\.?$")
_OUTLET_AFTER_DATE = re.compile(rf"^(?P<date>{DATE_WITH_YEAR}){_TIME}{_SEP}(?P<src>{_NAME})$")
_LABELLED = re.compile(
    rf"^(?i:(?P<label>published|first published|posted|updated|last updated|last modified|date)(?:\s+on)?)\s*:?\s*"
    rf"(?P<date>{DATE_WITH_YEAR}){_TIME}.{{0,40}}$"
)
_BYLINE_DATE = re.compile(
    rf"^(?i:by)\s+.{{2,200}}?{_SEP}(?i:published\s+|updated\s+)?(?P<date>{DATE_WITH_YEAR}){_TIME}$"
)
_BARE = re.compile(rf"^(?P<date>{DATE_WITH_YEAR}){_TIME}$")
# "WASHINGTON, Oct 17 (Reuters) -", "KYIV, Ukraine, October 17, 2025 (AP) —"
WIRE_DATELINE = re.compile(
    rf"^(?P<place>[A-Z][A-Z.'’ -]{{1,40}}(?:,\s*[A-Z][A-Za-z.'’ -]{{1,30}})?),\s*"
    rf"(?P<date>{MONTH}\s+{_DAY}(?:,?\s+\d{{4}})?)\s*\((?P<src>[A-Z][\w&.'’ -]{{1,30}})\)\s*[-–—]"
)

# Lines read from the top of a text.
HEAD_LINES = 12


@dataclass(frozen=True)
class Dateline:
    published_at: str  # ISO 8601 date (or datetime when the line gives a time zone)
    source: str | None  # the outlet or agency the line names, if any
    line: str  # the line it was read from


def parse_date(text: str, reference: datetime | None = None) -> datetime | None:
    """A date as printed ("3 March 2025", "Oct. 17, 2025", "2025-10-17T08:00Z"); None if it is not one.

    Without a year ("Oct 17"), the latest such day not after ``reference`` (+1 day,
    for time zones) is meant.
    """
    from dateutil import parser as dateutil_parser

    cleaned = re.sub(r"(\d)(?:st|nd|rd|th)\b", r"\1", text.replace(".", " ").strip()) if not re.match(
        r"\d{4}-\d{2}-\d{2}", text.strip()) else text.strip()
    if re.match(r"\d{4}-\d{2}-\d{2}", cleaned):
        try:
            return datetime.fromisoformat(cleaned.replace("Z", "+00:00").replace(" ", "T", 1))
        except ValueError:
            return None
    has_year = bool(re.search(r"\b\d{4}\b", cleaned))
    ref = reference or datetime.now()
    try:
        parsed = dateutil_parser.parse(cleaned, default=datetime(ref.year, 1, 1), fuzzy=False)
    except (ValueError, OverflowError):
        return None
    if not has_year and parsed.date() > (ref + timedelta(days=1)).date():
        try:
            parsed = parsed.replace(year=parsed.year - 1)
        except ValueError:  # 29 February
            return None
    return parsed


def _iso(d: datetime) -> str:
    """A day when no time of day was given; with a time only when it has a zone."""
    if d.tzinfo is not None:
        return d.isoformat()
    if d.hour or d.minute:
        return d.isoformat()
    return d.date().isoformat()


def find_dateline(text: str, reference: datetime | None = None, *, head_lines: int = HEAD_LINES) -> Dateline | None:
    """The publication date (and source, when named) printed near the top of ``text``."""
    lines = [" ".join(ln.split()) for ln in text.splitlines()]
    lines = [ln for ln in lines if ln][:head_lines]
    found: list[tuple[int, Dateline]] = []  # (rank: lower is better, dateline)
    for ln in lines:
        if len(ln) > 300:
            # A paragraph: only a wire dateline can open it.
            m = WIRE_DATELINE.match(ln)
            if m and (d := parse_date(m.group("date"), reference)):
                found.append((1, Dateline(_iso(d), m.group("src").strip(), ln[: m.end()])))
            continue
        for rank, rx in ((0, _DATED_OUTLET), (0, _DATED_OUTLET_DASH), (0, _OUTLET_AFTER_DATE), (1, WIRE_DATELINE), (2, _LABELLED),
                         (2, _BYLINE_DATE), (3, _BARE)):
            m = rx.match(ln)
            if not m:
                continue
            d = parse_date(m.group("date"), reference)
            if d is None:
                continue
            if rx is _LABELLED and m.group("label").lower() in ("updated", "last updated", "last modified"):
                rank = 4  # a later edit: only when nothing says when it was published
            src = m.groupdict().get("src")
            found.append((rank, Dateline(_iso(d), src.strip() if src else None, m.group(0))))
            break
    if not found:
        return None
    return min(found, key=lambda x: x[0])[1]


def is_dateline(line: str) -> bool:
    """A header line that only dates the article (and maybe names its outlet): page chrome."""
    ln = " ".join(line.split())
    return len(ln) <= 250 and any(
        rx.match(ln) for rx in (_DATED_OUTLET, _DATED_OUTLET_DASH, _OUTLET_AFTER_DATE, _LABELLED, _BYLINE_DATE, _BARE)
    )
