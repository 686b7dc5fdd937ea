"""The question-answering chain: rewrite -> retrieve -> answer, as a LangChain runnable.

``build_chain`` returns an LCEL pipeline whose ``stream`` yields typed events, so a
UI can route each to its widget as soon as it is known:

* :class:`QueryEvent`    the standalone question used for retrieval
* :class:`PassagesEvent` the retrieved passages (the LLM's numbered context)
* :class:`TextEvent`     a chunk of answer text
* :class:`SourcesEvent`  the citations behind the answer's markers
* :class:`DoneEvent`     the complete, typed :class:`Answer`

:func:`ask` runs the chain and returns the final :class:`Answer`. The chain holds
no per-conversation state: history and per-session settings come with each call.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
from langchain_core.runnables import Runnable, RunnableGenerator, RunnableLambda

from .answer import ABSTAIN_TEXT, Answer, Citation, ExtractiveAnswerer, RelatedPassage, sentence_chunks
from .engine import Engine
from .errors import RagError
from .followup import rewrite_followup
from .models import SearchHit, Turn
from .settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueryEvent:
    query: str


@dataclass(frozen=True)
class PassagesEvent:
    passages: list[RelatedPassage]


@dataclass(frozen=True)
class TextEvent:
    text: str


@dataclass(frozen=True)
class SourcesEvent:
    citations: list[Citation]


@dataclass(frozen=True)
class DoneEvent:
    answer: Answer


Event = QueryEvent | PassagesEvent | TextEvent | SourcesEvent | DoneEvent

# Passages handed to an LLM: enough context without drowning a small model.
LLM_PASSAGES = 6


class ChatModels:
    """Lazily built chat models, one per configuration (weights are shared and immutable)."""

    def __init__(self) -> None:
        self._models: dict[tuple, Any] = {}

    def get(self, settings: Settings):
        key = (settings.answer_mode, str(settings.llm_model_path), settings.llm_base_url, settings.llm_model)
        if key not in self._models:
            from .llm import make_chat_model

            self._models[key] = make_chat_model(settings)
        return self._models[key]


def build_chain(engine: Engine, chat_models: ChatModels | None = None) -> Runnable:
    """The LCEL pipeline. Input: ``{"question": str, "history": [Turn], "settings": Settings | None}``."""
    chat_models = chat_models or ChatModels()

    def prepare(inp: dict) -> dict:
        question = (inp.get("question") or "").strip()
        if not question:
            raise RagError("The question is empty.")
        settings: Settings = inp.get("settings") or engine.settings
        history: list[Turn] = list(inp.get("history") or [])
        t = time.perf_counter()
        if history and settings.answer_mode != "extractive":
            from .llm import rewrite_followup as llm_rewrite

            query = llm_rewrite(chat_models.get(settings), [(h.question, h.answer) for h in history], question)
        else:
            query = rewrite_followup(question, history)
        return {"question": question, "query": query, "history": history, "settings": settings,
                "timings": {"rewrite_ms": (time.perf_counter() - t) * 1000}, "t0": inp.get("t0", time.perf_counter())}

    def retrieve(state: dict) -> dict:
        settings: Settings = state["settings"]
        t = time.perf_counter()
        result = engine.search(state["query"], k=settings.top_k, mode=settings.retrieval_mode)
        state["timings"]["retrieve_ms"] = (time.perf_counter() - t) * 1000
        state["hits"] = result.hits
        state["qvec"] = result.query_vector
        return state

    def generate(states: Iterator[dict]) -> Iterator[Event]:
        for state in states:
            yield from _answer_events(engine, chat_models, state)

    return RunnableLambda(prepare) | RunnableLambda(retrieve) | RunnableGenerator(generate)


def _answer_events(engine: Engine, chat_models: ChatModels, state: dict) -> Iterator[Event]:
    settings: Settings = state["settings"]
    hits: list[SearchHit] = state["hits"]
    timings = state["timings"]
    yield QueryEvent(state["query"])
    related = [RelatedPassage.from_hit(h) for h in hits]
    t = time.perf_counter()
    if settings.answer_mode == "extractive":
        yield PassagesEvent(related)
        retriever = engine.retriever
        qvec = state.get("qvec")
        if qvec is None:  # BM25-only retrieval embeds nothing
            qvec = engine.query_embedder.embed_query(state["query"])
        text, citations, abstained, conflict = ExtractiveAnswerer(retriever, settings).answer(state["query"], qvec, hits)
        yield SourcesEvent(citations)
        for chunk in sentence_chunks(text):
            yield TextEvent(chunk)
        flagged = False
        answerer = "extractive"
    else:
        context = hits[:LLM_PASSAGES]
        yield PassagesEvent(related[: len(context)])
        text, citations, abstained, flagged = yield from _llm_answer(engine, chat_models.get(settings), state, context)
        conflict = False
        answerer = settings.answer_mode
        yield SourcesEvent(citations)
    timings["answer_ms"] = (time.perf_counter() - t) * 1000
    timings["total_ms"] = (time.perf_counter() - state["t0"]) * 1000
    yield DoneEvent(
        Answer(
            question=state["question"], query=state["query"], answer=text, citations=citations,
            abstained=abstained, related=related,
            timings=timings, answerer=answerer, flagged=flagged, conflict=conflict,
        )
    )


_MARKER = re.compile(r"\[(\d+)\]")


def _llm_answer(engine: Engine, model, state: dict, context: list[SearchHit]):
    """Stream the model's reply, then keep only markers that point at real passages."""
    from .chunking import header_for
    from .llm import build_messages, is_abstention, stream_answer, validate_citations

    passages = [(i, header_for(h.article.title, h.article.source, h.article.published_at), h.passage.text)
                for i, h in enumerate(context, 1)]
    history = [(h.question, h.answer) for h in state["history"]]
    messages = build_messages(state["question"], passages, history)
    raw = []
    for chunk in stream_answer(model, messages):
        raw.append(chunk)
        yield TextEvent(chunk)
    cleaned, used, flagged = validate_citations("".join(raw).strip(), len(context))
    abstained = is_abstention(cleaned) or not cleaned
    if abstained:
        return (cleaned or ABSTAIN_TEXT), [], True, False
    # Renumber markers 1..m in order of first appearance, one citation per passage.
    order: list[int] = []
    for m in _MARKER.finditer(cleaned):
        n = int(m.group(1))
        if n in used and n not in order:
            order.append(n)
    new_n = {old: i for i, old in enumerate(order, 1)}
    text = _MARKER.sub(lambda m: f"[{new_n[int(m.group(1))]}]" if int(m.group(1)) in new_n else "", cleaned)
    citations = [_cite_passage(engine, context[old - 1], new, _claims_for(cleaned, old)) for old, new in new_n.items()]
    return text, citations, False, flagged


def _claims_for(text: str, n: int) -> str:
    """The sentences of the reply that carry marker [n]."""
    sents = re.split(r"(?<=[.!?\]])\s+", text)
    return " ".join(s for s in sents if f"[{n}]" in s) or text


def _cite_passage(engine: Engine, hit: SearchHit, n: int, claim: str) -> Citation:
    """Cite the sentence of the passage that best matches the claim (verbatim span)."""
    r = engine.retriever
    units = list(r.snap.passage_units(hit.passage.passage_id))
    from .retrieval import sentence_terms

    # The same terms unit_terms() holds, so hyphenated compounds can match too.
    claim_terms = set(sentence_terms(claim))
    best = max(units, key=lambda u: len(claim_terms & r.unit_terms(u)), default=None)
    a = hit.article
    if best is None:
        start, end, quote = hit.passage.start, hit.passage.end, hit.passage.text
    else:
        rec = r.snap.units[best]
        start, end, quote = int(rec["start"]), int(rec["end"]), r.unit_text(best)
    return Citation(n, a.article_id, a.title, a.source, a.url, a.published_at, quote, start, end,
                    hit.passage.passage_id, hit.passage.start, hit.passage.end)


def stream(engine: Engine, question: str, history: Sequence[Turn] = (), settings: Settings | None = None,
           chain: Runnable | None = None) -> Iterator[Event]:
    chain = chain or build_chain(engine)
    yield from chain.stream({"question": question, "history": list(history), "settings": settings, "t0": time.perf_counter()})


def ask(engine: Engine, question: str, history: Sequence[Turn] = (), settings: Settings | None = None,
        chain: Runnable | None = None) -> Answer:
    for event in stream(engine, question, history, settings, chain):
        if isinstance(event, DoneEvent):
            return event.answer
    raise RagError("The chain ended without an answer.")  # pragma: no cover - defensive
