"""The one owner of citation-marker syntax: find, parse, validate, renumber, strip.

A marker is ``[n]`` (also written ``[1, 2]``, ``[1; 2]`` or ``[2-4]`` by language
models) and points at the n-th numbered passage or citation of an answer. Every
part of the project that reads or writes markers (the answerers, the chain, the
UI, the evaluation) goes through these functions, so they agree on what a marker is.
"""

from __future__ import annotations

import logging
import re
from typing import Iterator, Mapping

log = logging.getLogger(__name__)

# [3]  [1, 2]  [1; 2]  [2-4]
MARKER = re.compile(r"\[\s*(\d+(?:\s*(?:[,;]|[-–])\s*\d+)*)\s*\]")
_MAX_RANGE = 50  # a "range" wider than this is not a citation
# A marker the answerer wrote follows a space, the start of the text or another
# marker; a reference mark glued to a word inside a quoted sentence ("Putin[2]")
# is part of the quote.
_STANDALONE = re.compile(r"(?:(?<=\s)|(?<=^)|(?<=\]))" + MARKER.pattern)
_MARKER_WITH_SPACE = re.compile(r"\s*" + MARKER.pattern)


def marker(n: int) -> str:
    return f"[{n}]"


def marker_numbers(body: str) -> list[int]:
    """The passage numbers inside one marker's brackets ("1, 3" -> [1, 3]; "2-4" -> [2, 3, 4])."""
    numbers: list[int] = []
    for part in re.split(r"\s*[,;]\s*", body):
        bounds = re.split(r"\s*[-–]\s*", part)
        if len(bounds) == 2:
            lo, hi = int(bounds[0]), int(bounds[1])
            if lo <= hi and hi - lo <= _MAX_RANGE:
                numbers.extend(range(lo, hi + 1))
        else:
            numbers.append(int(bounds[0]))
    return numbers


def iter_markers(text: str, *, standalone: bool = True) -> Iterator[tuple[int, int, list[int]]]:
    """``(start, end, numbers)`` of each marker in ``text``.

    ``standalone`` skips reference marks glued to a word ("Putin[2]"), which belong
    to quoted article text, not to the answer.
    """
    for m in (_STANDALONE if standalone else MARKER).finditer(text):
        yield m.start(), m.end(), marker_numbers(m.group(1))


def cited_numbers(text: str, *, standalone: bool = True) -> list[int]:
    """Numbers cited by the answer's markers, in order of first appearance."""
    return list(dict.fromkeys(n for _, _, nums in iter_markers(text, standalone=standalone) for n in nums))


def strip_markers(text: str) -> str:
    """``text`` without any markers (and the space before each)."""
    return _MARKER_WITH_SPACE.sub("", text).strip()


def validate(text: str, n_passages: int) -> tuple[str, list[int]]:
    """Drop markers (or numbers inside them) that point at no passage ``1..n_passages``.

    Returns ``(cleaned_text, sorted_valid_numbers)``.
    """
    used: set[int] = set()
    out: list[str] = []
    pos = 0
    for match in MARKER.finditer(text):
        numbers = marker_numbers(match.group(1))
        valid = sorted({n for n in numbers if 1 <= n <= n_passages})
        used.update(valid)
        before = text[pos : match.start()]
        if len(valid) == len(numbers):
            out.append(before + match.group(0))
        elif valid:
            out.append(before + "[" + ", ".join(map(str, valid)) + "]")
        else:
            # Take the space before the marker with it: "fact [12]." -> "fact."
            out.append(before.rstrip(" \t"))
            pos = match.end()
            so_far = "".join(out)
            if not so_far or so_far.endswith("\n"):
                # At the start of a line there is no space before: eat the one after.
                while pos < len(text) and text[pos] in " \t":
                    pos += 1
            continue
        pos = match.end()
    out.append(text[pos:])
    return "".join(out), sorted(used)


def renumber(text: str, new_number: Mapping[int, int]) -> str:
    """Rewrite every marker through ``new_number`` (old -> new), one ``[n]`` per cited number.

    Numbers missing from the mapping are dropped; a marker left with none goes too.
    """
    def sub(m: re.Match) -> str:
        nums = [new_number[n] for n in marker_numbers(m.group(1)) if n in new_number]
        return "".join(marker(n) for n in dict.fromkeys(nums))

    return MARKER.sub(sub, text)


def sentences_citing(text: str, n: int) -> str:
    """The sentences of an answer that carry a marker citing ``n`` (the whole text if none)."""
    sents = re.split(r"(?<=[.!?\]])\s+", text)
    return " ".join(s for s in sents if n in cited_numbers(s, standalone=False)) or text


def marker_chunks(text: str) -> Iterator[str]:
    """An answer cut after each run of markers, for streaming it claim by claim."""
    parts = re.split(r"(?<=\])\s+", text)
    for i, part in enumerate(parts):
        yield part if i == len(parts) - 1 else part + " "
