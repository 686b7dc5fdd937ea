"""A conversation sent by a client, as the chain's history (:class:`rag.types.Turn`).

The server keeps no conversation: each request brings its own, so any number of
clients talk at once without seeing each other, and a follow-up resolves against
the history that came with it.
"""

from __future__ import annotations

from typing import Sequence

from rag.types import Turn

from .models import HistoryTurn, Message
from .problems import Problem

# Roles that carry the conversation; system/developer prompts and tool output do not
# steer retrieval (the answer always comes from the articles).
CONVERSATION_ROLES = ("user", "assistant")


def message_text(message: Message) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(part.text for part in content if part.type in ("text", "input_text") and part.text)


def turns_from_messages(messages: Sequence[Message]) -> list[Turn]:
    """Pair each user message with the assistant reply after it (an unanswered one keeps an empty answer)."""
    turns: list[Turn] = []
    pending: str | None = None
    for m in messages:
        if m.role not in CONVERSATION_ROLES:
            continue
        text = message_text(m).strip()
        if m.role == "user":
            if pending is not None:
                turns.append(Turn(pending, ""))
            pending = text
        elif pending is not None:
            turns.append(Turn(pending, text))
            pending = None
    if pending is not None:
        turns.append(Turn(pending, ""))
    return turns


def history(items: Sequence[HistoryTurn] | Sequence[Message]) -> list[Turn]:
    """The ``history`` of an ask request, given as turns or as chat messages."""
    if items and isinstance(items[0], Message):
        return turns_from_messages(items)  # type: ignore[arg-type]
    return [Turn(t.question, t.answer) for t in items]  # type: ignore[union-attr]


def split_chat(messages: Sequence[Message]) -> tuple[list[Turn], str]:
    """An OpenAI chat: the history before the last message, and the question (the last user message)."""
    said = [m for m in messages if m.role in CONVERSATION_ROLES]
    if not said or said[-1].role != "user":
        raise Problem(400, "The last message must be the user's question (role \"user\").", code="no_question")
    question = message_text(said[-1]).strip()
    return turns_from_messages(said[:-1]), question
