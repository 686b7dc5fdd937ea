"""The browser app: a thin Gradio client of ``rag`` (layout and event wiring only).

Shared, read-only: the :class:`~rag.engine.Engine` (index + embedding model), the
answer chain and the conversation store (a SQLite file, every call scoped to an
owner). Per browser: the open conversation, the answer being written, the delete
that can be undone (Gradio session state), this browser's id and its last open
conversation (``gr.BrowserState``, in localStorage), and the settings and filters
(component values). Nothing per user is kept on shared objects, so several browsers
chat at once without seeing each other.

The handlers live in :mod:`ui.chat` and :mod:`ui.library`; the HTML in
:mod:`ui.render`; the page's styles and scripts in ``ui/static/``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rag.runtime import configure_process

# Before gradio (analytics off) and faiss/llama.cpp (OpenMP threads must not spin
# while the embedding model runs) are imported.
configure_process()

import gradio as gr  # noqa: E402

from rag.conversations import ConversationStore  # noqa: E402
from rag.engine import Engine  # noqa: E402
from rag.errors import RagError  # noqa: E402
from rag.ingest.readers import SUPPORTED_SUFFIXES  # noqa: E402
from rag.llm.models import answer_modes  # noqa: E402

from . import render  # noqa: E402
from .chat import (  # noqa: E402
    ANSWER_MODES, BROWSER_STATE_SECRET, CURRENT_KEY, OWNER_KEY, SEARCH_MODES, Chat, ChatView, empty_conversation,
)
from .library import Library, LibraryView, uploaded_files  # noqa: E402,F401  (uploaded_files: the upload check)
from .status import IndexStatus, start_background, status_html  # noqa: E402

log = logging.getLogger("rag.ui")

STATIC = Path(__file__).resolve().parent / "static"
EXAMPLES = [
    "Where will Trump and Putin meet?",
    "What is the range of a Tomahawk missile?",
    "Who will lead the US delegation?",
]
FILE_TYPES = sorted(SUPPORTED_SUFFIXES)
CHAT_CONCURRENCY = 4  # answers in flight at once (all sessions together)


def _static(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


CSS = _static("app.css")
JS = _static("page.js")  # page-wide script: tooltips of the settings' choices, the upload area's name


def theme() -> gr.themes.Base:
    """Gradio's default theme with text colours that meet WCAG AA (4.5:1) on their backgrounds."""
    return gr.themes.Default(
        primary_hue="blue", font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"],
    ).set(
        body_text_color_subdued="*neutral_600", body_text_color_subdued_dark="*neutral_300",
        block_label_text_color="*neutral_700", block_label_text_color_dark="*neutral_200",
        block_info_text_color="*neutral_600", block_info_text_color_dark="*neutral_300",
        input_placeholder_color="*neutral_500", input_placeholder_color_dark="*neutral_400",
        button_primary_background_fill="*primary_700", button_primary_background_fill_hover="*primary_800",
        button_primary_text_color="white",
        button_cancel_background_fill="#b91c1c", button_cancel_background_fill_hover="#991b1b",
        button_cancel_text_color="white",
    )


def page_options() -> dict:
    """The styles, script and theme the page needs, for ``launch`` or ``gr.mount_gradio_app``."""
    return {"css": CSS, "js": JS, "theme": theme()}


SEARCH_TIP = ("Technical names: By keywords = BM25 (bm25); Balanced = BM25 and embeddings fused (hybrid); "
              "By meaning = embedding similarity (dense). Number of sources = k.")
# Feed refresh intervals offered in the Library (any "15m", "2h", "1d" works in the CLI and API).
FEED_EVERY = [("every 15 minutes", "15m"), ("every 30 minutes", "30m"), ("every hour", "1h"),
              ("every 6 hours", "6h"), ("every day", "1d")]


def build_app(engine: Engine, status: IndexStatus | None = None, store: ConversationStore | None = None) -> gr.Blocks:
    """The Blocks app over ``engine``. Starts the index loader unless ``status`` is given."""
    status = status or start_background(engine)
    base = engine.settings
    modes = answer_modes(base)
    chat = Chat(engine, status, store or ConversationStore.for_settings(base), modes)
    library = Library(engine, status)

    with gr.Blocks(title="article-rag", delete_cache=(3600, 3600)) as demo:
        owner = gr.BrowserState("", storage_key=OWNER_KEY, secret=BROWSER_STATE_SECRET)
        current = gr.BrowserState("", storage_key=CURRENT_KEY, secret=BROWSER_STATE_SECRET)
        conv = gr.State(empty_conversation())  # the open conversation: {"id", "exchanges"}
        partial = gr.State(None)  # the answer being written: {"question", "text"}
        editing = gr.State(False)  # the next question replaces the last one
        no_edit = gr.State(False)
        version = gr.State(-1)  # the index generation this page shows
        pending = gr.State([])  # article ids waiting for the delete confirmation
        undo = gr.State(None)  # the last delete: {"articles", "until"}
        feed_pending = gr.State("")  # the feed waiting for the remove confirmation

        with gr.Row(elem_id="header", equal_height=False):
            gr.HTML('<h1>article-rag</h1><p class="tagline">Ask about the news articles; '
                    'every claim is cited to the exact passage.</p>', js_on_load=None)
            status_line = gr.HTML(status_html(engine, status), elem_id="status", js_on_load=None)
        timer = gr.Timer(1.0, active=True)

        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                with gr.Row(equal_height=False, elem_id="chat-row"):
                    with gr.Column(scale=1, min_width=250, elem_id="conversations-col"):
                        new_btn = gr.Button("New chat", size="sm", elem_id="new-chat")
                        gr.HTML('<h2 class="side-h" id="conversations-h">Conversations</h2>', js_on_load=None)
                        conv_list = gr.HTML(render.conversation_list([], None), elem_id="conversations",
                                            js_on_load=_static("conversations.js"))
                        with gr.Column(visible=False, elem_id="conv-tools") as tools:
                            rename_box = gr.Textbox(label="Name of this conversation", max_lines=1, elem_id="rename")
                            with gr.Row():
                                rename_btn = gr.Button("Rename", size="sm", elem_id="rename-btn")
                                delete_conv_btn = gr.Button("Delete…", size="sm", elem_id="delete-conv")
                            with gr.Column(visible=False, elem_id="conv-confirm") as conv_confirm:
                                gr.HTML("<p><strong>Delete this conversation?</strong> It cannot be undone.</p>",
                                        js_on_load=None)
                                with gr.Row():
                                    conv_yes = gr.Button("Delete", variant="stop", size="sm", elem_id="delete-conv-yes")
                                    conv_no = gr.Button("Cancel", size="sm", elem_id="delete-conv-no")
                        with gr.Accordion("Filters: search only in…", open=False, elem_id="filters"):
                            f_sources = gr.Dropdown([], value=[], multiselect=True, label="Outlets",
                                                    elem_id="filter-sources")
                            with gr.Row():
                                f_from = gr.Textbox(label="From (YYYY-MM-DD)", max_lines=1, elem_id="filter-from")
                                f_to = gr.Textbox(label="To (YYYY-MM-DD)", max_lines=1, elem_id="filter-to")
                            f_articles = gr.Dropdown([], value=[], multiselect=True, label="Articles",
                                                     elem_id="filter-articles")
                            clear_filters = gr.Button("Clear filters", size="sm", elem_id="clear-filters")
                        with gr.Accordion("Settings (this browser only)", open=False, elem_id="settings"):
                            gr.HTML(f'<span class="tip" tabindex="0" data-tip="{render.esc(SEARCH_TIP)}">'
                                    f'What do these mean technically?<span class="sr-only"> {render.esc(SEARCH_TIP)}'
                                    '</span></span>', js_on_load=None)
                            top_k = gr.Slider(1, 30, value=base.top_k, step=1, label="Number of sources",
                                              info="How many passages are searched out for each question.",
                                              elem_id="top-k")
                            search_mode = gr.Radio(SEARCH_MODES, value=base.retrieval_mode, label="Search",
                                                   elem_id="search-mode")
                            answer_mode = gr.Radio(
                                [(ANSWER_MODES[m], m) for m in modes],
                                value=base.answer_mode if base.answer_mode in modes else "extractive",
                                label="Answer", elem_id="answer-mode",
                                info=None if len(modes) > 1 else
                                "Language-model answers appear when RAG_LLM_MODEL_PATH or RAG_LLM_BASE_URL is set.")

                    with gr.Column(scale=3, min_width=420, elem_id="chat-col"):
                        with gr.Column(elem_id="chat-scroll"):
                            transcript = gr.HTML(render.transcript([]), elem_id="chatbot",
                                                 js_on_load=_static("transcript.js"))
                            live = gr.HTML("", elem_id="live", js_on_load=_static("live.js"))
                        with gr.Row(visible=False, elem_id="edit-banner") as edit_banner:
                            gr.HTML("<p>Editing your last question: change it and press Enter to ask it again "
                                    "in its place.</p>", js_on_load=None)
                            cancel_edit_btn = gr.Button("Cancel editing", size="sm", scale=0, elem_id="cancel-edit")
                        with gr.Row(elem_id="ask-row"):
                            question = gr.Textbox(elem_id="question", show_label=False, label="Your question",
                                                  scale=5, lines=1, max_lines=4, autofocus=True,
                                                  placeholder="Ask a question and press Enter…")
                            ask_btn = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="ask")
                            stop_btn = gr.Button("Stop", variant="stop", scale=1, min_width=80, elem_id="stop",
                                                 visible=False)
                        with gr.Row(elem_id="examples"):
                            example_btns = [gr.Button(q, size="sm", elem_classes=["example-q"]) for q in EXAMPLES]
                    with gr.Column(scale=2, min_width=320, elem_id="article-col"):
                        article = gr.HTML(render.EMPTY_ARTICLE, elem_id="article", js_on_load=_static("article.js"))

            with gr.Tab("Library", id="library") as library_tab:
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        with gr.Row(elem_id="library-filters"):
                            lib_sources = gr.Dropdown([], value=[], multiselect=True, label="Outlet",
                                                      elem_id="lib-sources", scale=2)
                            lib_from = gr.Textbox(label="From (YYYY-MM-DD)", max_lines=1, elem_id="lib-from", scale=1)
                            lib_to = gr.Textbox(label="To (YYYY-MM-DD)", max_lines=1, elem_id="lib-to", scale=1)
                        library_html = gr.HTML(elem_id="library", js_on_load=_static("library.js"))
                        with gr.Column(visible=False, elem_id="delete-confirm") as confirm:
                            confirm_text = gr.HTML(js_on_load=None)
                            with gr.Row():
                                delete_yes = gr.Button("Delete", variant="stop", size="sm", elem_id="delete-yes")
                                delete_no = gr.Button("Cancel", size="sm", elem_id="delete-no")
                        undo_btn = gr.Button("Undo delete", visible=False, elem_id="undo")
                        report_html = gr.HTML(elem_id="ingest-report", js_on_load=None)
                    with gr.Column(scale=2):
                        files = gr.File(label=f"Add articles ({', '.join(FILE_TYPES)}; up to {base.max_file_mb:g} MB each)",
                                        file_count="multiple", file_types=FILE_TYPES, type="filepath", elem_id="upload",
                                        height=190)
                        with gr.Group(elem_id="add-by-url"):
                            url_box = gr.Textbox(label="Add articles by web address (one per line)", lines=2,
                                                 max_lines=8, placeholder="https://…", elem_id="add-urls")
                            url_btn = gr.Button("Fetch and add", size="sm", elem_id="add-urls-btn")
                        with gr.Column(elem_id="feeds-panel"):
                            gr.HTML('<h2 class="side-h" id="feeds-h">Feeds</h2><p class="feeds-note">RSS, Atom and '
                                    'news sitemaps: new and changed articles are fetched when a feed is due.</p>',
                                    js_on_load=None)
                            feeds_html = gr.HTML(elem_id="feeds", js_on_load=_static("feeds.js"))
                            with gr.Column(visible=False, elem_id="feed-confirm") as feed_confirm:
                                feed_confirm_text = gr.HTML(js_on_load=None)
                                with gr.Row():
                                    feed_yes = gr.Button("Remove", variant="stop", size="sm", elem_id="feed-remove-yes")
                                    feed_no = gr.Button("Cancel", size="sm", elem_id="feed-remove-no")
                            with gr.Row(equal_height=True):
                                feed_url = gr.Textbox(label="Feed address", max_lines=1, scale=3,
                                                      placeholder="https://…/rss.xml", elem_id="feed-url")
                                feed_every = gr.Dropdown(FEED_EVERY, value=base.feed_every if base.feed_every in
                                                         dict(FEED_EVERY).values() else "30m", label="Check",
                                                         scale=2, elem_id="feed-every")
                            with gr.Row():
                                feed_add = gr.Button("Add feed", size="sm", elem_id="feed-add")
                                feeds_refresh = gr.Button("Refresh all feeds now", size="sm", elem_id="feeds-refresh")
                            feed_report = gr.HTML(elem_id="feed-report", js_on_load=None)
                        preview = gr.HTML(render.EMPTY_PREVIEW, elem_id="preview", js_on_load=None)

        chat.v = ChatView(transcript=transcript, live=live, conv=conv, partial=partial, question=question,
                          conv_list=conv_list, current=current, owner=owner, stop=stop_btn, ask=ask_btn,
                          editing=editing, edit_banner=edit_banner, tools=tools, rename_box=rename_box,
                          confirm=conv_confirm, article=article)
        library.v = LibraryView(table=library_html, preview=preview, status=status_line, version=version,
                                report=report_html, files=files, lib_sources=lib_sources, chat_sources=f_sources,
                                chat_articles=f_articles, pending=pending, confirm=confirm, confirm_text=confirm_text,
                                undo=undo, undo_btn=undo_btn, timer=timer, url_box=url_box, feeds=feeds_html,
                                feed_url=feed_url, feed_every=feed_every, feed_pending=feed_pending,
                                feed_confirm=feed_confirm, feed_confirm_text=feed_confirm_text, feed_report=feed_report)

        # -- wiring: chat ------------------------------------------------------------
        # The page shows its own progress (the answer being written), not Gradio's overlays.
        hidden = {"queue": False, "show_progress": "hidden"}
        answer_out = [transcript, live, conv, partial, question, conv_list, current, owner, stop_btn, ask_btn,
                      editing, edit_banner, tools, rename_box, conv_confirm]
        options = [top_k, search_mode, answer_mode, f_sources, f_from, f_to, f_articles]
        quiet = {"concurrency_id": "chat", "show_progress": "hidden"}
        asking = [
            question.submit(chat.respond, [question, conv, owner, editing, *options], answer_out, **quiet),
            ask_btn.click(chat.respond, [question, conv, owner, editing, *options], answer_out, **quiet),
            transcript.retry(chat.regenerate, [conv, owner, *options], answer_out, **quiet),
        ]
        asking += [btn.click(chat.respond, [btn, conv, owner, no_edit, *options], answer_out, **quiet)
                   for btn in example_btns]
        stop_btn.click(chat.stop, [conv, partial, owner], answer_out, cancels=asking, **hidden)
        transcript.select(chat.open_source, None, article, **hidden)
        transcript.edit(chat.start_edit, conv, [question, editing, edit_banner], **hidden)
        cancel_edit_btn.click(chat.cancel_edit, None, [question, editing, edit_banner], **hidden)
        clear_filters.click(lambda: ([], "", "", []), None, [f_sources, f_from, f_to, f_articles], **hidden)

        conv_out = [conv, transcript, live, partial, current, conv_list, tools, rename_box, conv_confirm,
                    question, editing, edit_banner, article, stop_btn, ask_btn]
        # Switching conversations abandons an answer still being written.
        new_btn.click(chat.new_chat, owner, conv_out, cancels=asking, **hidden)
        conv_list.select(chat.open_conversation, owner, conv_out, cancels=asking, **hidden)
        rename_btn.click(chat.rename, [rename_box, conv, owner], [conv_list, rename_box], **hidden)
        rename_box.submit(chat.rename, [rename_box, conv, owner], [conv_list, rename_box], **hidden)
        delete_conv_btn.click(chat.ask_delete, conv, conv_confirm, **hidden)
        conv_no.click(chat.cancel_delete, None, conv_confirm, **hidden)
        conv_yes.click(chat.delete, [conv, owner], conv_out, cancels=asking, **hidden)

        # -- wiring: library and counts ------------------------------------------------
        pickers = [lib_sources, lib_from, lib_to, f_sources, f_articles]
        refresh_out = [status_line, version, library_html, lib_sources, f_sources, f_articles, feeds_html]
        lib_out = [*refresh_out, report_html, files, preview, pending, confirm, confirm_text, undo, undo_btn]
        ingest = {"concurrency_limit": 1, "concurrency_id": "ingest"}  # one writer at a time
        # The report is the upload's first output (the API's answer); the views follow.
        files.upload(library.upload, files, [report_html, files], api_name="upload", **ingest).then(
            library.refresh, pickers, refresh_out, **hidden)
        # Adding by URL and refreshing feeds write to the index like an upload: one at a time.
        url_out = [report_html, url_box]
        url_box.submit(library.add_urls, url_box, url_out, show_progress="minimal", **ingest).then(
            library.refresh, pickers, refresh_out, **hidden)
        url_btn.click(library.add_urls, url_box, url_out, show_progress="minimal", **ingest).then(
            library.refresh, pickers, refresh_out, **hidden)
        feed_out = [feeds_html, feed_url, feed_report]
        feed_add.click(library.add_feed, [feed_url, feed_every], feed_out, show_progress="minimal")
        feed_url.submit(library.add_feed, [feed_url, feed_every], feed_out, show_progress="minimal")
        feeds_refresh.click(library.refresh_all, None, [feeds_html, feed_report], show_progress="minimal",
                            **ingest).then(library.refresh, pickers, refresh_out, **hidden)
        feeds_html.select(library.feed_action, None, [feeds_html, feed_report], show_progress="minimal",
                          **ingest).then(library.refresh, pickers, refresh_out, **hidden)
        feed_confirm_out = [feed_pending, feed_confirm, feed_confirm_text]
        feeds_html.delete(library.ask_remove_feed, None, feed_confirm_out, **hidden)
        feed_no.click(library.cancel_remove_feed, None, [feed_pending, feed_confirm], **hidden)
        feed_yes.click(library.remove_feed, feed_pending, [feed_pending, feed_confirm, feeds_html, feed_report],
                       **hidden)
        library_html.delete(library.ask_delete, None, [pending, confirm, confirm_text], **hidden)
        delete_no.click(library.cancel_delete, None, [pending, confirm], **hidden)
        delete_yes.click(library.delete, [pending, *pickers], lib_out, show_progress="minimal", **ingest)
        undo_btn.click(library.undo, [undo, *pickers], lib_out, show_progress="minimal", **ingest)
        library_html.select(library.preview, None, preview, **hidden)
        table_filters = [lib_sources, lib_from, lib_to]
        for box in (lib_from, lib_to):
            box.submit(library.filter_table, table_filters, library_html, **hidden)
            box.blur(library.filter_table, table_filters, library_html, **hidden)
        lib_sources.change(library.filter_table, table_filters, library_html, **hidden)
        library_tab.select(library.refresh, pickers, refresh_out, **hidden)
        timer.tick(library.tick, [version, *pickers], [*refresh_out, timer], **hidden)

        demo.load(chat.load, [owner, current], [owner, *conv_out], **hidden)
        demo.load(library.refresh, pickers, refresh_out, **hidden)
    return demo


def parse_auth(auth: str | None) -> tuple[str, str] | None:
    if not auth:
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise RagError("--auth (or RAG_AUTH) must be USER:PASSWORD.")
    return user, password
