"""The OpenAI-compatible routes: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Any OpenAI client (the ``openai`` package, Open WebUI as a connection) talks to
article-rag as the model ``article-rag``. The messages are the conversation: the
last user message is the question and the earlier turns are its history, so a
follow-up resolves against them. The answer, with its ``[n]`` markers, is
``choices[0].message.content``; a top-level ``citations`` list (an extension
field, which OpenAI clients keep) says what each marker cites. Streaming sends
``chat.completion.chunk`` events and the citations on the final chunk, then
``[DONE]``.

Options OpenAI defines for sampling (``temperature``, ``max_tokens``...) are
accepted and ignored: the server's answer settings apply. Two extension fields,
``settings`` and ``filters``, take the same values as ``POST /api/v1/ask``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, AsyncIterator, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from rag.chain import DoneEvent, Event, TextEvent, ask, stream
from rag.types import Answer

from .conversation import split_chat
from .models import AskSettings, FiltersIn, Message
from .problems import Problem, empty_question, event_problem
from .service import Service, filters_for
from .streaming import event_stream, sse

PREFIX = "/v1"
MODEL_ID = "article-rag"


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # OpenAI's sampling options: accepted, not used
    model: str = Field(description=f"always {MODEL_ID!r}")
    messages: list[Message] = Field(min_length=1, description="the conversation; the last user message is the question")
    stream: bool = False
    settings: AskSettings | None = Field(None, description="extension: per-request answer settings")
    filters: FiltersIn | None = Field(None, description="extension: restrict retrieval")


class CitationOut(BaseModel):
    n: int
    title: str
    source: str | None
    url: str | None
    published_at: str | None
    quote: str = Field(description="the cited sentence, verbatim: the article's text[start:end]")
    article_id: str
    start: int
    end: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str = MODEL_ID
    choices: list[Choice]
    citations: list[CitationOut] = Field(description="extension: what each [n] marker in the content cites")


class ModelCard(BaseModel):
    id: str = MODEL_ID
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "article-rag"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def citations(answer: Answer) -> list[dict[str, Any]]:
    return [CitationOut(**c.to_dict()).model_dump() for c in answer.citations]


def router(svc: Service) -> APIRouter:
    r = APIRouter(prefix=PREFIX, tags=["OpenAI-compatible"])
    engine = svc.engine
    started = int(time.time())

    @r.get("/models", response_model=ModelList)
    async def list_models():
        """The one model: `article-rag`."""
        return ModelList(data=[ModelCard(created=started)])

    @r.get("/models/{model}", response_model=ModelCard, responses={404: {"description": "not this server's model"}})
    async def get_model(model: str):
        if model != MODEL_ID:
            raise unknown_model(model)
        return ModelCard(created=started)

    @r.post("/chat/completions", response_model=ChatCompletion,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "with `stream: true`: chat.completion.chunk events, "
                                            "citations on the last"}})
    async def chat_completions(body: ChatCompletionRequest):
        """Answer the last user message from the articles; the earlier messages are the conversation."""
        if body.model != MODEL_ID:
            raise unknown_model(body.model)
        turns, question = split_chat(body.messages)
        if not question:
            raise empty_question()
        svc.require_index()
        settings = svc.settings_for(body.settings)
        filters = filters_for(body.filters)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if body.stream:
            events = svc.workers.answer_stream(stream(engine, question, turns, settings, svc.chain, filters))
            # An LLM's reply streams as drafted, but its markers are checked and renumbered
            # once it is complete: send the checked text then, so content and citations agree.
            live = settings.answer_mode == "extractive"
            return event_stream(chunks(events, completion_id, created, live))
        answer = await svc.workers.answer(ask, engine, question, turns, settings, svc.chain, filters)
        return ChatCompletion(id=completion_id, created=created,
                              choices=[Choice(message=AssistantMessage(content=answer.answer))],
                              citations=citations(answer))

    return r


def unknown_model(model: str) -> Problem:
    return Problem(404, f"The model {model!r} does not exist here; use {MODEL_ID!r} (GET /v1/models).",
                   code="model_not_found")


async def chunks(events: AsyncIterator[Event], completion_id: str, created: int, live: bool) -> AsyncIterator[bytes]:
    def chunk(delta: dict, finish_reason: str | None = None, **extra) -> bytes:
        return sse({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}], **extra})

    yield chunk({"role": "assistant", "content": ""})
    answer = None
    try:
        async for event in events:
            if isinstance(event, TextEvent) and live:
                yield chunk({"content": event.text})
            elif isinstance(event, DoneEvent):
                answer = event.answer
    except Exception as exc:  # noqa: BLE001 - the status line is sent: report in the stream, as OpenAI does
        problem = event_problem(exc)
        yield sse({**problem, "error": {"message": problem["detail"], "type": "server_error", "code": problem["code"]}})
        return
    if answer is None:  # pragma: no cover - the chain always ends with its answer
        return
    if not live:
        yield chunk({"content": answer.answer})
    yield chunk({}, "stop", citations=citations(answer))
    yield b"data: [DONE]\n\n"
