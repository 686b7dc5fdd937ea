"""The browser app: a thin Gradio client of ``rag`` (layout and event wiring only).

Shared, read-only: the :class:`~rag.engine.Engine` (index + embedding model) and the
stateless answer chain. Per browser session: the conversation (``gr.State`` list of
:class:`~rag.models.Turn`), the sources of the latest answer (``gr.State``) and the
settings controls (component values live in each browser). Nothing per user is kept
on shared objects, so several browsers chat at once without seeing each other.

On first start with no index, the seed articles are indexed in a background thread;
the page shows the progress and questions asked meanwhile wait for it.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from pathlib import Path

from rag.runtime import configure_process

# Before gradio (analytics off) and faiss/llama.cpp (OpenMP threads must not spin
# while the embedding model runs) are imported.
configure_process()

import gradio as gr  # noqa: E402
from gradio.utils import get_upload_folder as gradio_upload_folder  # noqa: E402

from rag.chain import DoneEvent, SourcesEvent, TextEvent, build_chain, stream  # noqa: E402
from rag.engine import Engine  # noqa: E402
from rag.errors import RagError  # noqa: E402
from rag.ingest.readers import SUPPORTED_SUFFIXES  # noqa: E402
from rag.types import FileResult, IngestReport, Turn  # noqa: E402

from . import render  # noqa: E402

log = logging.getLogger("rag.ui")

EXAMPLES = [
    "Where will Trump and Putin meet?",
    "What is the range of a Tomahawk missile?",
    "Who will lead the US delegation?",
]
FILE_TYPES = sorted(SUPPORTED_SUFFIXES)
CHAT_CONCURRENCY = 4  # answers in flight at once (all sessions together)
WAIT_FOR_INDEX_S = 900  # a question asked during the first index build waits this long


class IndexStatus:
    """Server-wide state of the index: being built / loading / ready / failed (not per user)."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.message = "Starting…"
        self.error: str | None = None

    def wait(self, timeout: float) -> bool:
        return self.ready.wait(timeout)


def start_background(engine: Engine) -> IndexStatus:
    """Build the seed index if there is none, then load the index and the model, in a thread."""
    status = IndexStatus()

    def progress(stage: str, done: int, total: int) -> None:
        status.message = f"Indexing the seed articles: {stage} {done}/{total}…"

    def work() -> None:
        try:
            if not engine.has_index():
                status.message = "Indexing the seed articles (first start)…"
                engine.ensure_seed_index(progress=progress, show_progress=False)
            status.message = "Loading the index and the embedding model…"
            engine.retriever  # opens the index  # noqa: B018
            engine.query_embedder.warm_up()  # loads (first time: converts) the model
            status.message = "Ready."
            status.ready.set()
            log.info("index ready: %d articles", len(engine.articles()))
        except RagError as exc:
            status.error = str(exc)
            log.error("%s", exc)
        except Exception as exc:  # a bug: keep the traceback in the log, tell the page
            status.error = f"The index could not be loaded ({type(exc).__name__}: {exc})."
            log.exception("loading the index failed")

    threading.Thread(target=work, name="index-startup", daemon=True).start()
    return status


CSS = """
#chatbot .marker, .sources .marker { font-weight: 600; color: var(--color-accent); }
#chatbot .abstain { font-style: italic; color: var(--body-text-color-subdued); }
#chatbot .abstain-badge { font-style: normal; font-size: 0.75em; text-transform: uppercase; letter-spacing: 0.04em;
  border: 1px solid currentColor; border-radius: 4px; padding: 0 0.3em; margin-right: 0.3em; }
#chatbot .chat-error { color: var(--error-text-color, #b91c1c); }
#chatbot .pending { color: var(--body-text-color-subdued); font-style: italic; }
#chatbot .answer-note { font-size: 0.9em; color: var(--body-text-color-subdued); }
#status { font-size: 0.95em; color: var(--body-text-color-subdued); }
#status .status-error { color: var(--error-text-color, #b91c1c); }
.sources { display: flex; flex-direction: column; gap: 0.6rem; max-height: 30rem; overflow-y: auto; }
.src-card { border: 1px solid var(--border-color-primary); border-radius: 6px; padding: 0.5rem 0.7rem; }
.src-card.related { border-style: dashed; }
.src-title, .article-title { font-weight: 600; }
.src-meta { font-size: 0.85em; color: var(--body-text-color-subdued); margin: 0.15rem 0 0.3rem; }
.src-passage { position: relative; font-size: 0.9em; white-space: pre-wrap; max-height: 11rem; overflow-y: auto; }
.sources-note, .sources-empty, .article-empty, .library-empty { color: var(--body-text-color-subdued); font-style: italic; }
mark.cited { background: #fde68a; color: inherit; padding: 0 1px; }
.article-body { position: relative; white-space: pre-wrap; max-height: 26rem; overflow-y: auto;
  border: 1px solid var(--border-color-primary); border-radius: 6px; padding: 0.5rem 0.7rem; font-size: 0.92em; }
.library-wrap { max-height: 28rem; overflow-y: auto; }
table.library { width: 100%; border-collapse: collapse; font-size: 0.92em; }
table.library th, table.library td { text-align: left; padding: 0.25rem 0.5rem; border-bottom: 1px solid var(--border-color-primary); vertical-align: top; }
table.library td.num { text-align: right; }
.library-count, .ing-summary { margin: 0.3rem 0; color: var(--body-text-color-subdued); }
.ingest-report ul { margin: 0; padding-left: 1.2rem; }
.ing-rejected { color: var(--error-text-color, #b91c1c); }
.ingest-report .file { color: var(--body-text-color-subdued); font-size: 0.9em; }
"""

# Scroll each passage of the sources panel to its cited sentence when the panel changes.
SOURCES_SCROLL_JS = """
const go = () => element.querySelectorAll('.src-passage').forEach(box => {
  const mark = box.querySelector('mark.cited');
  if (mark) box.scrollTop = Math.max(0, mark.offsetTop - box.clientHeight / 4);
});
watch('value', () => requestAnimationFrame(go));
requestAnimationFrame(go);
"""

# Scroll the article panel to the cited span whenever its content changes.
SCROLL_JS = """
const go = () => {
  const box = element.querySelector('.article-body');
  const mark = element.querySelector('mark.cited');
  if (!box || !mark) return;
  box.scrollTop = Math.max(0, mark.offsetTop - box.clientHeight / 3);
  box.scrollIntoView({block: 'nearest'});
};
watch('value', () => requestAnimationFrame(go));
requestAnimationFrame(go);
"""


def uploaded_files(files) -> tuple[list[str], list[FileResult]]:
    """The paths among ``files`` that a browser actually uploaded, and a refusal for each other.

    A Gradio client names its files by server path. Gradio itself refuses, when it
    prepares an event's inputs, paths outside its upload folder; this is checked again
    here, on the resolved path (no ``..`` or symlink leads out), because indexing an
    arbitrary server file would let any client read it back through the chat.
    """
    root = Path(gradio_upload_folder()).resolve()
    paths: list[str] = []
    refused: list[FileResult] = []
    for f in files or []:
        raw = f if isinstance(f, str) else getattr(f, "path", None) or getattr(f, "name", None) or str(f)
        try:
            real = Path(raw).resolve(strict=True)
            ok = real.is_relative_to(root) and real != root and real.is_file()
        except (OSError, RuntimeError, ValueError):
            ok = False
        if ok:
            paths.append(str(real))
        else:
            log.warning("upload refused: %r is not a file uploaded through the app", raw)
            refused.append(FileResult(Path(str(raw)).name or "?", "rejected", "not a file uploaded through this page"))
    return paths, refused


def _status_html(engine: Engine, status: IndexStatus) -> str:
    if status.error and not status.ready.is_set():
        return f'<span class="status-error">⚠ {render.esc(status.error)}</span>'
    if not status.ready.is_set():
        return f"{render.esc(status.message)} The chat works once this is done."
    try:
        rows = engine.articles()
    except RagError as exc:
        return f'<span class="status-error">⚠ {render.esc(exc)}</span>'
    return f"{len(rows)} articles · {sum(n for _, n in rows)} passages indexed"


def _answer_modes(settings) -> list[str]:
    modes = ["extractive"]
    if settings.llm_model_path:
        modes.append("llamacpp")
    if settings.llm_base_url:
        modes.append("openai")
    return modes


def build_app(engine: Engine, status: IndexStatus | None = None) -> gr.Blocks:
    """The Blocks app over ``engine``. Starts the index loader unless ``status`` is given."""
    status = status or start_background(engine)
    chain = build_chain(engine)
    base = engine.settings
    modes = _answer_modes(base)

    # -- handlers (no retrieval or answer logic here: rag does that) ----------------
    def library_outputs():
        try:
            rows = engine.articles() if status.ready.is_set() or engine.has_index() else []
        except RagError as exc:
            return f'<div class="library-empty">⚠ {render.esc(exc)}</div>', gr.update(choices=[], value=[])
        choices = [(f"{a.title[:70]} ({a.article_id})", a.article_id) for a, _ in rows]
        return render.library_table(rows), gr.update(choices=choices, value=[])

    def respond(question, messages, turns, top_k, retrieval_mode, answer_mode):
        question = (question or "").strip()
        if not question:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        messages = list(messages or []) + [
            {"role": "user", "content": render.user_message(question)},
            {"role": "assistant", "content": render.pending_message("Searching the articles…")},
        ]
        turns = list(turns or [])
        skip = gr.skip()
        yield (messages, skip, [], render.SEARCHING_SOURCES, gr.update(choices=[], value=None, visible=False),
               render.EMPTY_ARTICLE, "")

        deadline = time.monotonic() + WAIT_FOR_INDEX_S
        while not status.ready.is_set() and not status.error and time.monotonic() < deadline:
            messages[-1] = {"role": "assistant", "content": render.pending_message(status.message + " Your question will be answered when it is done.")}
            yield messages, skip, skip, skip, skip, skip, skip
            status.wait(1.0)

        mode = answer_mode if answer_mode in modes else "extractive"
        settings = base.model_copy(update={"top_k": int(top_k), "retrieval_mode": retrieval_mode, "answer_mode": mode})
        parts: list[str] = []
        answer = None
        try:
            if not status.ready.is_set() and not engine.has_index():
                raise RagError(status.error or "The index is not ready yet.")
            for event in stream(engine, question, turns, settings, chain):
                if isinstance(event, TextEvent):
                    parts.append(event.text)
                    messages[-1] = {"role": "assistant", "content": render.streaming_message("".join(parts))}
                    yield messages, skip, skip, skip, skip, skip, skip
                elif isinstance(event, SourcesEvent):
                    pass  # shown with the final answer, when the markers are settled
                elif isinstance(event, DoneEvent):
                    answer = event.answer
        except RagError as exc:
            gr.Warning(str(exc))
            messages[-1] = {"role": "assistant", "content": render.error_message(str(exc))}
            yield messages, skip, skip, skip, skip, skip, skip
            return
        except Exception as exc:  # a bug: log the traceback, keep the app running
            log.exception("answering %r failed", question)
            messages[-1] = {"role": "assistant", "content": render.error_message(f"Something went wrong ({type(exc).__name__}). See the server log.")}
            yield messages, skip, skip, skip, skip, skip, skip
            return
        if answer is None:
            messages[-1] = {"role": "assistant", "content": render.error_message("The chain ended without an answer.")}
            yield messages, skip, skip, skip, skip, skip, skip
            return

        messages[-1] = {"role": "assistant", "content": render.answer_message(answer)}
        items = render.source_items(answer)
        turns.append(Turn(question, answer.answer, answer.query))
        panel = render.sources_panel(answer, engine.snapshot.article)
        picker = gr.update(choices=[(it["label"], str(i)) for i, it in enumerate(items)], value=None,
                           visible=bool(items))
        yield messages, turns, items, panel, picker, render.EMPTY_ARTICLE, skip

    def open_source(choice, items):
        if choice in (None, ""):
            return render.EMPTY_ARTICLE
        try:
            item = (items or [])[int(choice)]
            article = engine.snapshot.article(item["article_id"])
        except (IndexError, ValueError, TypeError):
            return render.EMPTY_ARTICLE
        except RagError as exc:
            return f'<div class="article-empty">⚠ {render.esc(exc)}</div>'
        return render.article_view(article, int(item["start"]), int(item["end"]))

    def new_chat():
        return [], [], [], render.EMPTY_SOURCES, gr.update(choices=[], value=None, visible=False), render.EMPTY_ARTICLE, ""

    def upload(files, progress=gr.Progress()):
        paths, refused = uploaded_files(files)
        if not paths and not refused:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        if not paths:
            gr.Warning(f"{len(refused)} file(s) refused: see the list below.")
            return render.ingest_report(IngestReport(refused)), gr.skip(), gr.skip(), None
        if not status.ready.is_set() and not status.error:
            status.wait(WAIT_FOR_INDEX_S)  # the seed build holds the writer lock anyway

        def on_progress(stage: str, done: int, total: int) -> None:
            progress((done, max(total, 1)), desc=stage)

        try:
            report = engine.ingest(paths, progress=on_progress, show_progress=False)
        except RagError as exc:
            gr.Warning(str(exc))
            return render.error_message(str(exc)), gr.skip(), gr.skip(), None
        report.results[:0] = refused
        if report.added and not status.ready.is_set():
            status.error = None
            status.ready.set()  # an index exists now (e.g. first upload into an empty one)
        if report.rejected:
            gr.Warning(f"{len(report.rejected)} file(s) rejected: see the list below.")
        table, picker = library_outputs()
        return render.ingest_report(report), table, picker, None

    def delete(ids):
        ids = [i for i in (ids or []) if i]
        if not ids:
            gr.Warning("Select one or more articles to delete first.")
            return gr.skip(), gr.skip(), gr.skip()
        try:
            removed = engine.remove(ids)
        except RagError as exc:
            gr.Warning(str(exc))
            return render.error_message(str(exc)), gr.skip(), gr.skip()
        table, picker = library_outputs()
        msg = "".join(f"<li>removed: <b>{render.esc(a.title)}</b> <code>{render.esc(a.article_id)}</code></li>" for a in removed)
        return f'<div class="ingest-report"><ul>{msg}</ul></div>', table, picker

    def tick():
        done = status.ready.is_set() or bool(status.error)
        table, picker = library_outputs() if done else (gr.skip(), gr.skip())
        return _status_html(engine, status), gr.Timer(active=not done), table, picker

    def on_load():
        table, picker = library_outputs()
        return _status_html(engine, status), gr.Timer(active=not (status.ready.is_set() or status.error)), table, picker

    # -- layout --------------------------------------------------------------------
    with gr.Blocks(title="article-rag", delete_cache=(3600, 3600)) as demo:
        turns = gr.State([])  # this browser session's conversation: [Turn]
        sources = gr.State([])  # what the source picker opens, for the latest answer
        gr.Markdown("## article-rag\nAsk about the news articles; every claim is cited to the exact passage.")
        status_line = gr.HTML(_status_html(engine, status), elem_id="status")
        timer = gr.Timer(1.0, active=True)

        with gr.Tab("Chat", id="chat"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=3, min_width=360):
                    chatbot = gr.Chatbot(
                        elem_id="chatbot", label="Conversation", height=480,
                        render_markdown=False, sanitize_html=True, allow_tags=False, latex_delimiters=[],
                        feedback_options=None, buttons=[],
                        placeholder="Ask a question about the articles, or click an example below.",
                    )
                    with gr.Row():
                        question = gr.Textbox(elem_id="question", show_label=False, scale=5, lines=1, max_lines=4,
                                              placeholder="Ask a question and press Enter…", autofocus=True)
                        ask_btn = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="ask")
                    with gr.Row():
                        example_btns = [gr.Button(q, size="sm", elem_classes=["example-q"]) for q in EXAMPLES]
                    new_btn = gr.Button("New chat", size="sm", elem_id="new-chat")
                    with gr.Accordion("Settings (this browser only)", open=False):
                        top_k = gr.Slider(1, 30, value=base.top_k, step=1, label="Passages to retrieve (k)", elem_id="top-k")
                        retrieval_mode = gr.Radio(["hybrid", "dense", "bm25"], value=base.retrieval_mode,
                                                  label="Retrieval mode", elem_id="retrieval-mode")
                        answer_mode = gr.Radio(modes, value=base.answer_mode if base.answer_mode in modes else "extractive",
                                               label="Answer mode", elem_id="answer-mode",
                                               info=None if len(modes) > 1 else
                                               "LLM modes appear when RAG_LLM_MODEL_PATH or RAG_LLM_BASE_URL is set.")
                with gr.Column(scale=2, min_width=300):
                    gr.Markdown("### Sources")
                    sources_html = gr.HTML(render.EMPTY_SOURCES, elem_id="sources", js_on_load=SOURCES_SCROLL_JS)
                    source_pick = gr.Radio([], label="Open a source", visible=False, elem_id="source-pick")
                    article_html = gr.HTML(render.EMPTY_ARTICLE, elem_id="article", js_on_load=SCROLL_JS)

        with gr.Tab("Library", id="library") as library_tab:
            library_html = gr.HTML(elem_id="library")
            refresh_btn = gr.Button("Refresh", size="sm")
            with gr.Row(equal_height=False):
                with gr.Column():
                    files = gr.File(label=f"Add articles ({', '.join(FILE_TYPES)}; up to {base.max_file_mb:g} MB each)",
                                    file_count="multiple", file_types=FILE_TYPES, type="filepath", elem_id="upload")
                    ingest_html = gr.HTML(elem_id="ingest-report")
                with gr.Column():
                    delete_pick = gr.Dropdown([], multiselect=True, label="Articles to delete", elem_id="delete-pick")
                    delete_btn = gr.Button("Delete selected", variant="stop", elem_id="delete")
                    delete_html = gr.HTML(elem_id="delete-report")

        # -- wiring ----------------------------------------------------------------
        chat_inputs = [turns, top_k, retrieval_mode, answer_mode]
        chat_outputs = [chatbot, turns, sources, sources_html, source_pick, article_html, question]
        question.submit(respond, [question, chatbot, *chat_inputs], chat_outputs, concurrency_id="chat")
        ask_btn.click(respond, [question, chatbot, *chat_inputs], chat_outputs, concurrency_id="chat")
        for btn in example_btns:
            btn.click(respond, [btn, chatbot, *chat_inputs], chat_outputs, concurrency_id="chat")
        new_btn.click(new_chat, None, chat_outputs, queue=False)
        chatbot.clear(new_chat, None, chat_outputs, queue=False)
        source_pick.change(open_source, [source_pick, sources], article_html, show_progress="hidden")

        files.upload(upload, files, [ingest_html, library_html, delete_pick, files],
                     concurrency_limit=1, concurrency_id="ingest")
        delete_btn.click(delete, delete_pick, [delete_html, library_html, delete_pick],
                         concurrency_limit=1, concurrency_id="ingest")
        refresh_btn.click(library_outputs, None, [library_html, delete_pick], queue=False)
        library_tab.select(library_outputs, None, [library_html, delete_pick], queue=False)

        timer.tick(tick, None, [status_line, timer, library_html, delete_pick], show_progress="hidden", queue=False)
        demo.load(on_load, None, [status_line, timer, library_html, delete_pick], show_progress="hidden", queue=False)
    return demo


def parse_auth(auth: str | None) -> tuple[str, str] | None:
    if not auth:
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise RagError("--auth (or RAG_AUTH) must be USER:PASSWORD.")
    return user, password


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(host: str = "127.0.0.1", port: int = 7860, auth: str | None = None, *, engine: Engine | None = None) -> None:
    """Start the app (blocks). ``auth`` is ``"user:password"``; binding beyond loopback without it warns."""
    if engine is None:
        from rag.settings import Settings

        engine = Engine(Settings())
    credentials = parse_auth(auth)
    if credentials is None and not _is_loopback(host):
        log.warning("serving on %s without --auth: anyone who can reach this address can read, ask and upload. "
                    "Use --auth USER:PASSWORD (or RAG_AUTH).", host)
    demo = build_app(engine)
    demo.queue(default_concurrency_limit=CHAT_CONCURRENCY)
    log.info("starting the app on http://%s:%d", host, port)
    demo.launch(
        server_name=host, server_port=port, auth=credentials,
        auth_message="article-rag: log in to continue." if credentials else None,
        max_file_size=engine.settings.max_file_bytes, css=CSS,
        theme=gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]),
        ssr_mode=False, show_error=False, inbrowser=False, footer_links=[],
    )
