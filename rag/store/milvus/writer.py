"""Writing to the Milvus store: ordered writes with a commit marker per article.

An ingest first reserves article rows in the index record (``pending_rows``), then
writes, batch by batch, the articles' sentence units, passages and extra text
parts, and only then their part-0 rows: the commit markers. Readers return an
article only when they have read its marker, so a crash (kill -9) at any moment
leaves every article whole or invisible; the next writer deletes the rows of the
reserved range that have no marker. A delete removes the markers first (the
articles vanish at once), then the other rows; a crash in between is finished by
the next writer (``deleting_rows``). Keys are deterministic (article row and
ordinal), so every write is an upsert and a retry overwrites what it repeats.

One writer at a time per index, as with the local store's lock: Milvus has no
cross-client lock, so two concurrent `rag ingest` into the same prefix are not
supported (Milvus Lite also requires writes to one collection to be serialised).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Sequence

import numpy as np

from ...errors import RagError
from ...settings import Settings
from ...text.dates import parse_day
from ...text.terms import bm25_token_lists
from ...text.units import unit_runs
from ...types import Article
from .. import steps
from ..manifest import Manifest
from .collections import (
    BATCH,
    INFO_ROW,
    IndexRecord,
    MilvusIndex,
    article_from_json,
    article_meta_json,
    key,
    text_parts,
)

log = logging.getLogger(__name__)
ARTICLES_PER_BATCH = 64


def _day(article: Article) -> int:
    d = parse_day(article.published_at)
    return d.toordinal() if d else -1


class MilvusWriter:
    """Adds and deletes articles in one Milvus index (see the module notes)."""

    def __init__(self, settings: Settings):
        self.index = MilvusIndex(settings)
        self.record = self.index.read_record()
        self._ids: dict[str, int] | None = None
        self.wrote = False  # articles added in this session (then seal() flushes them)

    @property
    def manifest(self) -> Manifest | None:
        if self.record is None:
            return None
        return self.record.manifest(0, 0, 0)

    def where(self) -> str:
        return self.index.where()

    def check_model(self, embedding_model: str | None) -> None:
        if self.record is not None:
            self.index.check_model(self.record, embedding_model)

    def live_ids(self) -> dict[str, int]:
        """Article id -> row of every committed article."""
        if self._ids is None:
            if self.record is None:
                self._ids = {}
            else:
                rows = self.index.query_all(self.index.articles, f"part == 0 and article_row > {INFO_ROW}",
                                            ["article_row", "article_id"])
                self._ids = {r["article_id"]: int(r["article_row"]) for r in rows}
        return self._ids

    def __contains__(self, article_id: str) -> bool:
        return article_id in self.live_ids()

    def close(self) -> None:
        self.index.close()

    # -- leftovers ---------------------------------------------------------------
    def finish_pending(self) -> None:
        """Clean up after a writer that crashed: uncommitted rows, half-done deletes."""
        rec = self.record
        if rec is None or (rec.pending_rows is None and not rec.deleting_rows):
            return
        ix = self.index
        if rec.deleting_rows:
            self._delete_rows(list(rec.deleting_rows))
        if rec.pending_rows is not None:
            lo, hi = rec.pending_rows
            committed = {int(r["article_row"]) for r in ix.query_all(
                ix.articles, f"part == 0 and article_row >= {lo} and article_row < {hi}", ["article_row"])}
            dead = [r for r in range(lo, hi) if r not in committed]
            if dead:
                log.info("removing rows of %d articles a crashed ingest left uncommitted in %s", len(dead), ix.where())
                self._delete_rows(dead, markers=False)
        self.record = replace(rec, pending_rows=None, deleting_rows=(), generation=rec.generation + 1)
        ix.write_record(self.record)

    def _delete_rows(self, rows: list[int], *, markers: bool = True) -> None:
        ix = self.index
        for i in range(0, len(rows), BATCH):
            chunk = ",".join(str(int(r)) for r in rows[i : i + BATCH])
            if markers:
                ix.call("delete", ix.client.delete, ix.articles, filter=f"part == 0 and article_row in [{chunk}]")
                steps.reached("milvus-markers-deleted")
            for name in (ix.articles, ix.passages, ix.units):
                ix.call("delete", ix.client.delete, name, filter=f"article_row in [{chunk}]")

    # -- writes ------------------------------------------------------------------------
    def add(self, spec_record: IndexRecord, items: Sequence, vectors: np.ndarray, unit_vectors: np.ndarray,
            index_texts: list[str]) -> None:
        """Write ``items`` (NewArticle: article, units, passages); vectors follow their passages and units."""
        ix = self.index
        if self.record is None:
            ix.create(spec_record)
            self.record = spec_record
        self.finish_pending()
        rec = self.record
        lo = rec.next_row
        hi = lo + len(items)
        self.record = rec = replace(rec, next_row=hi, pending_rows=(lo, hi))
        ix.write_record(rec)
        steps.reached("milvus-reserved")
        vectors = np.asarray(vectors, dtype=np.float32)
        # Stored as the local store keeps them (float16), widened back: Milvus Lite has
        # no FLOAT16_VECTOR, and the same values give the same sentence scores.
        unit_vectors = np.asarray(unit_vectors, dtype=np.float16).astype(np.float32)
        tokens = bm25_token_lists(index_texts)
        p_at = u_at = 0
        batch: list[tuple] = []
        for i, item in enumerate(items):
            n_p, n_u = len(item.passages), len(item.units)
            batch.append((lo + i, item, p_at, u_at))
            p_at += n_p
            u_at += n_u
            if len(batch) >= ARTICLES_PER_BATCH or i == len(items) - 1:
                self._write_batch(batch, vectors, unit_vectors, tokens)
                batch = []
        self.record = rec = replace(rec, pending_rows=None, generation=rec.generation + 1)
        ix.write_record(rec)
        if self._ids is not None:
            self._ids.update({item.article.article_id: lo + i for i, item in enumerate(items)})
        steps.reached("milvus-committed")
        self.wrote = True

    def seal(self) -> None:
        """After a run of writes (an ingest, a migration): ask the server to seal what
        they left in growing segments, so its indexes (HNSW, BM25) are built over them.
        Until then a server searches them by brute force: on Milvus Lite, the migrated
        MultiHop-RAG index answered a question in ~50 s unsealed and ~5 s sealed."""
        if not self.wrote:  # (nothing written: no collection to flush, or nothing new in them)
            return
        ix = self.index
        for name in (ix.passages, ix.units, ix.articles):
            ix.call("flush", ix.client.flush, name)

    def _write_batch(self, batch, vectors, unit_vectors, tokens) -> None:
        ix = self.index
        units, passages, parts, markers = [], [], [], []
        for row, item, p0, u0 in batch:
            a: Article = item.article
            source, day = (a.source or "").lower(), _day(a)
            for j, u in enumerate(item.units):
                units.append({"key": key(row, j), "article_row": row, "start": int(u.start), "end": int(u.end),
                              "vector": unit_vectors[u0 + j].tolist()})
            for j, (p, (lo_u, hi_u)) in enumerate(zip(item.passages, unit_runs(item.units, item.passages))):
                passages.append({
                    "key": key(row, j), "article_row": row, "article_id": a.article_id, "source": source, "day": day,
                    "start": int(p.start), "end": int(p.end), "unit_lo": lo_u, "unit_hi": hi_u,
                    "bm25_text": " ".join(tokens[p0 + j]), "vector": vectors[p0 + j].tolist(),
                })
            mean = vectors[p0 : p0 + len(item.passages)].mean(axis=0)
            mean = (mean / (np.linalg.norm(mean) or 1.0)).tolist()
            base = {"article_row": row, "article_id": a.article_id, "source": source, "day": day,
                    "n_passages": len(item.passages), "n_units": len(item.units), "vector": mean}
            texts = text_parts(a.text)
            for k, t in enumerate(texts):
                r = {**base, "key": key(row, k), "part": k, "text": t,
                     "meta": {**article_meta_json(a), "text_parts": len(texts)} if k == 0 else {}}
                (markers if k == 0 else parts).append(r)
        for name, rows, step in ((ix.units, units, "milvus-units-written"), (ix.passages, passages, "milvus-passages-written"),
                                 (ix.articles, parts, None), (ix.articles, markers, "milvus-markers-written")):
            for i in range(0, len(rows), BATCH):
                ix.call("upsert", ix.client.upsert, name, rows[i : i + BATCH])
            if step:
                steps.reached(step)

    def delete(self, article_ids: list[str]) -> list[Article]:
        """Remove articles by id; returns them, text included. Unknown ids: an error, nothing removed."""
        ids = self.live_ids()
        missing = [a for a in article_ids if a not in ids]
        if missing:
            raise RagError(f"No article with id {', '.join(missing)} in {self.where()} (see `rag articles`).")
        rows = [ids[a] for a in dict.fromkeys(article_ids)]
        removed = [self.read_article(r) for r in rows]
        self.finish_pending()
        self.record = rec = replace(self.record, deleting_rows=tuple(rows))
        self.index.write_record(rec)
        self._delete_rows(rows)
        self.record = rec = replace(rec, deleting_rows=(), generation=rec.generation + 1)
        self.index.write_record(rec)
        for a in article_ids:
            ids.pop(a, None)
        steps.reached("milvus-committed")
        return removed

    def articles(self) -> list[Article]:
        """Metadata of every committed article (text left empty)."""
        if self.record is None:
            return []
        ix = self.index
        rows = ix.query_all(ix.articles, f"part == 0 and article_row > {INFO_ROW}", ["meta"])
        return [article_from_json(r["meta"], "") for r in rows]

    def read_article(self, row: int) -> Article:
        ix = self.index
        got = ix.query_all(ix.articles, f"article_row == {int(row)}", ["part", "meta", "text"])
        got.sort(key=lambda r: r["part"])
        return article_from_json(got[0]["meta"], "".join(r["text"] for r in got))
