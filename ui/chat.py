"""The chat tab's handlers: asking (streamed), regenerate, edit, stop, and saved conversations.

Per browser, in Gradio session state: the open conversation (``{"id", "exchanges"}``)
and the answer being written (so Stop can keep what was written). Saved
conversations live in the engine's :class:`~rag.conversations.ConversationStore`,
keyed by an owner: the logged-in user (``--auth``), or else a random id this
browser keeps in its localStorage (``gr.BrowserState``). Nothing per user is kept
on this object, which every session shares.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import gradio as gr

from rag.chain import DoneEvent, QueryEvent, TextEvent, build_chain, stream
from rag.conversations import ConversationError, ConversationStore, Exchange, history, title_from_question
from rag.engine import Engine
from rag.errors import RagError
from rag.retrieve.filters import Filters, parse_date_arg

from . import render
from .status import IndexStatus

log = logging.getLogger("rag.ui")

WAIT_FOR_INDEX_S = 900  # a question asked during the first index build waits this long
OWNER_KEY = "article-rag-owner"  # localStorage keys
CURRENT_KEY = "article-rag-conversation"
# Gradio sends this to the page, which uses it to scramble what it keeps in
# localStorage: not a secret. Fixed so a server restart can still read it back.
BROWSER_STATE_SECRET = "article-rag-browser-state"
_ANON_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

SEARCH_MODES = [("By keywords", "bm25"), ("Balanced", "hybrid"), ("By meaning", "dense")]
ANSWER_MODES = {"extractive": "Quote the articles", "local": "Local model (reads the quotes)",
                "llamacpp": "Your GGUF model",
                "openai": "Language model server"}


def empty_conversation() -> dict:
    return {"id": None, "exchanges": []}


def owner_of(request: gr.Request | None, token: str | None) -> str | None:
    """Whose conversations: the logged-in user, else this browser's random id (None if it has none yet)."""
    user = getattr(request, "username", None) if request is not None else None
    if user:
        return f"user:{user}"
    if isinstance(token, str) and _ANON_ID.match(token):
        return f"anon:{token}"
    return None


def new_browser_id() -> str:
    return secrets.token_urlsafe(24)


def make_filters(sources, date_from, date_to, article_ids) -> tuple[Filters | None, dict | None]:
    """The search filters chosen on the page, and their record for the saved exchange."""
    sources = sorted({s for s in (sources or []) if s})
    article_ids = sorted({a for a in (article_ids or []) if a})
    start = parse_date_arg((date_from or "").strip() or None)
    end = parse_date_arg((date_to or "").strip() or None)
    if start and end and start > end:
        raise RagError(f"The date range is empty: {start} is after {end}.")
    filters = Filters(article_ids=frozenset(article_ids) or None, sources=frozenset(sources) or None,
                      date_from=start, date_to=end)
    if filters.is_empty():
        return None, None
    record = {"sources": sources, "date_from": start.isoformat() if start else None,
              "date_to": end.isoformat() if end else None, "article_ids": article_ids}
    return filters, {k: v for k, v in record.items() if v}


@dataclass
class ChatView:
    """The chat tab's components, so handlers can return ``{component: value}``."""

    transcript: Any
    live: Any
    conv: Any
    partial: Any
    question: Any
    conv_list: Any
    current: Any
    owner: Any
    stop: Any
    ask: Any
    editing: Any
    edit_banner: Any
    tools: Any
    rename_box: Any
    confirm: Any
    article: Any


class Chat:
    def __init__(self, engine: Engine, status: IndexStatus, store: ConversationStore, modes: list[str]):
        self.engine = engine
        self.status = status
        self.store = store
        self.modes = modes
        self.chain = build_chain(engine)
        self.v: ChatView | None = None

    # -- helpers ---------------------------------------------------------------------
    def _owner(self, request, token) -> tuple[str, str | None]:
        """(owner, new browser id to keep, if one had to be made)."""
        owner = owner_of(request, token)
        if owner is not None:
            return owner, None
        token = new_browser_id()
        return f"anon:{token}", token

    def _list(self, owner: str, current: str | None) -> str:
        try:
            return render.conversation_list(self.store.conversations(owner), current)
        except RagError as exc:
            return render.notice(str(exc), "error")

    def _idle(self) -> dict:
        """Controls back to 'ready to ask'."""
        v = self.v
        return {v.live: "", v.partial: None, v.stop: gr.update(visible=False), v.ask: gr.update(visible=True)}

    def _shown(self, owner: str, conv: dict) -> dict:
        """Everything that shows the open conversation."""
        v = self.v
        cid = conv["id"]
        title = ""
        if cid:
            try:
                title = self.store.get(owner, cid).title
            except RagError:
                title = ""
        return {v.conv: conv, v.transcript: render.transcript(conv["exchanges"]), v.current: cid or "",
                v.conv_list: self._list(owner, cid), v.tools: gr.update(visible=bool(cid)),
                v.rename_box: title, v.confirm: gr.update(visible=False)}

    def _save(self, owner: str, conv: dict, question: str, answer=None, *, partial=None, filters=None) -> tuple[dict, Exchange]:
        """Append the exchange to the conversation (created on its first answer); kept in the
        page only, with a warning, when the conversations file cannot be written."""
        cid = conv["id"]
        try:
            if cid is None:
                cid = self.store.create(owner, title_from_question(question)).conversation_id
            try:
                ex = self.store.add_exchange(owner, cid, question, answer, partial=partial, filters=filters)
            except ConversationError:
                # Deleted meanwhile (in another tab): keep the question in a new conversation.
                cid = self.store.create(owner, title_from_question(question)).conversation_id
                ex = self.store.add_exchange(owner, cid, question, answer, partial=partial, filters=filters)
        except RagError as exc:
            gr.Warning(f"This conversation is not saved: {exc}")
            ex = Exchange(0, question, "answered" if answer is not None else "stopped", answer, partial, filters)
        return {"id": cid, "exchanges": [*conv["exchanges"], ex]}, ex

    # -- asking ------------------------------------------------------------------------
    def respond(self, question, conv, token, editing, top_k, search_mode, answer_mode,
                f_sources, f_from, f_to, f_articles, request: gr.Request):
        yield from self._answer((question or "").strip(), conv, token, bool(editing),
                                (top_k, search_mode, answer_mode), (f_sources, f_from, f_to, f_articles), request)

    def regenerate(self, conv, token, top_k, search_mode, answer_mode, f_sources, f_from, f_to, f_articles,
                   request: gr.Request):
        exchanges = (conv or empty_conversation())["exchanges"]
        if not exchanges:
            yield {self.v.question: gr.skip()}
            return
        yield from self._answer(exchanges[-1].question, conv, token, True,
                                (top_k, search_mode, answer_mode), (f_sources, f_from, f_to, f_articles), request)

    def _answer(self, question: str, conv: dict | None, token, replace_last: bool, options, filter_inputs, request):
        v = self.v
        if not question:
            yield {v.question: gr.skip()}
            return
        owner, new_token = self._owner(request, token)
        conv = dict(conv or empty_conversation())
        if replace_last and conv["exchanges"]:
            # Regenerate / edit: the last exchange is replaced by the new answer.
            conv["exchanges"] = conv["exchanges"][:-1]
            if conv["id"]:
                try:
                    self.store.delete_last_exchange(owner, conv["id"])
                except RagError as exc:
                    gr.Warning(str(exc))
        exchanges = conv["exchanges"]
        first = {
            # The question shows in the live part; the transcript changes only when the
            # last exchange is being replaced (a big conversation is not re-sent).
            v.live: render.live_message(question, note="Searching the articles…"),
            v.question: "", v.conv: conv, v.partial: {"question": question, "text": ""},
            v.stop: gr.update(visible=True), v.ask: gr.update(visible=False),
            v.editing: False, v.edit_banner: gr.update(visible=False),
        }
        if new_token:
            first[v.owner] = new_token
        if replace_last:
            first[v.transcript] = render.transcript(exchanges, busy=True)
        yield first

        deadline = time.monotonic() + WAIT_FOR_INDEX_S
        while not self.status.ready.is_set() and not self.status.error and time.monotonic() < deadline:
            note = self.status.message + " Your question will be answered when it is done."
            yield {v.live: render.live_message(question, note=note)}
            self.status.wait(1.0)

        top_k, search_mode, answer_mode = options
        mode = answer_mode if answer_mode in self.modes else "extractive"
        parts: list[str] = []
        answer = None
        try:
            if not self.status.ready.is_set() and not self.engine.has_index():
                raise RagError(self.status.error or "The index is not ready yet.")
            filters, filter_record = make_filters(*filter_inputs)
            settings = self.engine.settings.model_copy(update={
                "top_k": int(top_k), "retrieval_mode": search_mode, "answer_mode": mode})
            for event in stream(self.engine, question, history(exchanges), settings, self.chain, filters):
                if isinstance(event, QueryEvent):
                    yield {v.live: render.live_message(question, note=render.searching_note(question, event.query))}
                elif isinstance(event, TextEvent):
                    parts.append(event.text)
                    text = "".join(parts)
                    note = render.READING_NOTE if mode == "local" else None
                    yield {v.live: render.live_message(question, text, note=note),
                           v.partial: {"question": question, "text": text}}
                elif isinstance(event, DoneEvent):
                    answer = event.answer
            if answer is None:
                raise RagError("The chain ended without an answer.")
        except RagError as exc:
            yield {v.transcript: render.transcript(exchanges, pending=question, error=str(exc)),
                   v.question: question, **self._idle()}
            return
        except Exception as exc:  # a bug: log the traceback, keep the app running
            log.exception("answering %r failed", question)
            yield {v.transcript: render.transcript(exchanges, pending=question,
                                                   error=f"Something went wrong ({type(exc).__name__}). See the server log."),
                   v.question: question, **self._idle()}
            return
        conv, _ = self._save(owner, conv, question, answer, filters=filter_record)
        yield {**self._shown(owner, conv), **self._idle()}

    def stop(self, conv, partial, token, request: gr.Request):
        """Keep what was written before Stop, marked as stopped (the answer's generator is cancelled)."""
        if not partial:
            return self._idle()
        owner, _ = self._owner(request, token)
        conv, _ = self._save(owner, dict(conv or empty_conversation()), partial["question"],
                             partial=partial.get("text") or "")
        return {**self._shown(owner, conv), **self._idle()}

    def start_edit(self, conv):
        """Put the last question back in the box; the next ask replaces that exchange."""
        v = self.v
        exchanges = (conv or empty_conversation())["exchanges"]
        if not exchanges:
            return {v.editing: False}
        return {v.question: exchanges[-1].question, v.editing: True, v.edit_banner: gr.update(visible=True)}

    def cancel_edit(self):
        v = self.v
        return {v.question: "", v.editing: False, v.edit_banner: gr.update(visible=False)}

    # -- sources -------------------------------------------------------------------------
    def open_source(self, evt: gr.EventData):
        """The side panel: the whole article, the cited span highlighted (the page scrolls to it)."""
        data = evt._data or {}
        try:
            article = self.engine.snapshot.article(str(data.get("article_id") or ""))
            start, end = int(data.get("start", -1)), int(data.get("end", -1))
            copies = self.engine.also_published_by(article.article_id)
        except (TypeError, ValueError):
            return render.EMPTY_ARTICLE
        except RagError:
            return render.notice("This article is no longer in the library.", "error")
        return render.article_view(article, start, end, copies)

    # -- conversations ------------------------------------------------------------------
    def load(self, token, current, request: gr.Request):
        """Page load: this browser's id (made on its first visit), its conversations, the one last open."""
        v = self.v
        owner, new_token = self._owner(request, token)
        conv = empty_conversation()
        if current:
            try:
                conv = {"id": current, "exchanges": self.store.exchanges(owner, current)}
            except RagError:
                conv = empty_conversation()
        out = self._shown(owner, conv)
        if new_token:
            out[v.owner] = new_token
        return out

    def open_conversation(self, token, evt: gr.EventData, request: gr.Request):
        v = self.v
        owner, _ = self._owner(request, token)
        cid = str((evt._data or {}).get("id") or "")
        try:
            conv = {"id": cid, "exchanges": self.store.exchanges(owner, cid)}
        except RagError as exc:
            gr.Warning(str(exc))
            return {v.conv_list: self._list(owner, None)}
        return {**self._shown(owner, conv), **self.cancel_edit(), **self._idle(), v.article: render.EMPTY_ARTICLE}

    def new_chat(self, token, request: gr.Request):
        v = self.v
        owner, _ = self._owner(request, token)
        return {**self._shown(owner, empty_conversation()), **self.cancel_edit(), **self._idle(),
                v.article: render.EMPTY_ARTICLE}

    def rename(self, title, conv, token, request: gr.Request):
        v = self.v
        owner, _ = self._owner(request, token)
        cid = (conv or {}).get("id")
        if not cid:
            return {}
        try:
            info = self.store.rename(owner, cid, title)
        except RagError as exc:
            gr.Warning(str(exc))
            return {}
        return {v.conv_list: self._list(owner, cid), v.rename_box: info.title}

    def ask_delete(self, conv):
        return {self.v.confirm: gr.update(visible=bool((conv or {}).get("id")))}

    def cancel_delete(self):
        return {self.v.confirm: gr.update(visible=False)}

    def delete(self, conv, token, request: gr.Request):
        owner, _ = self._owner(request, token)
        cid = (conv or {}).get("id")
        if cid:
            try:
                self.store.delete(owner, cid)
            except RagError as exc:
                gr.Warning(str(exc))
        return self.new_chat(token, request)
