"""Boilerplate removal on the five real seed pages, plus generic behaviour.

The seed checks pin what each real page must lose (site chrome) and keep (a sample
of its real sentences, verbatim). The corpus checks guard the conservative
``clean_body`` (and ``clean_text``) against dropping evidence facts of MultiHop-RAG.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rag.ingest.cleaning import CleanedText, clean_body, clean_text

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
from .conftest import MULTIHOP as BENCH


def _seed_path(prefix: str) -> Path:
    (path,) = SEEDS.glob(f"{prefix}_*.txt")
    return path


def _raw(prefix: str) -> str:
    return _seed_path(prefix).read_text(encoding="utf-8")


def _unmark(text: str) -> str:
    """The page's footnote marks ("Alaska[1]") are the one thing cleaning takes out of a kept line."""
    return re.sub(r"(?<=[\w.,;:!?”’\"')])\[\d{1,3}\]", "", text)


@pytest.fixture(scope="module")
def cleaned() -> dict[str, CleanedText]:
    return {p: clean_text(_raw(p), filename=_seed_path(p).name) for p in ("000", "001", "002", "003", "004")}


def _lines(text: str) -> set[str]:
    """Every line of the text, whitespace-normalised (NBSP included)."""
    return {" ".join(line.split()) for line in text.split("\n") if line.strip()}


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


# ------------------------------------------------------------------ boilerplate gone

# Substrings that must not survive anywhere in the cleaned text.
FORBIDDEN: list[tuple[str, str]] = [
    ("000", "Support The Moscow Times!"),
    ("000", "Daniel Torok / The White House"),
    ("000", "President Donald Trump with President Volodymyr Zelensky in the White House."),
    ("000", "Sign up for our free weekly newsletter"),
    ("000", "Our weekly newsletter contains"),
    ("000", "You will receive it in your mailbox every Friday."),
    ("000", "Subscribers agree to the Privacy Policy"),
    ("000", "A Message from The Moscow Times:"),
    ("000", "Dear readers,"),
    ("000", "We are facing unprecedented challenges."),
    ("000", "These actions are direct attempts to silence independent journalism in Russia."),
    ("000", "We, the journalists of The Moscow Times, refuse to be silenced."),
    ("000", "please support us monthly starting from just $2"),
    ("000", "By supporting The Moscow Times, you're defending open, independent journalism"),
    ("000", "paiment methods"),
    ("000", "Not ready to support today?"),
    ("000", "Remind me later."),
    ("001", "Follow the twists and turns"),
    ("001", "UK readers can subscribe here."),
    ("001", "Those outside the UK can register here."),
    ("001", "ReutersUkrainian"),
    ("001", "ReutersAt"),
    ("002", "Recommended Stories"),
    ("002", "list of 3 items"),
    ("002", "end of list"),
    ("002", "Advertisement"),
    ("002", "INTERACTIVE - What are Tomahawk missiles - September 30, 2025-1759225571"),
    ("002", "(www.aljazeera.com)"),
    ("002", "^ Alaska"),
    ("002", "^ expressed deep concern"),
    ("002", "By admin"),
    ("003", "| Politics"),
    ("003", "Market Data"),
    ("003", "Welcome to EconoTimes"),
    ("003", "Sign up for daily updates for the most important"),
    ("003", "stories unfolding in the global economy."),
    ("003", "Source: The White House from Washington, DC, Public domain, via Wikimedia Commons"),
    ("004", "Source :Skai"),
    ("004", "With a wealth of experience"),
    ("004", "I work as a freelance writer and editor"),
]


@pytest.mark.parametrize(("seed", "fragment"), FORBIDDEN)
def test_boilerplate_is_removed(cleaned: dict[str, CleanedText], seed: str, fragment: str) -> None:
    assert fragment in _raw(seed) or fragment in " ".join(_raw(seed).split())  # the test means something
    assert fragment not in cleaned[seed].text


# Short chrome words that also occur inside sentences ("Once", "close"): they must
# not survive as lines of their own.
FORBIDDEN_LINES: list[tuple[str, str]] = [
    ("000", "Once"),
    ("000", "Monthly"),
    ("000", "Annual"),
    ("000", "Continue"),
    ("000", "Read more"),
    ("002", "References"),
    ("002", "(Al Jazeera)"),
    ("003", "Menu"),
    ("003", "Search"),
    ("003", "Close"),
    ("003", "• Market Data"),
]


@pytest.mark.parametrize(("seed", "line"), FORBIDDEN_LINES)
def test_chrome_lines_are_removed(cleaned: dict[str, CleanedText], seed: str, line: str) -> None:
    assert line in _lines(_raw(seed))
    assert line not in _lines(cleaned[seed].text)


def test_removed_lists_what_was_dropped(cleaned: dict[str, CleanedText]) -> None:
    removed = cleaned["002"].removed
    assert removed.count("Advertisement") == 3
    assert "Recommended Stories" in removed and "By admin" in removed
    assert "Support The Moscow Times!" in cleaned["000"].removed
    # The title moved to `title`; it is not "removed" boilerplate.
    assert cleaned["000"].title not in cleaned["000"].removed


# ------------------------------------------------------------------- real text kept

KEPT: dict[str, list[str]] = {
    "000": [
        "U.S. President Donald Trump is set to meet Ukrainian counterpart Volodymyr Zelensky at the White House "
        "on Friday, with discussions over whether Washington will supply long-range Tomahawk missiles to Kyiv "
        "expected to top the agenda.",
        "Trump’s recent ceasefire between Israel and Gaza has raised expectations that his administration will "
        "now turn its full attention to ending Russia’s war in Ukraine.",
        "“We can already see that Moscow is rushing to resume dialogue as soon as it hears about Tomahawks,” "
        "Zelensky said.",
        "Speaking at a meeting of NATO defense ministers in Brussels this week, Defense Secretary Pete Hegseth "
        "warned there would be “costs” for Russia if no peace deal could be reached.",
        "Vance said Trump would make the final decision.",
        "The meeting with Zelensky is expected to include Vance, Hegseth and Trump’s special envoy Steve Witkoff.",
        "“Witkoff has Putin’s confidence. In a world where people don’t trust each other, Witkoff is an important "
        "player,” Townsend told The Moscow Times.",
    ],
    "001": [
        "Ukrainian President Volodymyr Zelensky will meet with U.S. President Donald Trump in Washington on "
        "Friday, as Trump weighs whether to arm Ukraine with Tomahawk missiles capable of striking deep into "
        "Russia.",
        "When asked earlier this week if Trump would consider giving Tomahawks to Ukraine, he replied: "
        "“We’ll see…I might.”",
        "He later told reporters he hoped to meet Putin in Hungary “within two weeks.”",
        "Viktor Orban told state radio he would speak with the Russian president later on Friday.",
        "The new system is called Typhoon and entered service with the US military in 2023.",
        "But public relations with Zelensky have improved significantly in recent months.",
        "At the end of July, Trump gave Putin a deadline of less than two weeks to agree to a ceasefire or face "
        "drastic sanctions, including measures against countries that continue to trade with Russia.",
        "Zelensky has also echoed these calls several times.",
    ],
    "002": [
        "The Kremlin has also confirmed the meeting.",
        "The meeting will be Putin’s first visit to an EU nation since the war in Ukraine[3] began in 2022.",
        "“Do they [Russia] want Tomahawks going in their direction? I don’t think so,” the US president said.",
        "The US, United Kingdom, Netherlands and Australia have all used these missiles in combat.",
        "It is really not clear.",
        "Moscow is about 800km (500 miles) from Kyiv.",
        "But Trump said formal trade talks would take place only once the war in Ukraine ends.",
        "“I suspect both leaders [Trump and Putin] have their reasons for meeting,” Lesser said.",
        "Nedelcu said the world will be watching Trump and Putin’s meeting in Budapest.",
    ],
    "003": [
        "Ukrainian President Volodymyr Zelenskiy visited the White House seeking advanced U.S. weapons to "
        "continue defending against Russia, but U.S. President Donald Trump appeared more focused on brokering "
        "peace than expanding Ukraine’s arsenal.",
        "“Stop the killing,” he said, adding that he had delivered the same message to Putin.",
        "“We don’t have Tomahawks, that’s why we need them,” he told reporters.",
        "He said he now relies on Trump’s influence to push Putin toward ending the war.",
        "Analysts, including Michael Carpenter from the International Institute for Strategic Studies, said the "
        "administration’s stance shows “no inclination to impose costs on Russia.”",
        "Experts like Mykola Bielieskov argue that supplying Tomahawk missiles would help Ukraine disrupt "
        "Russia’s war industry and shift battlefield dynamics.",
    ],
    "004": [
        "His desire Donald Trump to close yet another peace deal seems to be standing in the way of the "
        "Ukrainian president’s effort Volodymyr Zelensky to upgrade his country’s arsenal to continue his war "
        "with Russia.",
        "“We don’t have Tomahawk, that’s why we need Tomahawk,” he said.",
        "Trump replied: “We’d rather you didn’t need Tomahawk.”",
        "“The reality is that there is no willingness to impose costs on Russia,” he said.",
        "Both sides have stepped up attacks on energy networks, while Russian drones and aircraft have invaded "
        "the airspace of NATO countries, causing concern.",
        "Moscow has warned that providing such missiles would constitute a serious escalation.",
        "It’s a matter of causing a rift in Russia’s military-industrial complex.",
    ],
}


@pytest.mark.parametrize(("seed", "sentence"), [(s, x) for s, xs in KEPT.items() for x in xs])
def test_real_sentences_survive_verbatim(cleaned: dict[str, CleanedText], seed: str, sentence: str) -> None:
    assert sentence in _raw(seed)
    assert _unmark(sentence) in cleaned[seed].text


@pytest.mark.parametrize("seed", ["000", "001", "002", "003", "004"])
def test_every_kept_line_is_verbatim_from_the_page(cleaned: dict[str, CleanedText], seed: str) -> None:
    raw = _unmark(_raw(seed))
    text = cleaned[seed].text
    assert text and "\n\n\n" not in text and text == text.strip()
    for line in text.split("\n"):
        assert line == "" or line in raw, line


@pytest.mark.parametrize("seed", ["000", "001", "002", "003", "004"])
def test_every_body_sentence_line_survives(cleaned: dict[str, CleanedText], seed: str) -> None:
    """Stronger than the sample: every long punctuated line of the page that is not in
    the page's removed list is in the text."""
    result = cleaned[seed]
    removed = {" ".join(r.split()) for r in result.removed}
    for line in _raw(seed).split("\n"):
        norm = " ".join(line.split())
        if len(norm.split()) >= 8 and re.search(r"[.!?”]$", norm) and norm not in removed:
            assert _unmark(norm.removeprefix("Reuters")) in " ".join(result.text.split()), norm


def test_footnote_marks_are_dropped_so_they_cannot_pass_for_citations(cleaned: dict[str, CleanedText]) -> None:
    text = cleaned["002"].text
    assert "Alaska[1]" in _raw("002") and "Alaska[1]" not in text
    assert "high-stakes summit in Alaska in August" in text
    assert not re.search(r"\w\[\d+\]", text)


def test_glued_reuters_credit_is_stripped_but_sentence_kept(cleaned: dict[str, CleanedText]) -> None:
    paragraphs = cleaned["001"].text.split("\n\n")
    assert paragraphs[0].startswith("Ukrainian President Volodymyr Zelensky will meet")
    assert any(p.startswith("At the end of July, Trump gave Putin a deadline") for p in paragraphs)
    assert "Reuters" not in cleaned["001"].text


def test_body_subheadings_are_kept(cleaned: dict[str, CleanedText]) -> None:
    # Short headings inside the body are not chrome; dropping them would lose structure.
    assert "Escalation of war" in _lines(cleaned["004"].text)
    assert "Here’s what we know:" in _lines(cleaned["002"].text)


# --------------------------------------------------------------------- title/source


@pytest.mark.parametrize(
    ("seed", "title"),
    [
        ("000", "Trump and Zelensky to Meet as Kyiv Presses for Tomahawks"),
        ("001", "Zelensky to argue for missiles at White House, after Trump, Putin agree"),
        ("002", None),  # no headline line on the page: the caller falls back
        ("003", "Trump Pushes for Ukraine-Russia Ceasefire as Zelenskiy Seeks U.S. Weapons Support"),
        ("004", None),
    ],
)
def test_title(cleaned: dict[str, CleanedText], seed: str, title: str | None) -> None:
    result = cleaned[seed]
    assert result.title == title
    if title:
        # Stored in `title`, not repeated in the text (003 also had it as a caption).
        assert title not in result.text


@pytest.mark.parametrize(
    ("seed", "source"),
    [("000", "The Moscow Times"), ("001", "BBC"), ("002", "Al Jazeera"), ("003", "EconoTimes"), ("004", "Skai")],
)
def test_source(cleaned: dict[str, CleanedText], seed: str, source: str) -> None:
    assert cleaned[seed].source == source


def test_source_from_glued_wire_credit_when_nothing_else_names_the_site() -> None:
    raw = "Headline about talks in Geneva\n\nReutersThe talks ended on Friday without an agreement.\n"
    assert clean_text(raw).source == "Reuters"


def test_title_from_slug_filename() -> None:
    raw = "World\n\nLocal council approves new budget for schools\n\nThe council voted on Monday to approve it.\n"
    result = clean_text(raw, filename="local-council-approves-new-budget.txt")
    assert result.title == "Local council approves new budget for schools"
    assert result.text == "The council voted on Monday to approve it."


# ------------------------------------------------------------------ generic behaviour

ARTICLE = """City opens new library after years of delays

The city opened its new central library on Saturday, three years later than planned.

Officials said construction costs rose by 40 percent because of supply problems.

What happens next?

The old building will be turned into housing, the mayor said. Work starts in May.

Support for the project was strong among residents, according to a survey.

He was 84.
"""


def test_plain_article_loses_nothing() -> None:
    result = clean_text(ARTICLE)
    assert result.title == "City opens new library after years of delays"
    body = ARTICLE.split("\n\n", 1)[1].strip()
    assert result.text == body
    assert result.removed == []


def test_list_at_the_end_of_an_article_is_kept() -> None:
    raw = (
        "The team announced its roster for the season on Tuesday.\n\n"
        "The following players were selected:\n\n"
        "Goalkeepers\n\nJohn Smith\n\nDefenders\n\nMark Jones\n"
    )
    result = clean_text(raw)
    assert result.text.endswith("Goalkeepers\n\nJohn Smith\n\nDefenders\n\nMark Jones")


def test_hard_wrapped_paragraph_stays_one_verbatim_paragraph() -> None:
    raw = (
        "The committee met for six hours on Thursday and agreed on a plan that\n"
        "would cut emissions from the city's bus fleet by half before 2030, the\n"
        "chair said in a statement released after the meeting.\n"
    )
    assert clean_text(raw).text == raw.strip()


def test_line_endings_and_empty_input() -> None:
    assert clean_text("").text == "" and clean_text("   \n\n ").title is None
    result = clean_text("First paragraph of the story is here.\r\n\r\nSecond paragraph follows it.\r\n")
    assert result.text == "First paragraph of the story is here.\n\nSecond paragraph follows it."


def test_prose_about_newsletters_is_not_a_call_to_action() -> None:
    raw = (
        "The company launched a newsletter last year, and subscribers can sign up on its website.\n\n"
        "Follow the money, investigators told reporters, and you will find the culprit.\n"
    )
    assert clean_text(raw).text == raw.strip()
    assert clean_body(raw) == raw.strip()


def test_dear_readers_without_an_appeal_is_kept() -> None:
    raw = "Dear readers,\n\nThis week we look back at the storm that hit the coast in March.\n"
    assert clean_text(raw).text == raw.strip()


WIRE_PAGE = """Skip to main content
Home
World
U.S.

Ukraine says Russian drones hit power grid overnight

By JANE DOE and JOHN ROE
Updated 10:45 AM EDT, October 17, 2025
Share
Facebook
X
Print

KYIV, Ukraine (AP) — Russian drones struck energy facilities in several regions of Ukraine overnight, officials said.

The attack left thousands without power. "We are restoring supply," the energy ministry said.

Related: Ukraine and Russia swap prisoners in latest exchange

Repairs are expected to take several days.

Copyright 2025 The Associated Press. All rights reserved. This material may not be published or redistributed.
JANE DOE
Doe is an AP reporter covering Ukraine.
twitter
mailto
"""


def test_wire_style_page() -> None:
    # A page shaped unlike the seeds: nav, byline, dateline, share bar, copyright, bio.
    result = clean_text(WIRE_PAGE)
    assert result.title == "Ukraine says Russian drones hit power grid overnight"
    assert result.source == "The Associated Press"
    assert result.text.split("\n\n") == [
        "KYIV, Ukraine (AP) — Russian drones struck energy facilities in several regions of Ukraine overnight, "
        "officials said.",
        'The attack left thousands without power. "We are restoring supply," the energy ministry said.',
        "Repairs are expected to take several days.",
    ]


def test_byline_versus_sentence_starting_with_by() -> None:
    raw = (
        "By Friday, officials had evacuated 300 people from the coast.\n\nBy Jane Doe\n\n"
        "The storm weakened later.\n\nBy March the town was rebuilt\n"
    )
    result = clean_text(raw)
    assert result.removed == ["By Jane Doe"]
    assert "By Friday, officials had evacuated 300 people from the coast." in result.text
    assert result.text.endswith("By March the town was rebuilt")


def test_table_rows_are_not_navigation() -> None:
    raw = "The top scorers this season are listed below.\n\n1 | Jokic | Denver | 27.1\n2 | Doncic | Dallas | 33.9\n\nThe season ends in April."
    assert clean_text(raw).text == raw.replace("27.1\n2", "27.1\n\n2")


# ----------------------------------------------------------------------- clean_body


def test_clean_body_drops_only_obvious_furniture() -> None:
    body = (
        "First paragraph of the article.\r\n\r\nAdvertisement\r\n\r\nRecommended Stories\r\n\r\n"
        "list of 3 items\r\n\r\nend of list\r\n\r\nSign up for our free weekly newsletter\r\n\r\n"
        "Second paragraph, with  two spaces kept.\r\nA line right after it.\r\n"
    )
    assert clean_body(body) == (
        "First paragraph of the article.\n\nSecond paragraph, with  two spaces kept.\nA line right after it."
    )


def test_clean_body_keeps_unmatched_text_byte_for_byte() -> None:
    body = "Menu\n\nSearch\n\nBy admin\n\nIt is really not clear.\n\nSource :Skai"
    # Chrome-looking lines are left to clean_text; a body that is already extracted
    # may legitimately contain them.
    assert clean_body(body) == body


# --------------------------------------------------------------- real corpus facts


def _corpus_and_facts() -> tuple[dict[str, str], list[tuple[str, str]]]:
    if not (BENCH / "corpus.json").exists():
        pytest.skip("MultiHop-RAG benchmark data not available")
    corpus = json.loads((BENCH / "corpus.json").read_text(encoding="utf-8"))
    queries = json.loads((BENCH / "queries_dev.json").read_text(encoding="utf-8"))
    bodies = {a["url"]: a["body"] for a in corpus}
    facts = [(e["url"], e["fact"]) for q in queries for e in q["evidence_list"]]
    return bodies, facts


def test_clean_body_keeps_every_evidence_fact() -> None:
    bodies, facts = _corpus_and_facts()
    cleaned = {url: _squash(clean_body(body)) for url, body in bodies.items()}
    lost = [fact for url, fact in facts if _squash(fact) not in cleaned[url]]
    assert len(facts) > 1000
    assert lost == []


def test_clean_text_keeps_every_evidence_fact() -> None:
    # Stress check: clean_text is meant for raw pages, but on real article bodies it
    # must not drop body text either.
    bodies, facts = _corpus_and_facts()
    needed = {url for url, _ in facts}
    cleaned = {url: _squash(clean_text(bodies[url]).text) for url in needed}
    lost = [fact for url, fact in facts if _squash(fact) not in cleaned[url]]
    assert lost == []
