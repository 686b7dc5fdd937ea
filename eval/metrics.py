"""Evaluation metrics: retrieval (MultiHop-RAG paper), answers, citations, abstention, latency.

Everything here is a pure function over strings and numbers, so the metrics can be
unit-tested with hand-computed values and reused by any runner without loading a model.

The retrieval metrics reproduce the MultiHop-RAG paper's ``retrieval_evaluate.py``
(Tang & Yang 2024, arXiv 2401.15391) so our numbers are comparable with its table:
only spaces and newlines are removed before the substring test, duplicate gold facts
count in the MAP denominator, and the MAP denominator is ``min(len(facts), k)``.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

RETRIEVAL_KEYS = ("hits@4", "hits@10", "mrr@10", "map@10", "evidence_recall@10")

# Shortest shared run of characters that counts as a cited quote overlapping a gold
# evidence quote: long enough that it is not a stock phrase, short enough that a quote
# cut at a different sentence boundary still matches.
OVERLAP_MIN_CHARS = 30


# --------------------------------------------------------------------------- retrieval


def _squash(text: str) -> str:
    """Remove spaces and newlines, exactly as the paper's evaluation script does.

    Tabs and carriage returns are deliberately kept: removing more would change which
    chunks count as hits and make our numbers incomparable with the paper's.
    """
    return text.replace(" ", "").replace("\n", "")


def _prepare(chunks: Sequence[str], facts: Sequence[str], k: int) -> tuple[list[str], list[str]]:
    """Squash the top-``k`` chunks and the facts, rejecting inputs the metric is undefined on."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not facts:
        # Null (unanswerable) queries have no gold facts; the paper excludes them, and a
        # silent 0 here would drag every mean down.
        raise ValueError("no gold facts: exclude unanswerable queries before scoring retrieval")
    squashed_facts = [_squash(f) for f in facts]
    if any(not f for f in squashed_facts):
        # An empty string is a substring of every chunk and would make every rank a hit.
        raise ValueError("a gold fact is empty after removing spaces and newlines")
    return [_squash(c) for c in chunks[:k]], squashed_facts


def _hit_ranks(chunks: Sequence[str], facts: Sequence[str], k: int) -> list[int]:
    """1-based ranks, within the top ``k``, of chunks containing at least one gold fact."""
    top, gold = _prepare(chunks, facts, k)
    return [rank for rank, chunk in enumerate(top, start=1) if any(f in chunk for f in gold)]


def hits_at(chunks: Sequence[str], facts: Sequence[str], k: int) -> float:
    """1.0 if any of the top ``k`` chunks contains a gold fact, else 0.0."""
    return 1.0 if _hit_ranks(chunks, facts, k) else 0.0


def mrr_at(chunks: Sequence[str], facts: Sequence[str], k: int = 10) -> float:
    """Reciprocal rank of the first chunk containing a gold fact; 0.0 if none in the top ``k``."""
    ranks = _hit_ranks(chunks, facts, k)
    return 1.0 / ranks[0] if ranks else 0.0


def ap_at(chunks: Sequence[str], facts: Sequence[str], k: int = 10) -> float:
    """Average precision as the paper defines it.

    At each hit rank r, add (number of gold facts first found in that chunk) / r; divide
    the sum by ``min(len(facts), k)``. A repeated fact is found once but still counts in
    the denominator, as in the paper's script.
    """
    top, gold = _prepare(chunks, facts, k)
    found: set[str] = set()
    total = 0.0
    for rank, chunk in enumerate(top, start=1):
        # Distinct strings: the paper's loop records the first copy of a duplicate fact
        # as found before it reaches the second, so the second never counts.
        new = {f for f in gold if f in chunk} - found
        found |= new
        total += len(new) / rank
    return total / min(len(gold), k)


def evidence_recall_at(chunks: Sequence[str], facts: Sequence[str], k: int = 10) -> float:
    """Share of the gold facts (list entries) contained in at least one of the top ``k`` chunks."""
    top, gold = _prepare(chunks, facts, k)
    return sum(1 for f in gold if any(f in chunk for chunk in top)) / len(gold)


def retrieval_metrics(chunks: Sequence[str], facts: Sequence[str]) -> dict[str, float | None]:
    """All per-query retrieval metrics, keyed as in :data:`RETRIEVAL_KEYS`.

    A query without gold facts gets ``None`` everywhere so :func:`mean_metrics` leaves it
    out, matching the paper's exclusion of null queries.
    """
    if not facts:
        return dict.fromkeys(RETRIEVAL_KEYS)
    return {
        "hits@4": hits_at(chunks, facts, 4),
        "hits@10": hits_at(chunks, facts, 10),
        "mrr@10": mrr_at(chunks, facts, 10),
        "map@10": ap_at(chunks, facts, 10),
        "evidence_recall@10": evidence_recall_at(chunks, facts, 10),
    }


def mean_metrics(rows: Iterable[Mapping[str, float | None] | None]) -> dict[str, float | None]:
    """Per-key mean over ``rows``, skipping ``None`` rows and ``None`` values.

    Keys keep their first-seen order; a key with no values at all maps to ``None``.
    """
    values: dict[str, list[float]] = {}
    for row in rows:
        if row is None:
            continue
        for key, value in row.items():
            bucket = values.setdefault(key, [])
            if value is not None:
                bucket.append(float(value))
    return {key: (sum(v) / len(v) if v else None) for key, v in values.items()}


# ----------------------------------------------------------------------------- answers


def answer_correct(response: str, answers: Iterable[str]) -> bool:
    """The paper's rule: some acceptable answer appears in the response, ignoring case."""
    low = response.lower()
    # Blank answers are skipped: "" is a substring of every response.
    return any(a.strip() and a.lower() in low for a in answers)


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def _squad_tokens(text: str) -> list[str]:
    """SQuAD normalisation: lowercase, drop punctuation and articles, split on whitespace."""
    text = text.lower().translate(_PUNCTUATION)
    return _ARTICLES.sub(" ", text).split()


def _f1(pred: list[str], gold: list[str]) -> float:
    if not pred or not gold:
        # SQuAD v2 rule: an empty side scores 1 only when both are empty.
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, answers: Iterable[str]) -> bool:
    """SQuAD's exact match: the normalised prediction equals some normalised answer."""
    pred = _squad_tokens(prediction)
    return any(pred == _squad_tokens(a) for a in answers if a.strip())


def token_f1(prediction: str, answers: Iterable[str]) -> float:
    """SQuAD-style token F1, the maximum over acceptable answers.

    With no acceptable answers the gold is the empty string, so only an empty (after
    normalisation) prediction scores 1.
    """
    pred = _squad_tokens(prediction)
    golds = [_squad_tokens(a) for a in answers] or [[]]
    return max(_f1(pred, gold) for gold in golds)


def conflict_shown(response: str, quotes: Iterable[str], answers: Iterable[str], conflicting: Iterable[str]) -> dict[str, bool]:
    """For a question whose sources disagree: ``both_cited`` when the response shows a
    gold value and a conflicting one and each is inside some cited quote; ``misled``
    when it shows a conflicting value and no gold one."""
    quotes = list(quotes)
    answers, conflicting = [a for a in answers if a.strip()], [c for c in conflicting if c.strip()]
    gold_shown = answer_correct(response, answers)
    other_shown = answer_correct(response, conflicting)
    gold_cited = any(answer_correct(q, answers) for q in quotes)
    other_cited = any(answer_correct(q, conflicting) for q in quotes)
    return {"both_cited": gold_shown and other_shown and gold_cited and other_cited,
            "misled": other_shown and not gold_shown}


# --------------------------------------------------------------------------- citations


def citation_valid(quote: str, article_text: str) -> bool:
    """The quote is a non-empty verbatim substring of the article (no normalisation at all)."""
    return bool(quote) and quote in article_text


def _normalise_quote(text: str) -> str:
    # All whitespace goes, not just spaces/newlines: citation overlap is our own rule,
    # and a quote re-wrapped with tabs or CRLF is still the same passage.
    return "".join(text.split()).lower()


def _shingles(text: str, size: int) -> set[str]:
    return {text[i : i + size] for i in range(len(text) - size + 1)}


def quotes_overlap(a: str, b: str, min_chars: int = OVERLAP_MIN_CHARS) -> bool:
    """After removing whitespace and lowercasing, one contains the other or they share
    a run of at least ``min_chars`` characters.

    Two strings share such a run exactly when they share a ``min_chars``-long shingle,
    which is a linear-time set lookup instead of a quadratic longest-common-substring.
    """
    x, y = _normalise_quote(a), _normalise_quote(b)
    if not x or not y:
        return False
    if x in y or y in x:
        return True
    if min(len(x), len(y)) < min_chars:
        return False
    short, long_ = (x, y) if len(x) <= len(y) else (y, x)
    grams = _shingles(short, min_chars)
    return any(long_[i : i + min_chars] in grams for i in range(len(long_) - min_chars + 1))


def citation_support(
    quotes: Iterable[str], answers: Iterable[str], evidence_quotes: Iterable[str]
) -> bool:
    """Some cited quote contains an acceptable answer (ignoring case) or overlaps a gold
    evidence quote (see :func:`quotes_overlap`)."""
    answer_list = [a for a in answers if a.strip()]
    evidence_list = list(evidence_quotes)
    for quote in quotes:
        if answer_correct(quote, answer_list):
            return True
        if any(quotes_overlap(quote, ev) for ev in evidence_list):
            return True
    return False


# -------------------------------------------------------------------------- abstention


def _field(record: Mapping[str, Any] | Any, name: str) -> bool:
    """Read a flag from a dict or an object, so runners can pass either."""
    value = record[name] if isinstance(record, Mapping) else getattr(record, name)
    return bool(value)


def abstention_pr(records: Iterable[Mapping[str, Any] | Any]) -> dict[str, float | None]:
    """Precision and recall of abstaining, with "unanswerable" as the positive class.

    precision: of the abstentions, the share on unanswerable questions (None if no
    abstentions); recall: of the unanswerable questions, the share abstained on (None if
    there are none).
    """
    abstained = unanswerable = both = 0
    for record in records:
        a = _field(record, "abstained")
        u = not _field(record, "answerable")
        abstained += a
        unanswerable += u
        both += a and u
    return {
        "precision": both / abstained if abstained else None,
        "recall": both / unanswerable if unanswerable else None,
    }


# ----------------------------------------------------------------------------- latency


def percentiles(values_ms: Iterable[float]) -> dict[str, float | None]:
    """p50, p95 (linear interpolation, numpy's default), max and mean; all None when empty."""
    arr = np.asarray(list(values_ms), dtype=float)
    if arr.size == 0:
        return {"p50": None, "p95": None, "max": None, "mean": None}
    p50, p95 = np.percentile(arr, [50, 95], method="linear")
    return {"p50": float(p50), "p95": float(p95), "max": float(arr.max()), "mean": float(arr.mean())}
