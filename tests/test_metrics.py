"""Metrics against hand-computed values (see the arithmetic in each test)."""

from __future__ import annotations

import difflib
import random
from dataclasses import dataclass

import pytest

from eval.metrics import (
    RETRIEVAL_KEYS,
    _squash,
    abstention_pr,
    answer_correct,
    ap_at,
    citation_support,
    citation_valid,
    evidence_recall_at,
    hits_at,
    mean_metrics,
    mrr_at,
    percentiles,
    quotes_overlap,
    retrieval_metrics,
    token_f1,
)

# ------------------------------------------------------------------ retrieval (paper)


def test_squash_removes_only_spaces_and_newlines() -> None:
    # The paper's script strips " " and "\n" and nothing else; tabs/CR must survive.
    assert _squash(" a b\nc \n") == "abc"
    assert _squash("a\tb\rc") == "a\tb\rc"


def test_chunk_with_two_facts_counts_twice_in_map() -> None:
    facts = ["alpha beta", "gamma delta", "epsilon zeta"]
    chunks = ["noise", "alpha beta and gamma delta", "more noise", "epsilon zeta here"]
    # Hits at ranks 2 (two new facts) and 4 (one new fact):
    # AP = (2/2 + 1/4) / min(3, 10) = 1.25 / 3
    assert ap_at(chunks, facts) == pytest.approx(1.25 / 3)
    assert mrr_at(chunks, facts) == pytest.approx(0.5)
    assert hits_at(chunks, facts, 1) == 0.0
    assert hits_at(chunks, facts, 2) == 1.0
    assert evidence_recall_at(chunks, facts) == 1.0
    assert evidence_recall_at(chunks, facts, k=2) == pytest.approx(2 / 3)
    assert retrieval_metrics(chunks, facts) == pytest.approx(
        {"hits@4": 1.0, "hits@10": 1.0, "mrr@10": 0.5, "map@10": 1.25 / 3, "evidence_recall@10": 1.0}
    )


def test_fact_split_across_two_chunks_is_not_found() -> None:
    facts = ["the quick brown fox jumps"]
    chunks = ["the quick brown", "fox jumps over"]
    m = retrieval_metrics(chunks, facts)
    assert m == {"hits@4": 0.0, "hits@10": 0.0, "mrr@10": 0.0, "map@10": 0.0, "evidence_recall@10": 0.0}


def test_duplicate_chunks_add_nothing_to_map() -> None:
    facts = ["fact one", "fact two"]
    chunks = ["has fact one", "has fact one", "has fact two"]
    # Ranks 1, 2, 3 are all hits, but rank 2 finds nothing new:
    # AP = (1/1 + 0/2 + 1/3) / 2 = 2/3
    assert ap_at(chunks, facts) == pytest.approx(2 / 3)
    assert mrr_at(chunks, facts) == 1.0


def test_duplicate_facts_count_in_denominator_like_the_paper() -> None:
    # The paper's script finds a repeated fact once but divides by the list length:
    # AP = (1/1) / min(2, 10) = 0.5. Recall counts list entries: both copies found.
    facts = ["same fact", "same fact"]
    chunks = ["the same fact"]
    assert ap_at(chunks, facts) == pytest.approx(0.5)
    assert evidence_recall_at(chunks, facts) == 1.0


def test_fewer_chunks_than_k() -> None:
    facts = ["gold"]
    chunks = ["x", "y", "z", "w", "gold text"]  # only 5 chunks, hit at rank 5
    assert hits_at(chunks, facts, 4) == 0.0
    assert hits_at(chunks, facts, 10) == 1.0
    assert mrr_at(chunks, facts, 10) == pytest.approx(1 / 5)
    assert ap_at(chunks, facts, 10) == pytest.approx(1 / 5)
    assert retrieval_metrics([], facts)["hits@10"] == 0.0


def test_chunks_beyond_k_are_ignored() -> None:
    facts = ["gold"]
    chunks = ["x"] * 10 + ["gold"]  # rank 11
    assert retrieval_metrics(chunks, facts) == {
        "hits@4": 0.0, "hits@10": 0.0, "mrr@10": 0.0, "map@10": 0.0, "evidence_recall@10": 0.0,
    }


def test_space_and_newline_differences_still_match() -> None:
    facts = ["New customers can\nget up to $1000 in bonus bets."]
    chunks = ["Promo: New  customers can get\n up to $1000 in bonus\nbets. Terms apply."]
    assert hits_at(chunks, facts, 1) == 1.0
    # A tab is not removed, so this is a miss, as it would be in the paper.
    assert hits_at(["New\tcustomers can get up to $1000 in bonus bets."], facts, 1) == 0.0


def test_twelve_facts_cap_the_denominator_at_ten() -> None:
    facts = [f"fact number {i:02d}" for i in range(12)]
    # Rank 1 holds five facts: AP = (5/1) / min(12, 10) = 0.5 (0.4167 uncapped).
    chunks = [" ".join(facts[:5])]
    assert ap_at(chunks, facts) == pytest.approx(0.5)
    assert evidence_recall_at(chunks, facts) == pytest.approx(5 / 12)
    # The paper's formula adds count/rank, so one chunk holding all twelve scores 12/10.
    assert ap_at([" ".join(facts)], facts) == pytest.approx(1.2)


def test_map_adds_count_over_rank_not_precision_at_rank() -> None:
    facts = ["f-a", "f-b"]
    chunks = ["f-a", "x", "f-b"]
    # Paper: (1/1 + 1/3) / 2 = 2/3 (standard AP would use 2/3 at rank 3 and give 5/6).
    assert ap_at(chunks, facts) == pytest.approx(2 / 3)


def test_undefined_inputs() -> None:
    assert retrieval_metrics(["anything"], []) == dict.fromkeys(RETRIEVAL_KEYS)
    with pytest.raises(ValueError, match="no gold facts"):
        hits_at(["x"], [], 10)
    with pytest.raises(ValueError, match="empty"):
        mrr_at(["x"], [" \n"])
    with pytest.raises(ValueError, match="k must be"):
        ap_at(["x"], ["x"], k=0)


def test_mean_metrics_ignores_none() -> None:
    rows = [{"a": 1.0, "b": None, "c": None}, None, {"a": 0.0, "b": 1.0, "c": None}]
    assert mean_metrics(rows) == {"a": 0.5, "b": 1.0, "c": None}
    assert mean_metrics([]) == {}


# ---------------------------------------------------------------------------- answers


def test_answer_correct_is_case_insensitive_substring() -> None:
    assert answer_correct("It is CAESARS Sportsbook, per both.", ["Caesars Sportsbook"])
    assert answer_correct("Yes.", ["no", "yes"])
    assert not answer_correct("Caesars", ["Caesars Sportsbook"])
    assert not answer_correct("anything", [])
    assert not answer_correct("anything", ["", "  "])  # blank answers match nothing


def test_token_f1_squad_style() -> None:
    # pred tokens [cat, sat]; gold [cat, sat, on, mat] -> P=1, R=1/2, F1=2/3
    assert token_f1("The Cat sat!", ["a cat sat on the mat"]) == pytest.approx(2 / 3)
    assert token_f1("The Cat sat!", ["a cat sat on the mat", "cat, sat."]) == 1.0  # max over answers
    assert token_f1("dog", ["cat"]) == 0.0
    # Empty after normalisation: 1 only if both sides are empty.
    assert token_f1("the", ["an"]) == 1.0
    assert token_f1("", []) == 1.0
    assert token_f1("something", []) == 0.0
    assert token_f1("", ["cat"]) == 0.0


# -------------------------------------------------------------------------- citations


def test_citation_valid_is_exact() -> None:
    article = "Line one.\nThe quick brown fox."
    assert citation_valid("The quick brown fox.", article)
    assert citation_valid("one.\nThe", article)
    assert not citation_valid("one. The", article)  # whitespace differs: not verbatim
    assert not citation_valid("the quick brown fox.", article)  # case differs
    assert not citation_valid("", article)


SHARED30 = "abcdefghijklmnopqrstuvwxyz0123"


def test_citation_support_by_answer_or_evidence() -> None:
    assert len(SHARED30) == 30
    evidence = ["Caesars has a competitive welcome bonus for new players."]
    assert citation_support(["... CAESARS has a ..."], ["caesars"], [])
    # Containment after whitespace removal and lowercasing.
    assert citation_support(["caesars has a\ncompetitive   welcome"], ["nope"], evidence)
    assert not citation_support(["unrelated text"], ["nope"], evidence)
    assert not citation_support([], ["caesars"], evidence)
    # A shared run of exactly 30 characters counts; 29 does not.
    assert citation_support(["111" + SHARED30 + "222"], [], ["999" + SHARED30 + "888"])
    assert not citation_support(["111" + SHARED30[:29] + "222"], [], ["999" + SHARED30[:29] + "888"])
    # The shared run may straddle whitespace in either string.
    assert citation_support(["xx " + SHARED30[:10] + "\n" + SHARED30[10:]], [], [SHARED30 + " yy"])


def test_quotes_overlap_matches_longest_common_substring() -> None:
    rng = random.Random(7)

    def noise(n: int, alphabet: str) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    for _ in range(500):
        a = noise(rng.randint(0, 90), "abc ")
        # Plant a slice of `a` (20..45 chars) in `b` so shared runs near 30 are common.
        start = rng.randint(0, max(0, len(a) - 20))
        planted = a[start : start + rng.randint(20, 45)]
        b = noise(rng.randint(0, 20), "abc\n") + planted + noise(rng.randint(0, 20), "abc\n")
        x, y = "".join(a.split()), "".join(b.split())
        match = difflib.SequenceMatcher(None, x, y, autojunk=False).find_longest_match(0, len(x), 0, len(y))
        expected = bool(x and y) and (x in y or y in x or match.size >= 30)
        assert quotes_overlap(a, b) == expected


# ------------------------------------------------------------------------- abstention


@dataclass
class _Rec:
    answerable: bool
    abstained: bool


def test_abstention_precision_recall() -> None:
    records = [
        {"answerable": False, "abstained": True},
        {"answerable": False, "abstained": False},
        {"answerable": False, "abstained": False},
        {"answerable": True, "abstained": True},
        {"answerable": True, "abstained": False},
    ]
    # 2 abstentions, 1 on an unanswerable -> P = 1/2; 3 unanswerable, 1 abstained -> R = 1/3
    assert abstention_pr(records) == pytest.approx({"precision": 0.5, "recall": 1 / 3})
    assert abstention_pr([_Rec(False, True), _Rec(True, False)]) == {"precision": 1.0, "recall": 1.0}


def test_abstention_undefined_cases() -> None:
    assert abstention_pr([_Rec(True, False)]) == {"precision": None, "recall": None}
    assert abstention_pr([_Rec(False, False)]) == {"precision": None, "recall": 0.0}
    assert abstention_pr([_Rec(True, True)]) == {"precision": 0.0, "recall": None}
    assert abstention_pr([]) == {"precision": None, "recall": None}


# ---------------------------------------------------------------------------- latency


def test_percentiles_linear_interpolation() -> None:
    # p50 of 1..4 = 2.5; p95 = 1 + 0.95 * 3 = 3.85
    assert percentiles([4, 1, 3, 2]) == pytest.approx({"p50": 2.5, "p95": 3.85, "max": 4.0, "mean": 2.5})
    assert percentiles([7.0]) == {"p50": 7.0, "p95": 7.0, "max": 7.0, "mean": 7.0}
    assert percentiles([]) == {"p50": None, "p95": None, "max": None, "mean": None}


def test_exact_match_uses_squad_normalisation():
    from eval.metrics import exact_match

    assert exact_match("The Broncos!", ["Broncos"]) and exact_match("an apple", ["Apple"])
    assert not exact_match("Denver Broncos", ["Broncos"]) and not exact_match("", ["Broncos"])


def test_conflict_shown_both_cited_and_misled():
    from eval.metrics import conflict_shown

    quotes = ["teachers for elementary schools (Grundschule)", "teachers for elementary schools (WBND-LD)"]
    both = conflict_shown("The sources differ: A: Grundschule [1] · B: WBND-LD [2]", quotes, ["Grundschule"], ["WBND-LD"])
    assert both == {"both_cited": True, "misled": False}
    only = conflict_shown("WBND-LD — ... [1]", quotes[1:], ["Grundschule"], ["WBND-LD"])
    assert only == {"both_cited": False, "misled": True}
    uncited = conflict_shown("Grundschule or WBND-LD [1]", quotes[:1], ["Grundschule"], ["WBND-LD"])
    assert uncited == {"both_cited": False, "misled": False}
