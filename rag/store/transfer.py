"""`rag migrate`: copy an index from one store to the other without re-embedding.

Articles, passages, sentence units and their vectors are read from the source
snapshot and written through the target's writer in batches, exactly as an ingest
writes them (the target builds its own BM25 statistics from the same passage
texts). Articles the target already holds are skipped, so an interrupted migration
is resumed by running it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from ..errors import RagError
from ..settings import Settings
from ..text.headers import index_text
from .writer import IndexSpec, NewArticle
from .writes import describe, index_writer, open_store

log = logging.getLogger(__name__)
BATCH_ARTICLES = 128


@dataclass(frozen=True)
class Span:
    """A start/end pair (what NewArticle's units and passages hold; the store cannot import ingest's)."""

    start: int
    end: int


@dataclass(frozen=True)
class MigrateReport:
    copied: int
    skipped: int
    passages: int
    source: str
    target: str

    def summary(self) -> str:
        return (f"{self.copied} articles ({self.passages} passages) copied from {self.source} to {self.target}, "
                f"{self.skipped} already there.")


def migrate(settings: Settings, to: str, *, show_progress: bool = True,
            progress: Callable[[int, int], None] | None = None) -> MigrateReport:
    """Copy the index of the other store into the store ``to`` ("milvus" or "local")."""
    if to not in ("milvus", "local"):
        raise RagError(f"Unknown store {to!r}: migrate --to milvus or --to local.")
    src_settings = settings.model_copy(update={"store": "local" if to == "milvus" else "milvus"})
    dst_settings = settings.model_copy(update={"store": to})
    src = open_store(src_settings)
    m = src.manifest
    spec = IndexSpec(m.embedding_model, m.embedding_backend, m.dim, m.chunk_max_tokens, m.chunk_overlap_tokens,
                     m.index_setting)
    copied = skipped = n_passages = 0
    with index_writer(dst_settings) as writer:
        writer.check_model(m.embedding_model)
        rows = [row for row, a in src.meta_by_row.items() if a.article_id not in writer]
        skipped = len(src.meta_by_row) - len(rows)
        with tqdm(total=len(rows), desc="Migrating", unit="article", disable=not show_progress) as bar:
            for i in range(0, len(rows), BATCH_ARTICLES):
                batch = rows[i : i + BATCH_ARTICLES]
                items, pids, units, texts = _read(src, batch)
                writer.add(spec, items, src.passage_vectors(pids), src.unit_vectors_f32(units), texts)
                copied += len(items)
                n_passages += len(pids)
                bar.update(len(batch))
                if progress:
                    progress(copied, len(rows))
    src.close()
    return MigrateReport(copied, skipped, n_passages, describe(src_settings), describe(dst_settings))


def _read(src, rows: list[int]):
    """The articles of ``rows`` as an ingest would write them: items, passage ids, unit ids, index texts."""
    prefetch = getattr(src, "prefetch", None)  # a server store fetches the articles' rows first
    if prefetch is not None:
        prefetch(rows)
    passages, units = src.passages, src.units
    wanted = np.isin(passages["article_row"], rows)
    items, pids, unit_ids, texts = [], [], [], []
    by_row: dict[int, list[int]] = {}
    for pid in np.flatnonzero(wanted).tolist():
        by_row.setdefault(int(passages[pid]["article_row"]), []).append(pid)
    units_of: dict[int, list[int]] = {}
    for u in np.flatnonzero(np.isin(units["article_row"], rows)).tolist():
        units_of.setdefault(int(units[u]["article_row"]), []).append(u)
    for row in rows:
        ps = by_row.get(row)
        if not ps:
            continue
        article = src.article(src.meta_by_row[row].article_id)
        us = units_of[row]  # in text order (the protocol keeps an article's units consecutive)
        items.append(NewArticle(article, [Span(int(units[u]["start"]), int(units[u]["end"])) for u in us],
                                [Span(int(passages[p]["start"]), int(passages[p]["end"])) for p in ps]))
        pids.extend(ps)
        unit_ids.extend(us)
        texts.extend(index_text(article, article.text[int(passages[p]["start"]) : int(passages[p]["end"])]) for p in ps)
    return items, pids, unit_ids, texts
