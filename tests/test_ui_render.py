"""The page's HTML, from answers built here (fields the engine does not fill yet included),
parsed back with the standard library's HTML parser to check structure and escaping."""

from __future__ import annotations

import time
from dataclasses import fields
from html.parser import HTMLParser

import pytest

pytest.importorskip("gradio")

from rag.conversations import ConversationInfo, Exchange  # noqa: E402
from rag.errors import RagError  # noqa: E402
from rag.types import Answer, Article, Citation, ConflictingValue, RelatedPassage, ShortAnswer  # noqa: E402
from ui import render  # noqa: E402
from ui.chat import make_filters, owner_of  # noqa: E402

XSS = '<img src=x onerror=alert(1)>"\'&'


class Tree(HTMLParser):
    """Every start tag with its attributes, and the text, of a fragment."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag: str, cls: str | None = None) -> list[dict]:
        return [a for t, a in self.tags if t == tag and (cls is None or cls in (a.get("class") or "").split())]

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def cite(n, aid="a1", title="Summit set", source="BBC", url="https://example.com/a", quote="They meet in Budapest.",
         start=100, end=122, published_at="2025-10-17T08:00:00"):
    return Citation(n, aid, title, source, url, published_at, quote, start, end, n, start - 20, end + 20)


def answer(**kw) -> Answer:
    base = dict(question="Where will they meet?", query="Where will they meet?",
                answer="They meet in Budapest. [1] It is in Hungary. [2] Putin[3] said so.",
                citations=[cite(1), cite(2, aid="a2", title="Talks", source="Reuters", quote="It is in Hungary.", start=5, end=22)],
                abstained=False)
    base.update(kw)
    return Answer(**base)


def test_markers_are_buttons_with_names_and_the_span_to_open():
    t = Tree(render.answer_body(answer()))
    markers = t.find("button", "marker")
    assert [m["data-n"] for m in markers] == ["1", "2"]  # "Putin[3]" is quoted text, [3] names no citation
    assert markers[0]["aria-label"] == "Source [1]: Summit set, BBC"
    assert (markers[1]["data-a"], markers[1]["data-s"], markers[1]["data-e"]) == ("a2", "5", "22")
    assert "Putin[3] said so." in t.all_text


def test_short_answer_comes_first_with_its_citation():
    html = render.answer_body(answer(short_answer=ShortAnswer("Budapest", 1, 110, 118, "place")))
    assert html.startswith('<div class="short-answer">')
    t = Tree(html.split("</div>")[0])
    assert "Budapest" in t.all_text and t.find("strong", "sa-text")
    assert [m["data-n"] for m in t.find("button", "marker")] == ["1"]


def test_conflicting_values_as_value_outlet_date_marker():
    a = answer(conflict=True, conflicting=[
        ConflictingValue("2,500 km", [1], ["BBC"], "2025-10-17"),
        ConflictingValue("1,600 km", [2], ["Reuters", "AP"], None),
    ])
    t = Tree(render.conflicting_block(a))
    rows = [r.strip() for r in t.all_text.split("\n") if r.strip()]
    text = " ".join(t.all_text.split())
    assert "2,500 km · BBC · 2025-10-17 · [1]" in text, rows
    assert "1,600 km · Reuters, AP · [2]" in text
    assert len(t.find("button", "marker")) == 2
    # The generic note is left out when the comparison is shown.
    assert "different figures" not in render.answer_body(a)
    assert "different figures" in render.answer_body(answer(conflict=True))


def test_standalone_question_shown_only_for_a_follow_up():
    assert "Searched for" not in render.answer_body(answer(query="where will they meet"))
    html = render.answer_body(answer(question="When?", query="When will Trump and Putin meet?"))
    assert "Searched for: <q>When will Trump and Putin meet?</q>" in html


def test_citations_of_one_article_share_a_card():
    a = answer(answer="A. [1] B. [2] C. [3]",
               citations=[cite(1), cite(2, aid="a2", title="Talks"), cite(3, quote="Second quote.", start=300, end=313)])
    t = Tree(render.source_cards(a.citations))
    cards = t.find("div", "src-card")
    assert [c["data-ns"].split() for c in cards] == [["1", "3"], ["2"]]
    assert len(t.find("li", "src-quote")) == 3
    assert [b["data-s"] for b in t.find("button", "quote-open")] == ["100", "300", "100"]


def test_article_text_and_urls_are_inert():
    bad = cite(1, title=XSS, source=XSS, quote=XSS, url="javascript:alert(1)")
    html = render.answer_body(answer(answer=f"{XSS} [1]", citations=[bad]))
    t = Tree(html)
    assert not t.find("img") and not t.find("a")
    assert t.all_text.count(XSS) >= 3
    for url in ("javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,x", "vbscript:x", "http:/no-host", "//x.org/a"):
        assert render.safe_url(url) is None, url
    assert render.safe_url("https://example.com/a?b=1&c=2") == "https://example.com/a?b=1&c=2"
    good = Tree(render.meta_line("BBC", None, 'https://example.com/"onmouseover="x'))
    (link,) = good.find("a")
    assert link["href"] == 'https://example.com/"onmouseover="x' and "onmouseover" not in link
    assert link["rel"] == "noopener noreferrer nofollow"

    art = Article("a1", XSS, f"before {XSS} after", XSS, "javascript:alert(1)", "2025-10-17")
    for html in (render.article_view(art, 7, 7 + len(XSS)), render.article_preview(art, 3),
                 render.library_table([(art, 3)])):
        t = Tree(html)
        assert not t.find("img") and not t.find("a") and XSS in t.all_text


def test_article_view_marks_the_span():
    art = Article("a1", "T", "One. Two three. Four.", "BBC")
    t = Tree(render.article_view(art, 5, 15))
    assert t.find("mark", "cited") and "Two three." in render.article_view(art, 5, 15)
    assert t.find("div", "article-body")[0]["tabindex"] == "0"  # scrollable by keyboard
    assert not Tree(render.article_view(art, 5, 99)).find("mark")  # out of range: no mark


def test_abstention_and_related_passages():
    rel = [RelatedPassage(1, 0.3, "a1", "Near", "BBC", None, None, "Some text.", 0, 10, 1)]
    html = render.answer_body(answer(answer="The articles do not say.", citations=[], abstained=True, related=rel))
    t = Tree(html)
    assert t.find("p", "abstain") and t.find("div", "related") and not t.find("button", "marker")
    assert t.find("button", "src-open")[0]["data-a"] == "a1"


def test_transcript_actions_only_on_the_last_exchange():
    a = answer()
    exchanges = [Exchange(1, "first?", "answered", a), Exchange(2, "second?", "stopped", partial="Half [1] writ")]
    t = Tree(render.transcript(exchanges))
    assert [b["data-act"] for b in t.find("button", "act")] == ["copy", "edit", "regenerate"]
    assert t.find("p", "stopped") and "Half [1] writ" in t.all_text
    copy = t.find("button", "act-copy")[0]["data-copy"]
    assert copy.startswith("They meet in Budapest. [1]") and "[2] Talks (Reuters, 2025-10-17) https://example.com/a" in copy
    # While an answer is written, nothing can be edited or regenerated.
    busy = Tree(render.transcript(exchanges, pending="third?"))
    assert [b["data-act"] for b in busy.find("button", "act")] == ["copy"]
    failed = Tree(render.transcript([], pending="q?", error="Invalid date '2025-13-01': use YYYY-MM-DD."))
    assert failed.find("p", "chat-error") and "q?" in failed.all_text
    assert Tree(render.transcript([])).find("p", "placeholder")


def test_live_message_and_scope_note():
    t = Tree(render.live_message("Where?", "Budapest [1"))
    assert t.find("span", "cursor") and "Budapest [1" in t.all_text and "Where?" in t.all_text
    assert "marker-draft" in render.live_message("Where?", "Budapest [1] is")
    assert render.live_message(None) == ""
    assert "Searching" in render.live_message("Where?", note="Searching…")
    # The local reader's draft: the extractive text streams, the note says the model is still reading.
    draft = Tree(render.live_message("Where?", "Budapest [1]", note=render.READING_NOTE))
    assert draft.find("span", "cursor") and "Budapest" in draft.all_text
    assert draft.find("div", "pending") and render.READING_NOTE in draft.all_text
    assert "&lt;b&gt;" in render.live_message("Where?", "x", note="<b>")  # the note is text, never HTML
    note = render.scope_note({"sources": ["BBC", "AP"], "date_from": "2025-10-01", "article_ids": ["x"]})
    assert "Searched only in BBC, AP · from 2025-10-01 on · in 1 chosen article" in note
    assert render.scope_note(None) == ""


def test_conversation_list_and_library_table():
    items = [ConversationInfo("c1", XSS, "2025-10-17T08:00:00+00:00", "2025-10-17T08:00:00+00:00", 2),
             ConversationInfo("c2", "Other", "2025-10-16T08:00:00+00:00", "2025-10-16T08:00:00+00:00", 1)]
    t = Tree(render.conversation_list(items, "c1"))
    buttons = t.find("button", "conv-open")
    assert [b["data-id"] for b in buttons] == ["c1", "c2"]
    assert buttons[0].get("aria-current") == "true" and "aria-current" not in buttons[1]
    assert XSS in t.all_text and not t.find("img")

    rows = [(Article("a1", "Zeta", "x", "BBC", None, "2025-10-17"), 4), (Article("a2", "Alpha", "y", None), 2)]
    t = Tree(render.library_table(rows))
    assert [b["data-key"] for b in t.find("button", "sort")] == ["title", "source", "date", "passages"]
    assert [r["data-date"] for r in t.find("tr") if "data-id" in r] == ["2025-10-17", ""]
    assert [c["aria-label"] for c in t.find("input", "lib-pick")] == ["Select Zeta", "Select Alpha"]
    assert "2 articles · 6 passages" in t.all_text
    assert "showing 1" in render.library_table(rows[:1], total=2)


def test_filters_from_the_page():
    assert make_filters([], "", None, []) == (None, None)
    f, record = make_filters(["BBC", "BBC", "AP"], "2025-10-01", " 2025-10-31 ", ["id2", "id1"])
    assert f.sources == {"BBC", "AP"} and f.article_ids == {"id1", "id2"}
    assert str(f.date_from) == "2025-10-01" and str(f.date_to) == "2025-10-31"
    assert record == {"sources": ["AP", "BBC"], "date_from": "2025-10-01", "date_to": "2025-10-31",
                      "article_ids": ["id1", "id2"]}
    with pytest.raises(RagError, match="YYYY-MM-DD"):
        make_filters([], "17/10/2025", "", [])
    with pytest.raises(RagError, match="empty"):
        make_filters([], "2025-10-31", "2025-10-01", [])


class FakeRequest:
    def __init__(self, username=None):
        self.username = username


def test_owner_is_the_login_else_the_browser_id():
    token = "A" * 32
    assert owner_of(FakeRequest("ann"), token) == "user:ann"
    assert owner_of(FakeRequest(None), token) == f"anon:{token}"
    for bad in ("", None, "short", "x" * 65, "has space in it and is long", {"id": token}):
        assert owner_of(FakeRequest(None), bad) is None


def test_undo_is_refused_after_its_time(seed_engine):
    from ui.library import UNDO_S, Library, LibraryView
    from ui.status import IndexStatus

    status = IndexStatus()
    status.ready.set()
    lib = Library(seed_engine, status)
    lib.v = LibraryView(*[f"c{i}" for i in range(len(fields(LibraryView)))])  # component stand-ins: handlers key their outputs by them
    kept = {"articles": [seed_engine.snapshot.articles()[0]], "until": time.time() + UNDO_S}
    before = len(seed_engine.articles())
    with pytest.warns(UserWarning, match="Too late"):
        out = lib.undo(kept, now=kept["until"] + 1)
    assert out[lib.v.undo] is None and len(seed_engine.articles()) == before
