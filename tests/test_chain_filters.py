"""The chain's optional ``filters`` input reaches retrieval (the chat's outlet, date and article filters)."""

from __future__ import annotations

from datetime import date

import pytest

from rag.chain import ask, build_chain
from rag.retrieve.filters import Filters
from rag.types import Article

QUESTION = "Where will Trump and Putin meet?"


@pytest.fixture(scope="module")
def chain(seed_engine):
    return build_chain(seed_engine)


def _sources(answer) -> set:
    return {c.source for c in answer.citations} | {r.source for r in answer.related}


def test_outlet_filter_keeps_every_source_in_that_outlet(seed_engine, chain):
    unfiltered = ask(seed_engine, QUESTION, chain=chain)
    assert len(_sources(unfiltered)) > 1  # otherwise the filter below would prove nothing
    a = ask(seed_engine, QUESTION, chain=chain, filters=Filters(sources=frozenset({"bbc"})))
    assert a.related and _sources(a) == {"BBC"}


def test_article_filter_and_an_empty_date_range(seed_engine, chain):
    bbc = next(x for x in seed_engine.snapshot.articles() if x.source == "BBC")
    a = ask(seed_engine, QUESTION, chain=chain, filters=Filters(article_ids=frozenset({bbc.article_id})))
    assert {c.article_id for c in a.citations} | {r.article_id for r in a.related} == {bbc.article_id}
    # The seed files carry no dates (they are dated by the day they were added): a range
    # that ends before then leaves nothing to search.
    none = ask(seed_engine, QUESTION, chain=chain, filters=Filters(date_to=date(2020, 1, 1)))
    assert none.abstained and not none.citations and not none.related


def test_filters_match_one_article_by_the_retrievers_rule():
    art = Article("a1", "T", "x", "BBC", None, "2025-10-17T09:00:00Z")
    assert Filters(sources=frozenset({"bbc"})).matches(art)
    assert not Filters(sources=frozenset({"AP"})).matches(art)
    assert Filters(date_from=date(2025, 10, 17), date_to=date(2025, 10, 17)).matches(art)
    assert not Filters(date_to=date(2025, 10, 16)).matches(art)
    assert not Filters(date_from=date(2025, 1, 1)).matches(Article("a2", "T", "x"))  # undated: out
    assert not Filters(article_ids=frozenset({"zz"})).matches(art)
    assert Filters().matches(Article("a2", "T", "x"))
