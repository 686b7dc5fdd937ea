"""A local GGUF model run in-process by llama-cpp-python, as a LangChain chat model."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from langchain_core.language_models.chat_models import BaseChatModel, generate_from_stream
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import ConfigDict

from ..errors import LLMError, first_line

if TYPE_CHECKING:
    from langchain_core.callbacks import CallbackManagerForLLMRun

log = logging.getLogger(__name__)

# Room for ~10 passages of 256 word pieces (~3k model tokens once re-tokenised),
# the instructions, a short history and a reply of a few hundred tokens.
LLAMA_N_CTX = 4096

_GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class _LoadedLlama:
    llama: Any  # llama_cpp.Llama
    # A Llama holds one KV cache: two generations at once would corrupt each other.
    lock: threading.Lock


# The one module-level cache: loading a GGUF takes seconds and the weights never
# change, so every chat model (one per UI session, CLI call, eval run) shares it.
# Keyed on size and mtime too, so a file replaced in place is loaded afresh.
_LLAMA_CACHE: dict[tuple[str, int, int, int], _LoadedLlama] = {}
_LLAMA_CACHE_LOCK = threading.Lock()


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))  # respects container CPU limits
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _check_gguf(path: Path | None) -> Path:
    hint = "set RAG_LLM_MODEL_PATH or --llm-model-path"
    if path is None:
        raise LLMError(f"No GGUF model configured: {hint}.")
    path = Path(path).expanduser()
    if not path.is_file():
        raise LLMError(f"No GGUF model at {path}: {hint}.")
    try:
        with path.open("rb") as f:
            magic = f.read(len(_GGUF_MAGIC))
    except OSError as exc:
        raise LLMError(f"Cannot read the model file {path} ({exc.strerror}): {hint}.") from exc
    if magic != _GGUF_MAGIC:
        raise LLMError(f"{path} is not a GGUF model file: {hint} to a .gguf file.")
    return path.resolve()


def load_llama(path: Path | None, n_ctx: int = LLAMA_N_CTX) -> _LoadedLlama:
    """The llama.cpp model for ``path``, loaded once per process."""
    path = _check_gguf(path)
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, n_ctx)
    with _LLAMA_CACHE_LOCK:
        loaded = _LLAMA_CACHE.get(key)
        if loaded is None:
            loaded = _LoadedLlama(_open_llama(path, n_ctx), threading.Lock())
            _LLAMA_CACHE[key] = loaded
    return loaded


def avoid_amx_crash() -> bool:
    """Stop llama.cpp from repacking weights for Intel AMX; True if it had to.

    Builds compiled for a CPU with AMX (the default native build on Sapphire Rapids
    and later) put K-quant weights in an AMX buffer whose matmul segfaults on the
    first token on some machines, the development VM included (llama.cpp #20824, closed
    unfixed). ``Llama()`` exposes no switch for extra buffer types, so wrap the
    default model parameters it starts from. Weights then use the plain CPU kernels.
    Process-wide and idempotent; call before any ``Llama`` is created.
    """
    import llama_cpp
    import llama_cpp.llama_cpp as low_level

    if b"AMX_INT8 = 1" not in llama_cpp.llama_print_system_info():
        return False
    defaults = low_level.llama_model_default_params
    if getattr(defaults, "_rag_no_extra_bufts", False):
        return True

    def no_extra_buffer_types() -> Any:
        params = defaults()
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = False
        return params

    no_extra_buffer_types._rag_no_extra_bufts = True  # type: ignore[attr-defined]
    low_level.llama_model_default_params = no_extra_buffer_types
    log.info("llama.cpp build uses AMX: weight repacking disabled to avoid its crash")
    return True


def _open_llama(path: Path, n_ctx: int) -> Any:
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise LLMError(
            "llama-cpp-python is not installed: pip install 'article-rag[llama]' "
            "or use answer mode 'openai' with a server."
        ) from exc
    avoid_amx_crash()
    threads = _cpu_count()
    log.info("loading %s (n_ctx=%d, %d threads)", path, n_ctx, threads)
    try:
        return Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        raise LLMError(f"llama.cpp could not load {path} ({first_line(exc)}).") from exc


_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


def _to_llama_messages(messages: list[BaseMessage]) -> list[dict[str, str]]:
    return [{"role": _ROLES.get(m.type, "user"), "content": str(m.text)} for m in messages]


_CALL_OPTIONS = ("max_tokens", "temperature", "stop")  # per-call overrides we honour


class TokenLogprobs:
    """A llama.cpp logits processor that records each generated step's top tokens.

    ``Llama`` returns logprobs only when built with ``logits_all=True``, which keeps
    a vocabulary-wide row of logits for every prompt token (gigabytes at 4k context).
    A processor sees the next-token logits anyway, so this records the same thing for
    the generated steps only. The entries follow the OpenAI ``logprobs.content`` shape
    that ``ChatOpenAI`` puts in ``response_metadata``, so callers read one format.
    """

    def __init__(self, llama: Any, top: int) -> None:
        self.llama, self.top = llama, top
        self.steps: list[tuple[int, list[tuple[int, float]]]] = []  # (prompt length, top (id, logprob))

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import numpy as np

        logits = np.asarray(scores, dtype=np.float64)
        peak = logits.max()
        logprobs = logits - (peak + np.log(np.exp(logits - peak).sum()))
        best = np.argpartition(-logprobs, self.top)[: self.top]
        best = best[np.argsort(-logprobs[best])]
        self.steps.append((len(input_ids), [(int(i), float(logprobs[i])) for i in best]))
        return scores

    def content(self, chosen: list[int]) -> list[dict[str, Any]]:
        """The entries, given the token ids actually generated (greedy when unknown)."""
        out = []
        for k, (_, top) in enumerate(self.steps):
            token = chosen[k] if k < len(chosen) else top[0][0]
            logprob = next((lp for i, lp in top if i == token), top[-1][1])
            out.append({
                "token": self._text(token), "logprob": logprob,
                "top_logprobs": [{"token": self._text(i), "logprob": lp} for i, lp in top],
            })
        return out

    def _text(self, token: int) -> str:
        return self.llama.detokenize([token]).decode("utf-8", errors="replace")


class LlamaCppChat(BaseChatModel):
    """A chat model over a shared in-process ``llama_cpp.Llama``.

    Written here rather than using ``langchain_community``'s ``ChatLlamaCpp``
    because that one builds a new ``Llama`` (seconds, and a second copy of the
    weights) in its validator for every instance, and cannot share a loaded one.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    loaded: Any  # _LoadedLlama; Any keeps pydantic out of the llama object
    model_path: str
    temperature: float = 0.1
    max_tokens: int = 512

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-in-process"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "temperature": self.temperature}

    def _params(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {"max_tokens": self.max_tokens, "temperature": self.temperature}
        if stop:
            params["stop"] = stop
        params.update({k: v for k, v in kwargs.items() if k in _CALL_OPTIONS})
        return params

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        params = self._params(stop, kwargs)
        llama = self.loaded.llama
        # ``logprobs=True`` (the ChatOpenAI call option): the steps' top tokens come
        # back on a last, empty chunk's ``response_metadata["logprobs"]``.
        recorder = TokenLogprobs(llama, int(kwargs.get("top_logprobs") or 5)) if kwargs.get("logprobs") else None
        if recorder is not None:
            from llama_cpp import LogitsProcessorList

            params["logits_processor"] = LogitsProcessorList([recorder])
        with self.loaded.lock:
            try:
                parts = llama.create_chat_completion(
                    messages=_to_llama_messages(messages), stream=True, **params
                )
                for part in parts:
                    choices = part.get("choices") or [{}]
                    text = (choices[0].get("delta") or {}).get("content")
                    if not text:
                        continue
                    chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
                    if run_manager:
                        run_manager.on_llm_new_token(text, chunk=chunk)
                    yield chunk
                if recorder is not None and recorder.steps:
                    # The generated ids sit in the context after the prompt the
                    # first step saw (llama.cpp keeps them in ``input_ids``).
                    first = recorder.steps[0][0]
                    chosen = [int(t) for t in llama.input_ids[first:llama.n_tokens]]
                    meta = {"logprobs": {"content": recorder.content(chosen)}}
                    yield ChatGenerationChunk(message=AIMessageChunk(content="", response_metadata=meta))
            except (ValueError, RuntimeError) as exc:
                # e.g. "Requested tokens (5000) exceed context window of 4096"
                raise LLMError(
                    f"The local model failed: {first_line(exc)} "
                    "(fewer passages or a shorter question may help)."
                ) from exc

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))
