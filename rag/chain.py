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
Each question takes one snapshot of the index (the engine's retriever at that
moment) and uses it for retrieval and for the answer, so a concurrent ingest or
delete or merge never mixes two versions of the index in one answer.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator, Sequence

from langchain_core.runnables import Runnable, RunnableGenerator, RunnableLambda

from .answer.abstain import ABSTAIN_TEXT
from .answer.citations import marker_chunks
from .answer.extractive import ExtractiveAnswerer
from .answer.followup import rewrite_followup, rewrite_with_model
from .answer.generative import generate
from .answer.reader import combine, read, reader_features, shown_sentences
from .engine import Engine
from .errors import RagError
from .llm.models import ChatModels
from .retrieve.filters import Filters
from .retrieve.retriever import Retriever
from .settings import Settings
from .types import Answer, Citation, RelatedPassage, SearchHit, Turn

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


def build_chain(engine: Engine, chat_models: ChatModels | None = None) -> Runnable:
    """The LCEL pipeline. Input: ``{"question": str, "history": [Turn], "settings": Settings | None,
    "filters": Filters | None}`` (``filters`` restricts the search to articles, sources, dates)."""
    chat_models = chat_models or ChatModels()

    def prepare(inp: dict) -> dict:
        question = (inp.get("question") or "").strip()
        if not question:
            raise RagError("The question is empty.")
        settings: Settings = inp.get("settings") or engine.settings
        history: list[Turn] = list(inp.get("history") or [])
        t = time.perf_counter()
        if history and settings.answer_mode not in ("extractive", "local"):
            query = rewrite_with_model(chat_models.get(settings), history, question)
        else:
            query = rewrite_followup(question, history)
        return {"question": question, "query": query, "history": history, "settings": settings,
                "filters": inp.get("filters"), "retriever": engine.retriever,  # this question's snapshot, for retrieval and answer
                # Relative dates ("last week") are resolved against this (the clock unless given).
                "now": inp.get("now") or datetime.now().astimezone(),
                "timings": {"rewrite_ms": (time.perf_counter() - t) * 1000}, "t0": inp.get("t0", time.perf_counter())}

    def retrieve(state: dict) -> dict:
        settings: Settings = state["settings"]
        retriever: Retriever = state["retriever"]
        t = time.perf_counter()
        state["params"] = engine.search_params(settings)
        state["period"] = period = retriever.period(state["query"], state["now"]) if state["params"].time_aware else None
        # A period in the question narrows the user's own filters (it never widens them).
        filters = period.filters(state["filters"]) if period else state["filters"]
        result = retriever.search(state["query"], state["params"], filters=filters)
        state["timings"]["retrieve_ms"] = (time.perf_counter() - t) * 1000
        state["hits"] = result.hits
        state["qvec"] = result.query_vector
        return state

    def answer(states: Iterator[dict]) -> Iterator[Event]:
        for state in states:
            yield from _answer_events(engine, chat_models, state)

    return RunnableLambda(prepare) | RunnableLambda(retrieve) | RunnableGenerator(answer)


def _answer_events(engine: Engine, chat_models: ChatModels, state: dict) -> Iterator[Event]:
    settings: Settings = state["settings"]
    retriever: Retriever = state["retriever"]
    hits: list[SearchHit] = state["hits"]
    timings = state["timings"]
    yield QueryEvent(state["query"])
    related = [RelatedPassage.from_hit(h) for h in hits]
    t = time.perf_counter()
    reader = None
    if settings.answer_mode in ("extractive", "local"):
        yield PassagesEvent(related)
        qvec = state.get("qvec")
        if qvec is None:  # BM25-only retrieval embeds nothing
            qvec = engine.query_embedder.embed_query(state["query"])
        answerer = ExtractiveAnswerer(retriever.features, settings, state["params"], analyzer=retriever.query)
        if settings.answer_mode == "local":
            # The extractive answer is shown at once (the draft); the model's checked
            # reading of the best sentences replaces it in the final answer.
            model = chat_models.get(settings)
            full = answerer.answer(state["query"], qvec, hits, threshold=float("-inf"))
            weak = full.confidence is None or full.confidence < settings.abstain_threshold
            yield SourcesEvent([] if weak else full.citations)
            for chunk in marker_chunks(ABSTAIN_TEXT if weak else full.text):
                yield TextEvent(chunk)
            timings["draft_ms"] = (time.perf_counter() - t) * 1000
            shown = shown_sentences(full)
            verdict = read(model, state["query"], shown)
            found, how = combine(answerer, state["query"], full, shown, verdict, model_name=settings.local_model)
            timings["reader_ms"] = verdict.seconds * 1000
            span = shown[verdict.sentence].text[verdict.start:verdict.end] if verdict.grounded else None
            reader = {"reply": verdict.raw, "decision": how, "none": verdict.none, "span": verdict.yes_no or span,
                      "extractive_short": full.short_answer.text if full.short_answer else None,
                      "features": reader_features(full.confidence, verdict)}
        else:
            found = answerer.answer(state["query"], qvec, hits)
        text, citations, abstained, conflict = found.text, found.citations, found.abstained, found.conflict
        short_answer, conflicting, confidence = found.short_answer, found.conflicting, found.confidence
        multi_article, evidence = found.multi_article, found.evidence
        if reader is None:
            yield SourcesEvent(citations)
            for chunk in marker_chunks(text):
                yield TextEvent(chunk)
        flagged = False
    else:
        context = hits[:LLM_PASSAGES]
        yield PassagesEvent(related[: len(context)])
        model = chat_models.get(settings)
        for item in generate(model, retriever.features, state["question"], state["history"], context):
            if isinstance(item, str):
                yield TextEvent(item)
            else:
                text, citations, abstained, flagged = item
        conflict, short_answer, conflicting, confidence, multi_article, evidence = False, None, [], None, False, {}
        yield SourcesEvent(citations)
    timings["answer_ms"] = (time.perf_counter() - t) * 1000
    timings["total_ms"] = (time.perf_counter() - state["t0"]) * 1000
    yield DoneEvent(
        Answer(
            question=state["question"], query=state["query"], answer=text, citations=citations,
            abstained=abstained, related=related,
            timings=timings, answerer=settings.answer_mode, flagged=flagged, conflict=conflict,
            short_answer=short_answer, conflicting=conflicting, confidence=confidence, multi_article=multi_article,
            evidence=evidence, period=state["period"].label if state.get("period") else None, reader=reader,
        )
    )


def stream(engine: Engine, question: str, history: Sequence[Turn] = (), settings: Settings | None = None,
           chain: Runnable | None = None, filters: Filters | None = None, *,
           now: datetime | None = None) -> Iterator[Event]:
    """``now``: the time the question is asked at, for "last week" and the like (default: the clock)."""
    chain = chain or build_chain(engine)
    yield from chain.stream({"question": question, "history": list(history), "settings": settings,
                             "filters": filters, "now": now, "t0": time.perf_counter()})


def ask(engine: Engine, question: str, history: Sequence[Turn] = (), settings: Settings | None = None,
        chain: Runnable | None = None, filters: Filters | None = None, *, now: datetime | None = None) -> Answer:
    for event in stream(engine, question, history, settings, chain, filters, now=now):
        if isinstance(event, DoneEvent):
            return event.answer
    raise RagError("The chain ended without an answer.")  # pragma: no cover - defensive
