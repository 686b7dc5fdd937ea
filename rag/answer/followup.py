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

# Words that point back at something named earlier. Personal pronouns and "there"/
# "then" always need a referent; a definite topic noun ("the summit") only when the
# question names nothing itself ("Why was Hungary chosen for the summit?" stands alone).
_POINTERS = re.compile(
    r"\b(they|them|their|theirs|he|him|his|she|her|hers|it|its|there|then|the two|both)\b"
    # a demonstrative before a noun ("those launchers", "that court"), not "that the ..."
    r"|\b(this|that|these|those)\s+(?!(?:is|was|are|were|will|would|has|have|had|the|a|an|in|on|of|to|it|he|she|they)\b)(?-i:[a-z])\w+",
    re.I,
)
_DEFINITE = re.compile(
    r"\b(the meeting|the summit|the call|the deal|the talks|the missiles?|the launchers?|"
    r"the country|the city|the court|the company|the war|the attack)\b",
    re.I,
)
_CONTINUATION = re.compile(r"^\s*(and|but|also|so|what about|how about|why|when|where)\b", re.I)
_WORD = re.compile(r"[A-Za-z][\w'’-]*")
_QUESTION_WORDS = {"who", "what", "when", "where", "why", "how", "which", "whom", "whose", "will", "would", "did", "does", "do", "is", "are", "was", "were", "can", "could", "should"}
MAX_CARRIED = 6


def _names(question: str) -> list[str]:
    """Capitalised words after the first (names the question gives itself)."""
    words = _WORD.findall(question)
    return [w for w in words[1:] if w[0].isupper() and w.lower() not in _QUESTION_WORDS and w not in ("I",)]


def is_followup(question: str) -> bool:
    """Whether ``question`` leans on the conversation for what it is about.

    A question that names its own subject stands alone, whatever came before:
    "Why was Hungary chosen for the summit?" is answered as asked. A pronoun
    ("When will they meet?", "What position does he hold?"), a bare "Why there?"
    or a fragment ("And the range?") takes its referent from the earlier turns.
    """
    words = [w.lower() for w in _WORD.findall(question)]
    content = [w for w in words if w not in stopwords() and w not in _QUESTION_WORDS]
    if len(content) <= 1 or (_CONTINUATION.match(question) and len(content) <= 2):
        return True
    if _POINTERS.search(question):
        return True
    return bool(_DEFINITE.search(question)) and not _names(question)


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

    Only the previous turn's (standalone) question and its short answer are used
    as context: answers quote whole sentences whose words would pull retrieval off
    topic. A question that stands alone (:func:`is_followup`) is returned as is.
    """
    if not history or not is_followup(question):
        return question
    prev = history[-1]
    prev_q = prev.query or prev.question
    have = {w.lower() for w in _WORD.findall(question)}
    # The previous short answer is what "there", "then" or "he" most often points at
    # ("Where will they meet?" -> "Budapest"; "Why there?").
    # Only a name: a figure ("one", "28") is no referent.
    named = prev.short_answer and prev.short_answer[:1].isupper() and not re.search(r"\d", prev.short_answer)
    lead = keywords(" " + prev.short_answer) if named else []
    carried = [w for w in dict.fromkeys(lead + keywords(prev_q)) if w.lower() not in have][:MAX_CARRIED]
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
