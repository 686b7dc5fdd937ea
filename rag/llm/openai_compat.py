"""Any OpenAI-compatible server (llama.cpp server, vLLM, Ollama, OpenAI) as a LangChain chat model."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel

from ..errors import LLMError
from ..settings import Settings


def make_openai(settings: Settings) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    if not settings.llm_model:
        raise LLMError("No model name for the LLM server: set RAG_LLM_MODEL or --llm-model.")
    if not settings.llm_base_url and not settings.llm_api_key:
        raise LLMError(
            "No LLM server configured: set RAG_LLM_BASE_URL (e.g. http://127.0.0.1:8080/v1) "
            "or OPENAI_API_KEY for api.openai.com."
        )
    compatible_server = bool(settings.llm_base_url)
    return ChatOpenAI(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        # Local OpenAI-compatible servers ignore the key, but the client demands one.
        api_key=settings.llm_api_key or "not-needed",
        timeout=settings.llm_timeout_s,
        # One quick retry at most: a user is waiting, and a dead server stays dead.
        max_retries=1,
        temperature=settings.llm_temperature,
        streaming=True,
        **max_tokens_fields(settings.llm_max_tokens, compatible_server),
    )


def max_tokens_fields(limit: int, compatible_server: bool) -> dict[str, Any]:
    """The reply-length limit in the field the server understands.

    ChatOpenAI sends ``max_tokens`` as ``max_completion_tokens``, OpenAI's newer
    name. llama-cpp-python's server (and other compatible servers) only know
    ``max_tokens``, ignore the new field and generate until the context is full,
    so for those the limit travels in ``extra_body`` under its old name.
    """
    if compatible_server:
        return {"extra_body": {"max_tokens": limit}}
    return {"max_tokens": limit}
