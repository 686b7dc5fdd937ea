"""Turning a follow-up question into a standalone query.

"When will they meet?" after "Who will Trump meet in Budapest?" cannot be
retrieved on its own: the pronoun carries the topic. Without a language model,
:func:`rewrite_followup` appends the previous turn's key words (names first) to
the question; with one, :func:`rewrite_with_model` asks it to rewrite the question.
"""

from __future__ import annotations

import logging
import re

from langchain_core.language_models.chat_models import BaseChatModel

from ..llm.models import limit_kwargs, stream_text
from ..text.terms import stopwords
from ..types import Turn
from .prompt import clean_rewrite, rewrite_messages

log = logging.getLogger(__name__)
_REWRITE_MAX_TOKENS = 96

_ANAPHORA = re.compile(
    r"\b(they|them|their|theirs|he|him|his|she|her|hers|it|its|this|that|these|those|there|then|"
    r"the two|both|the meeting|the summit|the call|the deal|the missiles?)\b",
    re.I,
)
_CONTINUATION = re.compile(r"^\s*(and|but|also|so|what about|how about|why|when|where)\b", re.I)
_WORD = re.compile(r"[A-Za-z][\w'’-]*")
_QUESTION_WORDS = {"who", "what", "when", "where", "why", "how", "which", "whom", "whose", "will", "would", "did", "does", "do", "is", "are", "was", "were", "can", "could", "should"}
MAX_CARRIED = 6


def is_followup(question: str) -> bool:
    words = [w.lower() for w in _WORD.findall(question)]
    content = [w for w in words if w not in stopwords() and w not in _QUESTION_WORDS]
    return bool(_ANAPHORA.search(question)) or len(content) <= 1 or bool(_CONTINUATION.match(question) and len(content) <= 2)


def keywords(text: str) -> list[str]:
    """Content words of a text, names (capitalised, not sentence-initial) first."""
    names, others = [], []
    for i, m in enumerate(_WORD.finditer(text)):
        w = m.group(0).strip("'’")
        low = w.lower()
        if low in stopwords() or low in _QUESTION_WORDS or len(w) < 3:
            continue
        (names if w[0].isupper() and i > 0 else others).append(w)
    return list(dict.fromkeys(names + others))


def rewrite_followup(question: str, history: list[Turn]) -> str:
    """Standalone query for ``question`` given the earlier turns.

    Only the previous turn's (standalone) question is used as context: answers
    quote whole sentences whose words would pull retrieval off topic.
    """
    if not history or not is_followup(question):
        return question
    prev_q = history[-1].query or history[-1].question
    have = {w.lower() for w in _WORD.findall(question)}
    carried = [w for w in keywords(prev_q) if w.lower() not in have][:MAX_CARRIED]
    return f"{question.strip()} ({' '.join(carried)})" if carried else question


def rewrite_with_model(model: BaseChatModel, history: list[Turn], question: str) -> str:
    """The follow-up as a standalone question written by ``model`` (the question itself if no history)."""
    if not history:
        return question
    # A question needs few tokens; never allow more than the model's own cap.
    limit = min(_REWRITE_MAX_TOKENS, getattr(model, "max_tokens", None) or _REWRITE_MAX_TOKENS)
    messages = rewrite_messages([(h.question, h.answer) for h in history], question)
    raw = "".join(stream_text(model, messages, **limit_kwargs(model, limit)))
    rewritten = clean_rewrite(raw, question)
    log.debug("follow-up %r rewritten as %r", question, rewritten)
    return rewritten
