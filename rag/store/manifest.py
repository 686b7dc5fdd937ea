"""The manifest of an index generation: what it was built with, and whether it can be read."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import IndexLoadError
from ..settings import Settings
from .faiss_index import choose_index_type

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Manifest:
    format_version: int
    embedding_model: str
    dim: int
    chunk_max_tokens: int
    chunk_overlap_tokens: int
    index_type: str
    n_articles: int
    n_passages: int
    generation: int
    created_at: float
    embedding_backend: str = "torch"
    # relative path -> {"size", "sha256"} of every file of the generation but this
    # one, recorded at commit (see rag.store.checksums); empty in older generations.
    files: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise IndexLoadError(
                f"The index manifest {path} is unreadable ({exc}). The index is corrupted: "
                f"delete {path.parent.parent} and ingest again."
            ) from exc


def check_compatible(manifest: Manifest, root: Path, embedding_model: str | None) -> None:
    if manifest.format_version != FORMAT_VERSION:
        raise IndexLoadError(
            f"The index at {root} has format version {manifest.format_version}; this version "
            f"of article-rag reads version {FORMAT_VERSION}. Delete the folder and ingest "
            "your articles again."
        )
    if embedding_model is not None and manifest.embedding_model != embedding_model:
        raise IndexLoadError(
            f"The index at {root} was built with the embedding model "
            f"{manifest.embedding_model!r}, but the settings ask for {embedding_model!r}. "
            f"Set RAG_EMBEDDING_MODEL={manifest.embedding_model} or use a new --index folder."
        )


def settings_mismatch(manifest: Manifest, settings: Settings) -> list[str]:
    """How an index differs from what ``settings`` would build (empty: it is the same).

    The embedding model and backend (vectors), the chunking (passages) and the
    vector index type ("auto" resolved by the index's size).
    """
    wanted_type = choose_index_type(settings.index_type, manifest.n_passages)
    pairs = {
        "embedding_model": (manifest.embedding_model, settings.embedding_model),
        "embedding_backend": (manifest.embedding_backend, settings.embedding_backend),
        "chunk_max_tokens": (manifest.chunk_max_tokens, settings.chunk_max_tokens),
        "chunk_overlap_tokens": (manifest.chunk_overlap_tokens, settings.chunk_overlap_tokens),
        "index_type": (manifest.index_type, wanted_type),
    }
    return [f"{k}: index {a!r}, settings {b!r}" for k, (a, b) in pairs.items() if a != b]
