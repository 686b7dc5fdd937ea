"""How an answer says the articles do not hold what was asked."""

from __future__ import annotations

# The LLM prompt asks replies to start with this, and the check below looks for it.
ABSTENTION = "The articles don't say"
# What the extractive answerer writes when it abstains.
ABSTAIN_TEXT = f"{ABSTENTION} — nothing in them answers this question."


def is_abstention(text: str) -> bool:
    start = text.strip().lstrip("\"'*_ ").replace("\u2019", "'").lower()
    return start.startswith(ABSTENTION.lower()) or start.startswith("the articles do not say")
