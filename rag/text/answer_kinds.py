"""What kind of answer a question expects, and whether a sentence can hold one.

Classic question-answering cue: "What is the range ...?" wants a quantity, "When
...?" a time, "Who ...?" a name. Embeddings of a short question match sentences on
the same topic just as well as sentences that answer it; these cues separate the
two ("long-range missiles" vs "a range of 2,500 km").
"""

from __future__ import annotations

import re
from typing import Literal

AnswerType = Literal["distance", "quantity", "time", "person", "place", "name", "other"]

_QUANTITY_Q = re.compile(
    r"\b(how (many|much|far|long|big|large|high|old|often)|what (is|was|are|were) the "
    r"(range|distance|number|amount|cost|price|size|total|share|percentage|value|death toll|toll|length|speed)"
    r"|range of|number of|percentage|how much)\b",
    re.I,
)
_DISTANCE_Q = re.compile(r"\b(how far|range|distance|how long is)\b", re.I)
_NAME_Q = re.compile(r"\b(what is|what's|what was) the name\b|\bwhat is .{0,40}\bcalled\b|\bname of\b", re.I)
_TIME_Q = re.compile(r"\b(when|what (day|date|year|month|time)|which (day|date|year|month))\b", re.I)
_PERSON_Q = re.compile(r"^\s*(who|whom|whose)\b|\bwho (will|is|was|did|has|leads?)\b", re.I)
_PLACE_Q = re.compile(r"^\s*where\b|\bwhere (will|is|was|did|do|does)\b|\bin which (city|country|place)\b", re.I)

# A figure, but not a bare year ("in 2019"), a reference marker ("told[5]") or part
# of a name ("Engels-2").
_NUMBER = re.compile(
    r"(?<![\[\w-])(?!(?:19|20)\d\d\b)\d[\d,.]*(?![\]\w])|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|"
    r"hundred|hundreds|thousand|thousands|million|millions|billion|billions|dozen|dozens)\b",
    re.I,
)
_TIME = re.compile(
    r"\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february|march|april|may|june|"
    r"july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|"
    r"today|tomorrow|yesterday|tonight|week|weeks|month|months|year|years|days?|hours?|soon|later|"
    r"next|last|earlier|(19|20)\d\d)\b",
    re.I,
)
# Two capitalised words in a row, not at the very start of the sentence.
_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)+\b")
_DISTANCE = re.compile(
    r"\d[\d,.]*\s*(?:-|–)?\s*(km|kilomet\w*|miles?|mi|metres|meters|m|ft|feet|nautical miles)\b", re.I
)
_CALLED = re.compile(r"\b(called|named|dubbed|known as|name[sd]?)\b", re.I)
_PLACE = re.compile(r"\b(in|at|to|from|near)\s+(the\s+)?[A-Z][a-z]+")


def answer_type(question: str) -> AnswerType:
    if _DISTANCE_Q.search(question):
        return "distance"
    if _NAME_Q.search(question):
        return "name"
    if _QUANTITY_Q.search(question):
        return "quantity"
    if _TIME_Q.search(question):
        return "time"
    if _PERSON_Q.search(question):
        return "person"
    if _PLACE_Q.search(question):
        return "place"
    return "other"


def holds_answer_type(sentence: str, kind: AnswerType) -> bool:
    if kind == "distance":
        return bool(_DISTANCE.search(sentence))
    if kind == "name":
        return bool(_CALLED.search(sentence))
    if kind == "quantity":
        return bool(_NUMBER.search(sentence))
    if kind == "time":
        return bool(_TIME.search(sentence))
    if kind == "person":
        return bool(_NAME.search(sentence))
    if kind == "place":
        return bool(_PLACE.search(sentence))
    return True


# Sentences that cannot be answers on their own: sub-headings and questions.
_HEADING = re.compile(r"^[^.!?…]{0,90}$")
_QUESTION = re.compile(r"\?\s*[\"”’']?$")


def is_heading_or_question(sentence: str) -> bool:
    """A sub-heading or a question restates a topic; it does not answer it."""
    return bool(_QUESTION.search(sentence) or _HEADING.match(sentence))
