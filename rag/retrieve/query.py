"""What a question says beyond its words: clues, dates, publisher names, framing.

MultiHop-RAG-style questions name publishers and days ("according to TechCrunch
... on October 5, 2023") and string several clues together; news readers ask the
same way. This module finds those parts; the retriever turns them into
sub-searches and matches the rest (the content) against the passages.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Iterable

from ..text.terms import sentence_terms
from .timeframe import Period, find_period

_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_DAY_MONTH_YEAR = re.compile(rf"\b({_MONTHS})\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I)
_ISO_DAY = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
# Words about the articles rather than their content ("the article", "as reported
# by", "published on"); see QueryAnalyzer.content_query. (Tried and dropped: also
# verbs such as "suggest"/"imply", and "story"/"coverage": no better.)
_FRAMING_PHRASES = re.compile(
    r"\b(?:the\s+)?(?:news\s+)?(?:articles?(?!\s+\d)|reports?|reported|published|news source|according to|as reported by|reported by)\b",
    re.I,
)

# Where one clue of a long question ends and the next begins: punctuation, relative
# pronouns, "while", "but also", an "and" that starts a new predicate ("... and is
# now cutting jobs"), and attributions ("according to The Verge"). (Tried: also
# every "and", "both"/"with", "after"/"despite"/"because": worse.)
_CLAUSE_BREAK = re.compile(
    r"[,;]|\b(?:that|which|who|while|whereas|but also|not only)\b"
    r"|\band (?=(?:is|was|has|had|also|the|a|an|its|their|that|which|who|does|did|were|are)\b)"
    r"|\b(?:as reported by|according to|reported by)\b",
    re.I,
)
# A clause must name this many content words to count as a clue of its own.
MIN_CLAUSE_TERMS = 3


def question_clauses(question: str) -> list[str]:
    """The clues of a question that strings several together, or [] for a single one.

    "Which company, covered by TechCrunch, is accused of altering the internet's
    appearance, and is now cutting 16% of its workforce?" asks about one entity
    through clues that different articles each answer; see SentenceFeatures.score_units.
    """
    parts = [p.strip() for p in _CLAUSE_BREAK.split(question)]
    clauses = [p for p in parts if len(sentence_terms(p)) >= MIN_CLAUSE_TERMS]
    return clauses if len(clauses) >= 2 else []


def dates_in(query: str) -> list[date]:
    """Calendar days a question names ("published on October 5, 2023", "2023-10-05")."""
    found: list[date] = []
    for m in _DAY_MONTH_YEAR.finditer(query):
        try:
            found.append(datetime.strptime(f"{m.group(1)} {m.group(2)} {m.group(3)}", "%B %d %Y").date())
        except ValueError:
            pass
    for m in _ISO_DAY.finditer(query):
        try:
            found.append(date(int(m.group(1)), int(m.group(2)), int(m.group(3))))
        except ValueError:
            pass
    return list(dict.fromkeys(found))


_FEED_SEPARATOR = re.compile(r"\s+[|\-\u2013\u2014:]\s+|:\s+")


def source_names(sources: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Each name a question may use for a publisher, longest first, with the sources it means.

    Feed titles often append a section or slogan to the publisher ("The Roar |
    Sports Writers Blog"); questions name the publisher alone.
    """
    names: dict[str, set[str]] = {}
    for src in set(sources):
        if len(src) >= 3:
            names.setdefault(src, set()).add(src)
        head = _FEED_SEPARATOR.split(src, maxsplit=1)[0].strip()
        if head != src and len(head) >= 3:
            names.setdefault(head, set()).add(src)
    return {n: tuple(sorted(names[n])) for n in sorted(names, key=len, reverse=True)}


class QueryAnalyzer:
    """Finds the publishers (of one index) and the days a question names, and its content."""

    def __init__(self, sources_lower: Iterable[str]):
        self._names = source_names(s for s in sources_lower if s)
        # One alternation, longest names first, so "The Independent - Sports" is
        # found whole rather than as "The Independent".
        self._source_re = (
            re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, self._names)) + r")(?!\w)")
            if self._names
            else None
        )

    def sources_in(self, query: str) -> list[str]:
        """Publisher names from the index that the question mentions.

        A feed-style name ("Cnbc | World Business News Leader", "The Independent -
        Sports") is also found by its head ("CNBC", "The Independent"); a head shared
        by several feeds stands for all of them (see :meth:`sources_named`).
        """
        if self._source_re is None:
            return []
        return list(dict.fromkeys(m.group(0) for m in self._source_re.finditer(query.lower())))

    def source_spans(self, query: str) -> list[tuple[int, int]]:
        """Where the question names a publisher (offsets into ``query``)."""
        lowered = query.lower()
        if self._source_re is None or len(lowered) != len(query):
            return []
        return [m.span() for m in self._source_re.finditer(lowered)]

    def period(self, query: str, now: datetime) -> Period | None:
        """The days a relative time phrase of the question means ("last week"), resolved
        against ``now``; None when it has none, or names a calendar day ("on October 5,
        2023") and so is not relative. See :mod:`.timeframe`."""
        if dates_in(query):
            return None
        return find_period(query, now, skip=self.source_spans(query))

    def sources_named(self, name: str) -> tuple[str, ...]:
        """The (lower-cased) sources a name found by :meth:`sources_in` stands for."""
        return self._names.get(name, ())

    def content_query(self, query: str, *, strip_metadata: bool = True, strip_time: bool = True) -> str:
        """The question as its content is matched: without the words that only say where to look.

        Publisher names and dates (with metadata sub-queries on, those are matched
        against each article's source and date, which is what they mean) and phrases
        about the articles themselves ("the article", "reported by", "published on")
        describe the collection, not the answer: passages do not talk about
        themselves. Left in, they pull the embedding towards any passage that
        mentions "TechCrunch", a date or a report, and add noise to BM25 and the
        sentence match. On MultiHop-RAG dev, matching the content alone took MRR@10
        from 0.696 to 0.722 and MAP@10 from 0.373 to 0.387, and shortens what is
        embedded (60 -> 49 word pieces), which the query embedding's latency follows.
        """
        text = query
        if strip_metadata:
            spans = [m.span() for rx in (_DAY_MONTH_YEAR, _ISO_DAY) for m in rx.finditer(query)]
            spans += self.source_spans(query)
            # Relative time words ("last week", "latest") become a date filter or an
            # order; as words they would only match passages that say "last week".
            if strip_time and (period := self.period(query, datetime.now())):
                spans += period.spans
            keep, end = [], 0
            for a, b in sorted(spans):
                if a > end:
                    keep.append(query[end:a])
                end = max(end, b)
            keep.append(query[end:])
            text = re.sub(r"(?:['\"‘’“”]\s*){2,}", " ", " ".join(keep))  # quotes left empty
        # After the names are gone, so that "the TechCrunch article" goes whole.
        text = _FRAMING_PHRASES.sub(" ", text)
        text = re.sub(r"\s+([,.;:?!])", r"\1", " ".join(text.split()))
        # Nothing but names and framing ("TechCrunch, October 5, 2023"): match the question as asked.
        return text if len(sentence_terms(text)) >= 2 else query
