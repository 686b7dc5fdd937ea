"""Search parameters for one call, frozen, handed to every scoring step."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

from ..errors import RagError
from ..settings import Settings

Mode = Literal["hybrid", "dense", "bm25"]
MODES = ("hybrid", "dense", "bm25")


@dataclass(frozen=True)
class SearchParams:
    """How one search ranks. Built from :class:`Settings` (``from_settings``), so a
    per-session or per-request setting reaches the sentence scoring and the fusion,
    not only the answerer. See ``Settings`` for what each field means."""

    top_k: int = 10
    retrieval_mode: Mode = "hybrid"
    rrf_k: int = 20
    dense_weight: float = 0.0
    bm25_weight: float = 1.0
    sentence_weight: float = 1.0
    candidates: int = 100
    lexical_weight: float = 1.0
    clause_coverage: bool = True
    answer_type_weight: float = 0.3
    sentence_candidates: int = 100
    metadata_subqueries: bool = True
    subquery_weight: float = 2.0
    article_diversity: float = 0.9
    time_aware: bool = True
    mmr: bool = False
    mmr_lambda: float = 0.7

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> "SearchParams":
        values = {f.name: getattr(settings, f.name) for f in fields(cls)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def __post_init__(self) -> None:
        if self.retrieval_mode not in MODES:
            raise RagError(f"Unknown retrieval mode {self.retrieval_mode!r}: use one of {', '.join(MODES)}.")
        if self.top_k < 1:
            raise RagError(f"The number of passages must be at least 1 (got {self.top_k}).")

    def but(self, **changes) -> "SearchParams":
        """A copy with some fields changed (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})
