"""Building chat models from settings, and streaming them with one-line errors.

Two back ends, both LangChain chat models so the caller streams them the same way:

* ``llamacpp``: a local GGUF file run in-process by llama-cpp-python;
* ``openai``: any OpenAI-compatible server (llama.cpp server, vLLM, Ollama, OpenAI).
"""

from __future__ import annotations

import functools
import importlib
import logging
import socket
from typing import Any, Iterator

from langchain_core.exceptions import ModelError
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage

from ..errors import LLMError, first_line
from ..settings import Settings
from .llamacpp import LlamaCppChat, load_llama
from .openai_compat import make_openai, max_tokens_fields
from .packaged import MODELS, ensure_model, installed

log = logging.getLogger(__name__)


def make_chat_model(settings: Settings) -> BaseChatModel:
    """The chat model ``settings.answer_mode`` asks for; LLMError if it cannot be made."""
    if settings.answer_mode == "local":
        path = ensure_model(settings.local_model, settings.models_dir)
        return LlamaCppChat(loaded=load_llama(path), model_path=str(path), temperature=0.0,
                            max_tokens=settings.llm_max_tokens)
    if settings.answer_mode == "llamacpp":
        loaded = load_llama(settings.llm_model_path)
        return LlamaCppChat(
            loaded=loaded,
            model_path=str(settings.llm_model_path),
            temperature=settings.llm_temperature,
            max_tokens=settings.llm_max_tokens,
        )
    if settings.answer_mode == "openai":
        return make_openai(settings)
    raise LLMError(
        f"Answer mode {settings.answer_mode!r} uses no language model: "
        "choose 'local', 'llamacpp' or 'openai'."
    )


class ChatModels:
    """Lazily built chat models, one per configuration (weights are shared and immutable)."""

    def __init__(self) -> None:
        self._models: dict[tuple, BaseChatModel] = {}

    def get(self, settings: Settings) -> BaseChatModel:
        key = (settings.answer_mode, settings.local_model, str(settings.llm_model_path), settings.llm_base_url, settings.llm_model)
        if key not in self._models:
            self._models[key] = make_chat_model(settings)
        return self._models[key]


def limit_kwargs(model: BaseChatModel, limit: int) -> dict[str, Any]:
    """Per-call kwargs capping the reply at ``limit`` tokens, for either back end."""
    if isinstance(model, LlamaCppChat):
        return {"max_tokens": limit}
    compatible_server = bool(getattr(model, "openai_api_base", None))
    return max_tokens_fields(limit, compatible_server)


def _server_url(model: BaseChatModel) -> str:
    return str(getattr(model, "openai_api_base", None) or "https://api.openai.com/v1")


@functools.cache
def _http_error_types() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(any error, timeout) classes of the HTTP clients present.

    openai 3.x sends requests with ``httpx2``, older releases with ``httpx``; its
    own exceptions wrap theirs, but a raw one can still escape from a stream.
    """
    errors: list[type[BaseException]] = []
    timeouts: list[type[BaseException]] = [TimeoutError]
    for name in ("httpx", "httpx2"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        errors.append(module.HTTPError)
        timeouts.append(module.TimeoutException)
    return tuple(errors), tuple(timeouts)


def _connection_reason(exc: BaseException) -> str:
    """A few words for why a connection failed, from the exception chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, socket.gaierror):
            return "unknown host"
        if isinstance(seen, _http_error_types()[1]):
            return "timed out"
        seen = seen.__cause__ or seen.__context__
    text = first_line(exc)
    return "connection refused" if "refused" in text.lower() else text


def _as_llm_error(exc: BaseException, model: BaseChatModel) -> LLMError:
    import openai

    url = _server_url(model)
    http_errors, timeouts = _http_error_types()
    if isinstance(exc, (openai.APITimeoutError, *timeouts)):
        timeout = getattr(model, "request_timeout", None)
        after = f" after {timeout:g}s" if isinstance(timeout, (int, float)) else ""
        return LLMError(
            f"The LLM server at {url} timed out{after}: "
            "raise RAG_LLM_TIMEOUT_S or use a smaller model."
        )
    if isinstance(exc, (openai.APIConnectionError, *http_errors)):
        return LLMError(
            f"Cannot reach the LLM server at {url} ({_connection_reason(exc)}): "
            "start it or fix RAG_LLM_BASE_URL."
        )
    if isinstance(exc, openai.APIStatusError):
        hint = {
            401: "check OPENAI_API_KEY",
            403: "check OPENAI_API_KEY",
            404: "check RAG_LLM_MODEL and RAG_LLM_BASE_URL",
        }.get(exc.status_code, "see the server's log")
        return LLMError(
            f"The LLM server at {url} answered HTTP {exc.status_code} "
            f"({first_line(exc)[:200]}): {hint}."
        )
    return LLMError(f"The language model failed ({first_line(exc)[:200]}).")


def stream_text(model: BaseChatModel, messages: list[BaseMessage], **kwargs: Any) -> Iterator[str]:
    import openai

    try:
        for chunk in model.stream(messages, **kwargs):
            text = str(chunk.text)
            if text:
                yield text
    except LLMError:
        raise
    except (openai.APIError, ModelError, *_http_error_types()[0], *_http_error_types()[1]) as exc:
        log.debug("LLM call failed", exc_info=True)
        raise _as_llm_error(exc, model) from exc


def reply_with_logprobs(model: BaseChatModel, messages: list[BaseMessage], top: int = 5,
                        **kwargs: Any) -> tuple[str, list[dict[str, Any]]]:
    """The whole reply and its tokens' logprobs (OpenAI ``logprobs.content`` entries;
    empty when the back end gives none), with the same one-line errors as ``stream_text``."""
    import openai

    text: list[str] = []
    content: list[dict[str, Any]] = []
    try:
        for chunk in model.stream(messages, logprobs=True, top_logprobs=top, **kwargs):
            text.append(str(chunk.text))
            content.extend(((chunk.response_metadata or {}).get("logprobs") or {}).get("content") or [])
    except LLMError:
        raise
    except (openai.APIError, ModelError, *_http_error_types()[0], *_http_error_types()[1]) as exc:
        log.debug("LLM call failed", exc_info=True)
        raise _as_llm_error(exc, model) from exc
    return "".join(text), content


def answer_modes(settings: Settings) -> list[str]:
    """The answer modes ``settings`` can run: extractive always, an LLM mode once its model is configured."""
    modes = ["extractive"]
    if settings.local_model in MODELS and installed(MODELS[settings.local_model]):
        modes.append("local")
    if settings.llm_model_path:
        modes.append("llamacpp")
    if settings.llm_base_url:
        modes.append("openai")
    return modes
