"""Sentence-aware passages bounded by the embedding model's own tokenizer.

Each passage is a verbatim span ``text[start:end]`` of the cleaned article, so a
citation can be highlighted in the article later. all-MiniLM-L6-v2 silently
truncates inputs beyond 256 word pieces, so the budget counts the header
(title/source/date) that is embedded with every passage, plus [CLS] and [SEP].
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import sentencex

log = logging.getLogger(__name__)

# Word pieces the model adds around every input ([CLS] ... [SEP]).
SPECIAL_TOKENS = 2
# The header is capped so a long title cannot starve the passage itself.
MAX_HEADER_TOKENS = 48

TokenCounter = Callable[[Sequence[str]], list[int]]


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def sentence_spans(text: str) -> list[Span]:
    """Sentences of ``text`` as character spans, whitespace trimmed.

    sentencex returns consecutive verbatim pieces (sentences and the blank runs
    between paragraphs), so walking them with ``find`` recovers exact offsets.
    """
    spans: list[Span] = []
    pos = 0
    for piece in sentencex.segment("en", text):
        at = text.find(piece, pos)
        if at < 0:  # defensive: never lose text if the segmenter normalised it
            at = pos
            piece = text[pos : pos + len(piece)]
        pos = at + len(piece)
        # A "sentence" may still hold a paragraph break (a heading without a full
        # stop followed by its paragraph): split there so headings stay separate.
        for line_start, line_end in _lines(text, at, pos):
            spans.append(Span(line_start, line_end))
    if pos < len(text):
        for line_start, line_end in _lines(text, pos, len(text)):
            spans.append(Span(line_start, line_end))
    return spans


def _lines(text: str, start: int, end: int):
    i = start
    while i < end:
        nl = text.find("\n", i, end)
        stop = end if nl < 0 else nl
        s, e = i, stop
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            yield s, e
        i = stop + 1


@dataclass(frozen=True)
class Chunking:
    """Sentence units (what answers quote) and passages (what is retrieved)."""

    units: list[Span]
    passages: list[Span]
    # Word pieces of each unit (without [CLS]/[SEP]); empty where not counted.
    unit_tokens: tuple[int, ...] = ()


def chunk_text(
    text: str,
    count_tokens: TokenCounter,
    *,
    max_tokens: int = 256,
    overlap_tokens: int = 64,
    header_tokens: int = 0,
    token_offsets: Callable[[str], list[tuple[int, int]]] | None = None,
) -> Chunking:
    """Pack consecutive sentences into spans of at most ``budget`` word pieces.

    ``budget = max_tokens - [CLS]/[SEP] - header``. Consecutive passages share
    trailing sentences worth up to ``overlap_tokens`` so that a fact straddling a
    boundary still sits whole in one passage. A sentence longer than the budget is
    cut at word-piece boundaries (``token_offsets``).
    """
    budget = max_tokens - SPECIAL_TOKENS - min(header_tokens, MAX_HEADER_TOKENS)
    if budget < 16:
        raise ValueError(f"chunk budget too small ({budget} word pieces)")
    sents = sentence_spans(text)
    if not sents:
        return Chunking([], [])
    # Measure each sentence with its leading whitespace so that the sum over a
    # joined run is close to the count of the whole span (off by at most a few).
    counts = count_tokens([text[s.start : s.end] for s in sents])
    units: list[tuple[Span, int]] = []
    for span, n in zip(sents, counts):
        if n <= budget:
            units.append((span, n))
        else:
            units.extend(_split_long(text, span, budget, token_offsets, count_tokens))

    ranges: list[tuple[int, int]] = []  # [i, j) runs of units
    i = 0
    while i < len(units):
        j, used = i, 0
        while j < len(units) and used + units[j][1] <= budget:
            used += units[j][1]
            j += 1
        j = max(j, i + 1)
        ranges.append((i, j))
        if j >= len(units):
            break
        # Step back over trailing sentences for the overlap, but always advance.
        back, k = 0, j
        while k - 1 > i and back + units[k - 1][1] <= overlap_tokens:
            back += units[k - 1][1]
            k -= 1
        i = k if k > i else j
    spans = [u for u, _ in units]
    return Chunking(spans, _fit(text, spans, ranges, count_tokens, budget), tuple(n for _, n in units))


def _split_long(text, span, budget, token_offsets, count_tokens):
    """Cut an over-long sentence into word-piece windows of at most ``budget``."""
    piece = text[span.start : span.end]
    if token_offsets is None:
        # Fall back to whitespace words; _fit re-counts the packed spans.
        offsets = []
        pos = 0
        for word in piece.split():
            at = piece.find(word, pos)
            offsets.append((at, at + len(word)))
            pos = at + len(word)
        per = max(1, budget // 2)
    else:
        offsets = token_offsets(piece)
        per = budget
    out = []
    for k in range(0, len(offsets), per):
        window = offsets[k : k + per]
        s, e = span.start + window[0][0], span.start + window[-1][1]
        out.append((Span(s, e), len(window)))
    return out


def _fit(text, units: list[Span], ranges, count_tokens, budget) -> list[Span]:
    """Re-count each packed run as a whole and drop trailing units if it is too long.

    WordPiece splits on whitespace and punctuation, so the sum of per-sentence
    counts normally equals the count of the joined span; this guards the limit
    for tokenizers where it does not.
    """
    joined = [Span(units[i].start, units[j - 1].end) for i, j in ranges]
    counts = count_tokens([text[c.start : c.end] for c in joined])
    out: list[Span] = []
    for (i, j), span, n in zip(ranges, joined, counts):
        while n > budget and j - i > 1:
            j -= 1
            span = Span(units[i].start, units[j - 1].end)
            n = count_tokens([text[span.start : span.end]])[0]
        out.append(span)
    return out


def home_passages(units: Sequence[Span], passages: Sequence[Span]) -> list[int]:
    """For each unit, the passage that holds it most centrally (-1: none holds it).

    With overlapping passages a sentence sits in two; its late-chunked vector is
    pooled in the one where it has the most context on both sides.
    """
    out = []
    for u in units:
        best, score = -1, -1.0
        for k, p in enumerate(passages):
            if p.start <= u.start and u.end <= p.end:
                room = min(u.start - p.start, p.end - u.end) / max(p.end - p.start, 1)
                if room > score:
                    best, score = k, room
        out.append(best)
    return out
