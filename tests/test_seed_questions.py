"""The hand-written question set over the seed articles (eval/questions/seeds.jsonl).

Checks the set is usable for evaluation without any model: it loads, has the mix of
question types the evaluation reports on, and every gold quote is verbatim article text
that survives cleaning (so it can be retrieved and cited), with the acceptable answers
inside the quotes.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest

from eval.question_sets import Question, load_questions

ROOT = Path(__file__).resolve().parent.parent
SEED_SET = ROOT / "eval" / "questions" / "seeds.jsonl"
SEED_FILES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "seeds").glob("*.txt"))

# Types for which every listed answer must be backed by some quote: a conflict lists
# each article's value, a multi-article question one fact from each article.
EACH_ANSWER_TYPES = {"conflict", "multi-article"}
KNOWN_TYPES = {"factoid", "conflict", "followup", "unanswerable", "multi-article"}

REQUIRED_ANSWERABLE = {
    "Where did Trump and Putin agree to meet?": "Budapest",
    "How many ballistic missiles and drones did Russia launch before the call?": "28 ballistic missiles and 320 drones",
    "What is the name of the US land-based Tomahawk launcher?": "Typhoon",
    "Who will lead the US delegation?": "Marco Rubio",
    "Where will Trump and Putin meet?": "Budapest",
    "What is the range of a Tomahawk missile?": None,  # a conflict: several values
}
REQUIRED_UNANSWERABLE = ("What is the population of Budapest?", "Who won the 2024 Nobel Peace Prize?")

QUESTIONS = load_questions(SEED_SET)
ANSWERABLE = [q for q in QUESTIONS if q.answerable]


@lru_cache(maxsize=None)
def raw_text(rel: str) -> str:
    return (ROOT / rel).read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def clean_text(rel: str) -> str:
    from rag.ingest.readers import load_file
    from rag.settings import Settings

    result = load_file(ROOT / rel, Settings())
    assert not result.problems, result.problems
    assert len(result.articles) == 1
    return result.articles[0].text


def _ids(questions: list[Question]) -> list[str]:
    return [q.id for q in questions]


# ------------------------------------------------------------------------------ the set


def test_size_and_mix() -> None:
    types = Counter(q.type for q in QUESTIONS)
    assert len(QUESTIONS) >= 40, types
    assert sum(not q.answerable for q in QUESTIONS) >= 8, types
    assert types["conflict"] >= 3, types
    assert types["multi-article"] >= 1, types
    assert set(types) <= KNOWN_TYPES, types


def test_follow_ups_point_at_earlier_questions() -> None:
    position = {q.id: i for i, q in enumerate(QUESTIONS)}
    follow_ups = [q for q in QUESTIONS if q.follows is not None]
    assert len(follow_ups) >= 3
    for q in follow_ups:
        assert q.follows in position, q
        assert position[q.follows] < position[q.id], q
        assert q.type == "followup", q
    assert all(q.follows is not None for q in QUESTIONS if q.type == "followup")


def test_unanswerable_questions_have_no_gold() -> None:
    for q in QUESTIONS:
        assert q.answerable == (q.type != "unanswerable"), q
        if not q.answerable:
            assert q.answers == () and q.evidence == (), q


def test_required_questions_present() -> None:
    by_text = {q.question: q for q in QUESTIONS}
    for text, answer in REQUIRED_ANSWERABLE.items():
        assert text in by_text, text
        q = by_text[text]
        assert q.answerable and q.evidence, q
        if answer is not None:
            assert answer in q.answers, q
    assert by_text["What is the range of a Tomahawk missile?"].type == "conflict"
    for text in REQUIRED_UNANSWERABLE:
        assert text in by_text and not by_text[text].answerable, text


def test_every_seed_is_covered() -> None:
    assert len(SEED_FILES) == 5
    per_file = Counter(f for q in QUESTIONS for f in {e.file for e in q.evidence})
    for rel in SEED_FILES:
        assert per_file[rel] >= 5, (rel, per_file)


# ------------------------------------------------------------------------ per question


@pytest.mark.parametrize("q", ANSWERABLE, ids=_ids(ANSWERABLE))
def test_evidence_is_verbatim_article_text(q: Question) -> None:
    assert 1 <= len(q.evidence) <= 3
    for ev in q.evidence:
        assert ev.file in SEED_FILES, ev
        assert ev.quote == ev.quote.strip() and "\n" not in ev.quote, ev
        assert ev.quote in raw_text(ev.file), f"not in the file: {ev.quote!r}"
        # Cleaning strips boilerplate; a gold quote must be article text that survives.
        assert ev.quote in clean_text(ev.file), f"not in the cleaned article: {ev.quote!r}"


@pytest.mark.parametrize("q", ANSWERABLE, ids=_ids(ANSWERABLE))
def test_answers_are_in_the_evidence(q: Question) -> None:
    assert q.answers, q
    quotes = [ev.quote.lower() for ev in q.evidence]
    supported = [a for a in q.answers if any(a.lower() in quote for quote in quotes)]
    if q.type in EACH_ANSWER_TYPES:
        assert supported == list(q.answers), f"answers without a quote: {set(q.answers) - set(supported)}"
        if q.type == "conflict":
            # One quote per article, from more than one article.
            files = [ev.file for ev in q.evidence]
            assert len(set(files)) == len(files) >= 2, files
        else:
            assert len({ev.file for ev in q.evidence}) >= 2, q.evidence
    else:
        assert supported, f"no answer of {q.answers} appears in the evidence"
    # Every variant is real article wording, so a response built from quotes can contain it.
    for answer in q.answers:
        assert any(answer.lower() in clean_text(f).lower() for f in SEED_FILES), answer
