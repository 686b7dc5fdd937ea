"""Questions that span several articles: one sentence per clue or outlet, and who reported first.

"Which company, reported by TechCrunch and The Verge, ... ?" strings clues
together that different articles each answer; the answer shows one cited
sentence per outlet (or per clue) side by side, and its short answer is the
entity those sentences agree on (see :mod:`.values`). "Did The Verge report ...
before TechCrunch reported ...?" is answered from the cited articles' dates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from ..retrieve.filters import parse_day

_ORDER = re.compile(r"\b(before|after|earlier than|later than|prior to|preceded?|followed)\b", re.I)
_AFTER = re.compile(r"\b(after|later than|followed)\b", re.I)


@dataclass(frozen=True)
class Dated:
    """One outlet's cited sentence with its article's day."""

    outlet: str
    n: int  # its citation
    day: date | None


_YES_NO = re.compile(r"^\s*(did|does|do|was|were|is|are|has|have|had)\b", re.I)


def asks_order(question: str, outlets: list[str]) -> bool:
    """The question asks whether one outlet reported before or after another."""
    return len(outlets) >= 2 and bool(_YES_NO.match(question)) and bool(_ORDER.search(question))


def order_answer(question: str, first: Dated, second: Dated) -> str | None:
    """"Yes/No — X reported first (day) [1]; Y later (day) [2]." comparing the articles'
    days; ``first`` is the outlet the question names first. None when a day is missing."""
    if first.day is None or second.day is None:
        return None
    if first.day == second.day:
        return (f"Both on the same day: {first.outlet} ({first.day.isoformat()}) [{first.n}] and "
                f"{second.outlet} ({second.day.isoformat()}) [{second.n}].")
    earlier, later = (first, second) if first.day < second.day else (second, first)
    asked_after = bool(_AFTER.search(question)) and not re.search(r"\bbefore\b", question, re.I)
    yes = (first.day > second.day) if asked_after else (first.day < second.day)
    return (f"{'Yes' if yes else 'No'} — {earlier.outlet} reported first ({earlier.day.isoformat()}) [{earlier.n}], "
            f"{later.outlet} later ({later.day.isoformat()}) [{later.n}].")


def day_of(published_at: str | None) -> date | None:
    return parse_day(published_at) if published_at else None
