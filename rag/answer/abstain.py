"""How an answer says the articles do not hold what was asked, and when the extractive answerer does."""

from __future__ import annotations

import json
import logging
import math
from functools import lru_cache
from pathlib import Path

# The LLM prompt asks replies to start with this, and the check below looks for it.
ABSTENTION = "The articles don't say"
# What the extractive answerer writes when it abstains.
ABSTAIN_TEXT = f"{ABSTENTION} — nothing in them answers this question."


def is_abstention(text: str) -> bool:
    start = text.strip().lstrip("\"'*_ ").replace("\u2019", "'").lower()
    return start.startswith(ABSTENTION.lower()) or start.startswith("the articles do not say")


# -- when to abstain (extractive answerer) --------------------------------------------------
#
# A logistic model over a few evidence features decides; its weights live in
# abstain_weights.json beside this module, fitted by `python -m eval.calibrate` on
# several question sets at once (seeds, SQuAD dev with its absent questions,
# MultiHop-RAG dev with its null queries) and reported per set on held-out data.

log = logging.getLogger(__name__)
ABSTAIN_WEIGHTS = Path(__file__).with_name("abstain_weights.json")
EVIDENCE_FEATURES = (
    "bias", "dense", "coverage", "context_coverage", "penalty", "unknown_words", "names_found",
    "names_in_sentence", "multi", "sides_strength", "short_answer", "agreement", "article_coverage", "missing_rare",
)


@lru_cache(maxsize=1)
def evidence_weights() -> dict[str, float]:
    """The fitted weights; without the file, the hand-set rule calibrated on the seeds."""
    try:
        return {k: float(v) for k, v in json.loads(ABSTAIN_WEIGHTS.read_text(encoding="utf-8"))["weights"].items()}
    except (OSError, ValueError, KeyError):
        log.warning("no abstention weights at %s: using the seed-set rule", ABSTAIN_WEIGHTS)
        return {"bias": -0.95, "dense": 1.0, "coverage": 0.5, "context_coverage": 0.5, "penalty": -1.0}


def evidence_strength(features: dict[str, float], weights: dict[str, float] | None = None) -> float:
    """Log-odds that the articles answer the question; the answerer abstains below the threshold."""
    w = evidence_weights() if weights is None else weights
    z = sum(w.get(k, 0.0) * v for k, v in features.items())
    return max(-50.0, min(50.0, z)) if math.isfinite(z) else -50.0
