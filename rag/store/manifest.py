"""The manifest: which segments make up the index, what it was built with, and whether it can be read.

One manifest file per commit (``manifest-000012.json``); ``CURRENT`` names the live
one (see :mod:`.layout`). It lists the live segments in order, each with its counts,
its tombstones (article rows deleted since it was written) and the size and SHA-256
of each of its files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..errors import IndexLoadError
from ..settings import Settings
from .faiss_index import choose_index_type

# 1: one folder per generation, rewritten whole by every write (gen-N/, read only
#    to migrate it); 2: segments listed by a manifest.
FORMAT_VERSION = 2
LEGACY_FORMAT = 1


@dataclass(frozen=True)
class SegmentInfo:
    """One segment as the manifest lists it (the folder itself never changes)."""

    name: str  # seg-000004
    n_articles: int  # as written
    n_passages: int
    n_units: int
    index_type: str  # the FAISS index kind of this segment (flat, hnsw, ivf)
    # Article rows deleted since the segment was written: tombstones, dropped by the
    # next merge that rewrites the segment.
    deleted: tuple[int, ...] = ()
    deleted_passages: int = 0
    # relative path -> {"size", "sha256"} (see rag.store.checksums)
    files: dict = field(default_factory=dict)

    @property
    def live_articles(self) -> int:
        return self.n_articles - len(self.deleted)

    @property
    def live_passages(self) -> int:
        return self.n_passages - self.deleted_passages

    @property
    def deleted_fraction(self) -> float:
        return self.deleted_passages / self.n_passages if self.n_passages else 0.0

    def key(self) -> tuple:
        """What identifies the segment's content (a folder name can be reused after a crash)."""
        digest = self.files.get("passages.npy", {}).get("sha256", "")
        return (self.name, self.n_passages, digest)


@dataclass(frozen=True)
class Manifest:
    format_version: int
    embedding_model: str
    dim: int
    chunk_max_tokens: int
    chunk_overlap_tokens: int
    # The FAISS index kind a build of the whole index would use ("auto" resolved by
    # its size); each segment records its own (small ones are exact).
    index_type: str
    generation: int
    created_at: float
    embedding_backend: str = "torch"
    index_setting: str = "auto"  # RAG_INDEX_TYPE the index was built with
    next_row: int = 1  # article rows are unique across segments and never reused
    segments: tuple[SegmentInfo, ...] = ()
    store: str = "local"  # "milvus": a description of a Milvus index (one pseudo-segment)

    @property
    def n_articles(self) -> int:
        return sum(s.live_articles for s in self.segments)

    @property
    def n_passages(self) -> int:
        return sum(s.live_passages for s in self.segments)

    def with_segments(self, segments, **changes) -> "Manifest":
        segments = tuple(segments)
        total = sum(s.live_passages for s in segments)
        return replace(self, segments=segments, index_type=choose_index_type(self.index_setting, total), **changes)

    def to_json(self) -> str:
        data = asdict(self)
        data["segments"] = [asdict(s) for s in self.segments]
        return json.dumps(data, indent=1)

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if data.get("format_version") != FORMAT_VERSION:
                raise IndexLoadError(_format_message(path.parent, data.get("format_version")))
            segments = tuple(
                SegmentInfo(**{**s, "deleted": tuple(s.get("deleted", ()))}) for s in data.pop("segments", [])
            )
            return cls(**data, segments=segments)
        except (OSError, ValueError, TypeError) as exc:
            raise IndexLoadError(
                f"The index manifest {path} is unreadable ({exc}). The index is corrupted: run "
                f"`rag check --index {path.parent}`, or delete {path.parent} and ingest again."
            ) from exc


def _format_message(root: Path, version) -> str:
    return (
        f"The index at {root} has format version {version}; this version of article-rag reads "
        f"version {FORMAT_VERSION} (and migrates version {LEGACY_FORMAT}). Delete the folder and "
        "ingest your articles again."
    )


def check_compatible(manifest: Manifest, root: Path, embedding_model: str | None) -> None:
    if manifest.format_version != FORMAT_VERSION:
        raise IndexLoadError(_format_message(root, manifest.format_version))
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
    built_type = manifest.index_type
    if manifest.store != "local":  # the server picks its own index: compare the setting
        built_type, wanted_type = manifest.index_setting, settings.index_type
    pairs = {
        "embedding_model": (manifest.embedding_model, settings.embedding_model),
        "embedding_backend": (manifest.embedding_backend, settings.embedding_backend),
        "chunk_max_tokens": (manifest.chunk_max_tokens, settings.chunk_max_tokens),
        "chunk_overlap_tokens": (manifest.chunk_overlap_tokens, settings.chunk_overlap_tokens),
        "index_type": (built_type, wanted_type),
    }
    return [f"{k}: index {a!r}, settings {b!r}" for k, (a, b) in pairs.items() if a != b]
