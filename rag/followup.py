"""Turning a follow-up question into a standalone query, without a language model.

"When will they meet?" after "Who will Trump meet in Budapest?" cannot be
retrieved on its own: the pronoun carries the topic. The deterministic rewrite
appends the previous turn's key words (names first) to the question. With an
LLM configured, ``rag.llm.rewrite_followup`` is used instead.
"""

from __future__ import annotations

import re

from .models import Turn
from .retrieval import _stopwords

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
    content = [w for w in words if w not in _stopwords() and w not in _QUESTION_WORDS]
    return bool(_ANAPHORA.search(question)) or len(content) <= 1 or bool(_CONTINUATION.match(question) and len(content) <= 2)


def keywords(text: str) -> list[str]:
    """Content words of a text, names (capitalised, not sentence-initial) first."""
    names, others = [], []
    for i, m in enumerate(_WORD.finditer(text)):
        w = m.group(0).strip("'’")
        low = w.lower()
        if low in _stopwords() or low in _QUESTION_WORDS or len(w) < 3:
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
