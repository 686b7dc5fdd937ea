"""The browser app end to end: a real `rag serve` process driven by headless Chromium.

No mocks: the server starts on an empty index folder, so it goes through the
first-start path (indexing seeds/ in the background while the page shows progress),
then answers with the real embedding model. Never waits for "networkidle" (offline
it never comes): every wait is for an element or a condition.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.servers import rag_serve

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
READY_TIMEOUT_MS = 240_000  # first start: load the model and index the seeds on a slow shared CPU
ANSWER_TIMEOUT_MS = 90_000

XSS_TITLE = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = "<script>window.__xss=1</script>"


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Chromium at /usr/bin/chromium (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    tmp = tmp_path_factory.mktemp("ui")
    # An empty index folder: the server goes through the first-start path.
    with rag_serve(tmp, tmp / "index", timeout_s=120) as srv:
        yield srv


@pytest.fixture(scope="session")
def chromium(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Session:
    """One browser tab on the app, recording any dialog (alert/confirm) it opens."""

    def __init__(self, browser, url: str):
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.dialogs: list[str] = []

        def on_dialog(d):
            self.dialogs.append(d.message)
            d.dismiss()

        self.page.on("dialog", on_dialog)
        self.page.goto(url, wait_until="domcontentloaded")
        self.page.locator("#question textarea").wait_for()

    def wait_ready(self) -> None:
        from playwright.sync_api import expect

        expect(self.page.locator("#status")).to_contain_text(re.compile(r"\d+ articles ·"), timeout=READY_TIMEOUT_MS)

    def bots(self):
        return self.page.locator('#chatbot [data-testid="bot"]')

    def send(self, question: str) -> int:
        """Type the question and press Enter; returns the index of its answer bubble."""
        n = self.bots().count()
        box = self.page.locator("#question textarea")
        box.fill(question)
        box.press("Enter")
        return n

    def answer(self, n: int):
        """The finished answer bubble n (final answers carry .answer / .abstain / .chat-error)."""
        bubble = self.bots().nth(n)
        bubble.locator(".answer, .abstain, .chat-error").wait_for(timeout=ANSWER_TIMEOUT_MS)
        return bubble

    def ask(self, question: str):
        return self.answer(self.send(question))

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def session(chromium, server):
    s = Session(chromium, server["url"])
    s.wait_ready()
    yield s
    s.close()


def test_first_page_is_not_blank_and_answers_with_citations(chromium, server):
    s = Session(chromium, server["url"])
    try:
        page = s.page
        # Opened as soon as the server answers: the status line says what is happening.
        assert page.locator("#status").inner_text().strip()
        s.wait_ready()

        n = s.send("Who will lead the US delegation?")
        bubble = s.answer(n)
        text = bubble.inner_text()
        assert "Rubio" in text and "[1]" in text, text
        assert bubble.locator(".marker").first.inner_text() == "[1]"

        sources = page.locator("#sources")
        assert "Zelensky to argue for missiles at White House" in sources.inner_text()
        cited = sources.locator(".src-card").first.locator("mark.cited")
        assert "Marco Rubio leading the U.S. delegation" in cited.inner_text()

        # Open the source: the whole article, the cited sentence highlighted and scrolled into view.
        page.locator("#source-pick label").first.click()
        mark = page.locator("#article mark.cited")
        mark.wait_for()
        assert "Marco Rubio leading the U.S. delegation" in mark.inner_text()
        from playwright.sync_api import expect

        expect(mark).to_be_in_viewport(ratio=0.5)
        body = page.locator("#article .article-body")
        assert body.evaluate("e => e.scrollHeight > e.clientHeight && e.scrollTop > 0")

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)

        # New chat empties the conversation and the sources.
        page.locator("#new-chat").click()
        expect(s.bots()).to_have_count(0)
        expect(page.locator("#sources")).to_contain_text("Sources of the latest answer appear here")
        assert s.dialogs == []
    finally:
        s.close()


def test_followup_uses_the_conversation(session):
    first = session.ask("Who will Trump meet in Budapest?")
    assert "Putin" in first.inner_text()
    second = session.ask("When will they meet?")
    text = second.inner_text()
    assert second.locator(".answer").count() == 1, text  # answered, not abstained or failed
    assert re.search(r"week", text, re.I) and "[1]" in text, text


def test_abstention_looks_different_and_lists_closest_passages(session):
    bubble = session.ask("What is the airspeed velocity of an unladen swallow?")
    assert bubble.locator(".abstain").count() == 1, bubble.inner_text()
    assert not re.search(r"\[\d+\]", bubble.inner_text())
    assert "Closest passages" in session.page.locator("#sources").inner_text()


@pytest.fixture(scope="session")
def uploaded(chromium, server):
    """Upload a made-up article, an HTML-laden JSON article and an empty file through the Library tab."""
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
        "title": XSS_TITLE,
        "source": "Gazette <b>bold</b>",
        "body": "The Vexmoor ferry carries 977 passengers each day across the Lindqvist strait, "
                "the harbour master said on Tuesday.\n" + XSS_SCRIPT + "\n"
                "The ferry service began in 1987 and is run by the town council of Vexmoor.",
    }), encoding="utf-8")
    empty = tmp / "empty.txt"
    empty.write_text("", encoding="utf-8")

    s = Session(chromium, server["url"])
    try:
        s.wait_ready()
        page = s.page
        page.get_by_role("tab", name="Library").click()
        page.locator("#upload input[type=file]").set_input_files([str(fact), str(evil), str(empty)])
        report = page.locator("#ingest-report .ingest-report")
        report.wait_for(timeout=ANSWER_TIMEOUT_MS)
        yield {"report": report.inner_text(), "library": page.locator("#library").inner_text(), "dialogs": list(s.dialogs)}
    finally:
        s.close()


def test_upload_reports_each_file_and_new_article_is_cited(uploaded, session):
    report = uploaded["report"]
    assert "added: Quillbrook Falls lights its river walk" in report, report
    assert f"added: {XSS_TITLE}" in report, report
    assert re.search(r"rejected: empty\.txt: .+", report), report
    assert "2 added, 0 already present, 1 rejected" in report
    assert "Quillbrook Falls lights its river walk with solar lanterns" in uploaded["library"]

    bubble = session.ask("How many solar lanterns did Quillbrook Falls install?")
    text = bubble.inner_text()
    assert "4,812" in text and "[1]" in text, text
    assert "Quillbrook Falls lights its river walk" in session.page.locator("#sources").inner_text()


def test_article_html_renders_as_inert_text(uploaded, session):
    page = session.page
    assert XSS_TITLE in uploaded["library"]  # the literal characters, as text

    bubble = session.ask("How many passengers does the Vexmoor ferry carry each day?")
    assert "977" in bubble.inner_text()
    sources = page.locator("#sources")
    assert XSS_TITLE in sources.locator(".src-title").all_inner_texts()
    assert "Gazette <b>bold</b>" in sources.inner_text()

    page.locator("#source-pick label").first.click()
    article = page.locator("#article .article-body")
    article.wait_for()
    assert XSS_SCRIPT in article.inner_text()
    assert page.locator("#article .article-title").inner_text() == XSS_TITLE

    page.get_by_role("tab", name="Library").click()
    page.get_by_role("cell", name=XSS_TITLE, exact=True).wait_for()

    time.sleep(0.5)  # give a would-be onerror/script a moment to fire
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator('img[src="x"]').count() == 0
    assert session.dialogs == [] and uploaded["dialogs"] == []


def test_two_browsers_keep_their_own_conversations(chromium, server):
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
        assert a.bots().count() == 1 and b.bots().count() == 1
    finally:
        a.close()
        b.close()
