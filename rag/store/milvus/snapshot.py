"""Reading the Milvus store: one :class:`~rag.store.protocol.Store` per snapshot.

A snapshot reads the index record and the commit markers of every article once
(metadata only: what the local store also keeps in memory), and from then on
returns only those articles: a write in progress (rows without a marker) or an
article added later is never seen. Passages and sentence units get dense ids as
searches first return them: the first time a search hits an article, its passages
(offsets, unit ranges, vectors), sentence units (offsets, vectors) and text are
fetched in three requests and appended to the snapshot's tables, so the sentence
scoring, the answerer and the citations run exactly as on the local store. The
units of an article get consecutive ids in text order, as the protocol promises.

Candidates come from the server: dense search (HNSW) and BM25 full-text search on
the passages collection, each with the scope (filters, a publisher or day the
question names) as a Milvus boolean expression. BM25 IDF for the sentence scoring
is asked per question word (``text_match`` counts, cached per snapshot).

A delete seen by an open snapshot: its articles drop out of new search results (the
server no longer returns them); articles already fetched stay readable from the
snapshot's tables until it is dropped.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import asdict

import numpy as np

from ...errors import IndexLoadError, RagError
from ...settings import Settings
from ...types import Article, Passage
from ..protocol import Scope
from ..segment import PASSAGE_DTYPE, UNIT_DTYPE
from .collections import INFO_ROW, IndexRecord, MilvusIndex, article_from_json

log = logging.getLogger(__name__)
# Rows fetched per request when registering articles (an `in` list of article rows).
FETCH_ROWS = 64


def open_milvus(settings: Settings, *, embedding_model: str | None = None) -> "MilvusSnapshot":
    index = MilvusIndex.shared(settings)
    record = index.read_record()
    if record is None:
        raise IndexLoadError(
            f"No index in {index.where()}. Build one with `RAG_STORE=milvus rag ingest PATH...` "
            "or `rag migrate --to milvus`."
        )
    index.check_model(record, embedding_model)
    return MilvusSnapshot(index, record, cache_passages=settings.milvus_cache_passages)


def scope_expr(scope: Scope | None, row_by_id) -> str | None:
    """A Scope as a Milvus boolean expression on the passages collection (None: everything)."""
    if scope is None or scope.is_empty():
        return None
    parts = []
    if scope.article_ids:
        rows = sorted(row_by_id[a] for a in scope.article_ids if a in row_by_id)
        parts.append(f"article_row in [{','.join(map(str, rows))}]" if rows else "article_row < 0")
    if scope.sources:
        parts.append("source in [" + ",".join(_quote(s) for s in sorted(scope.sources)) + "]")
    if scope.day_from is not None:
        parts.append(f"day >= {int(scope.day_from)}")
    if scope.day_to is not None:
        parts.append(f"day >= 0 and day <= {int(scope.day_to)}")
    return " and ".join(f"({p})" for p in parts)


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class MilvusCandidates:
    """Dense and BM25 candidates of one question, one server request per call."""

    def __init__(self, snap: "MilvusSnapshot", qvec: np.ndarray | None, tokens: list[str] | None):
        self._snap = snap
        self._qvec = qvec
        self._text = " ".join(tokens) if tokens else None

    def dense(self, depth: int, scope: Scope | None) -> tuple[list[int], list[float]]:
        if self._qvec is None:
            return [], []
        return self._snap.search("vector", self._qvec.astype(np.float32).tolist(), depth, scope)

    def bm25(self, depth: int, scope: Scope | None) -> tuple[list[int], list[float]]:
        if not self._text:
            return [], []
        return self._snap.search("sparse", self._text, depth, scope)


class MilvusSnapshot:
    """The committed articles of a Milvus index as one Store (see the module notes)."""

    def __init__(self, index: MilvusIndex, record: IndexRecord, *, cache_passages: int = 50_000):
        self.index = index
        self.cache_passages = cache_passages
        self.record = record
        self._below = record.next_row  # rows reserved later are never this snapshot's
        self.meta_by_row: dict[int, Article] = {}
        self.row_by_id: dict[str, int] = {}
        self._n_passages: dict[int, int] = {}
        n_units = 0
        for m in sorted(index.markers(self._below), key=lambda r: r["article_row"]):
            row = int(m["article_row"])
            self.meta_by_row[row] = article_from_json(m["meta"])
            self.row_by_id[self.meta_by_row[row].article_id] = row
            self._n_passages[row] = int(m["n_passages"])
            n_units += int(m["n_units"])
        self._total = sum(self._n_passages.values())
        self.manifest = record.manifest(len(self.meta_by_row), self._total, n_units)
        metas = self.meta_by_row
        self._source = {r: (a.source or "").lower() for r, a in metas.items()}
        from ...text.dates import parse_day

        self._day = {r: (d.toordinal() if (d := parse_day(a.published_at)) else -1) for r, a in metas.items()}
        # Tables of what searches have brought in so far (grown under the lock,
        # replaced whole, so a reader holding the old array still sees valid rows).
        self._lock = threading.Lock()
        self.passages = np.zeros(0, PASSAGE_DTYPE)
        self.units = np.zeros(0, UNIT_DTYPE)
        self._pvec = np.zeros((0, record.dim), np.float32)
        self._uvec = np.zeros((0, record.dim), np.float32)
        self._pid: dict[int, int] = {}  # Milvus passage key -> passage id
        self._text: dict[int, str] = {}
        self._idf: dict[str, float | None] = {}

    # -- articles ------------------------------------------------------------------
    def __len__(self) -> int:
        return self._total

    def articles(self) -> list[Article]:
        return list(self.meta_by_row.values())

    def passage_counts(self) -> dict[str, int]:
        return {self.meta_by_row[r].article_id: n for r, n in self._n_passages.items()}

    def sources(self) -> list[str]:
        return [s for s in self._source.values() if s]

    def article_text(self, row: int) -> str:
        row = int(row)
        text = self._text.get(row)
        if text is None:
            if row not in self.meta_by_row:
                raise KeyError(row)
            self._register([row])
            text = self._text.get(row)
            if text is None:
                raise RagError(f"Article row {row} was removed from {self.index.where()} meanwhile; ask again.")
        return text

    def article(self, article_id: str) -> Article:
        row = self.row_by_id.get(article_id)
        if row is None:
            raise RagError(f"No article with id {article_id!r} in the index (see `rag articles`).")
        return Article(**{**asdict(self.meta_by_row[row]), "text": self.article_text(row)})

    # -- passages and units ----------------------------------------------------------
    def passage(self, pid: int) -> Passage:
        rec = self.passages[pid]
        row, start, end = int(rec["article_row"]), int(rec["start"]), int(rec["end"])
        return Passage(int(pid), self.meta_by_row[row].article_id, start, end, self.article_text(row)[start:end])

    def passage_meta(self, pid: int) -> Article:
        return self.meta_by_row[int(self.passages[pid]["article_row"])]

    def passage_units(self, pid: int) -> range:
        rec = self.passages[pid]
        return range(int(rec["unit_lo"]), int(rec["unit_hi"]))

    def unit_text(self, unit: int) -> str:
        u = self.units[unit]
        return self.article_text(int(u["article_row"]))[int(u["start"]) : int(u["end"])]

    def unit_vectors_f32(self, units) -> np.ndarray:
        return self._uvec[np.asarray(units, dtype=np.int64)]

    def passage_vectors(self, pids) -> np.ndarray:
        return self._pvec[np.asarray(pids, dtype=np.int64)]

    def prefetch(self, rows: list[int]) -> None:
        """Bring these articles' passages and units into the tables now (rag migrate reads them all)."""
        self._register(rows)

    def _register(self, rows: list[int]) -> None:
        """Fetch these articles' passages, units and text and give them ids (once per snapshot)."""
        with self._lock:
            todo = sorted({int(r) for r in rows} - self._text.keys())
            if not todo:
                return
            ix = self.index
            got_p, got_u, got_t = [], [], []
            for i in range(0, len(todo), FETCH_ROWS):
                expr = f"article_row in [{','.join(map(str, todo[i : i + FETCH_ROWS]))}]"
                fp = ix.pool.submit(ix.query_all, ix.passages, expr,
                                    ["key", "article_row", "start", "end", "unit_lo", "unit_hi", "vector"])
                fu = ix.pool.submit(ix.query_all, ix.units, expr, ["key", "article_row", "start", "end", "vector"])
                got_t.extend(ix.query_all(ix.articles, expr, ["article_row", "part", "text"]))
                got_p.extend(fp.result())
                got_u.extend(fu.result())
            by_row_p: dict[int, list] = {}
            by_row_u: dict[int, list] = {}
            by_row_t: dict[int, list] = {}
            for r in got_p:
                by_row_p.setdefault(int(r["article_row"]), []).append(r)
            for r in got_u:
                by_row_u.setdefault(int(r["article_row"]), []).append(r)
            for r in got_t:
                by_row_t.setdefault(int(r["article_row"]), []).append(r)
            p_rows, u_rows, p_vecs, u_vecs = [], [], [], []
            n_p, n_u = len(self.passages), len(self.units)
            for row in todo:
                ps = sorted(by_row_p.get(row, []), key=lambda r: r["key"])
                us = sorted(by_row_u.get(row, []), key=lambda r: r["key"])
                ts = sorted(by_row_t.get(row, []), key=lambda r: r["part"])
                # An article deleted meanwhile (rows partly gone): not registered, so
                # searches drop its passages instead of quoting half an article.
                if not ps or not us or not ts or ts[0]["part"] != 0 or len(ps) != self._n_passages.get(row):
                    continue
                self._text[row] = "".join(t["text"] for t in ts)
                base_u = n_u + len(u_rows)
                for u in us:
                    u_rows.append((row, int(u["start"]), int(u["end"])))
                    u_vecs.append(u["vector"])
                for p in ps:
                    self._pid[int(p["key"])] = n_p + len(p_rows)
                    p_rows.append((row, int(p["start"]), int(p["end"]), base_u + int(p["unit_lo"]), base_u + int(p["unit_hi"])))
                    p_vecs.append(p["vector"])
            if p_rows:
                dim = self.record.dim
                self._pvec = np.concatenate([self._pvec, np.asarray(p_vecs, np.float32).reshape(-1, dim)])
                self._uvec = np.concatenate([self._uvec, np.asarray(u_vecs, np.float32).reshape(-1, dim)])
                self.units = np.concatenate([self.units, np.array(u_rows, dtype=UNIT_DTYPE)])
                self.passages = np.concatenate([self.passages, np.array(p_rows, dtype=PASSAGE_DTYPE)])

    # -- candidate search -------------------------------------------------------------------
    def candidates(self, qvec: np.ndarray | None, tokens: list[str] | None) -> MilvusCandidates:
        return MilvusCandidates(self, qvec, tokens)

    def any_in(self, scope: Scope) -> bool:
        for row in self.meta_by_row:
            if scope.article_ids and self.meta_by_row[row].article_id not in scope.article_ids:
                continue
            if scope.sources and self._source[row] not in scope.sources:
                continue
            day = self._day[row]
            if scope.day_from is not None and day < scope.day_from:
                continue
            if scope.day_to is not None and not (0 <= day <= scope.day_to):
                continue
            return True
        return False

    def search(self, field: str, data, depth: int, scope: Scope | None) -> tuple[list[int], list[float]]:
        """Top ``depth`` passages of one server search (dense or BM25) within the scope, as ids."""
        if depth <= 0:
            return [], []
        expr = f"article_row < {self._below}"
        scoped = scope_expr(scope, self.row_by_id)
        if scoped:
            expr = f"{expr} and {scoped}"
        limit = depth
        while True:
            params = {"metric_type": "IP", "params": {"ef": max(2 * limit, 200)}} if field == "vector" else {}
            hits = self.index.call(
                "search", self.index.client.search, self.index.passages, data=[data], anns_field=field,
                limit=limit, filter=expr, output_fields=["article_row"], search_params=params,
                consistency_level="Strong",
            )[0]
            # Rows without this snapshot's marker (a write in progress, or leftovers of
            # a crash not cleaned up yet) are never returned.
            live = [h for h in hits if int(h["entity"]["article_row"]) in self.meta_by_row]
            if len(live) >= depth or len(hits) < limit or limit >= 16_384:
                break
            limit = min(16_384, limit * 2)
        self._register([int(h["entity"]["article_row"]) for h in live])
        ids, scores = [], []
        for h in live:
            pid = self._pid.get(int(h["key"]))
            if pid is not None and len(ids) < depth:
                ids.append(pid)
                # BM25 distances come back negated by some servers; the order is what counts.
                scores.append(abs(float(h["distance"])) if field == "sparse" else float(h["distance"]))
        return ids, scores

    # -- BM25 statistics for sentence scoring --------------------------------------------------
    def idf_of(self, terms: list[str]) -> dict[str, float]:
        """BM25 IDF (bm25s "lucene") of the terms some live passage holds: counted by the server."""
        todo = [t for t in dict.fromkeys(terms) if t not in self._idf]
        if todo:
            futures = {t: self.index.pool.submit(self._df, t) for t in todo}
            for t, f in futures.items():
                df = f.result()
                self._idf[t] = self._idf_from_df(df) if df else None
        return {t: v for t in terms if (v := self._idf.get(t)) is not None}

    def _df(self, term: str) -> int:
        if not term.isalnum() and not term.replace("_", "").isalnum():
            return 0
        rows = self.index.call(
            "query", self.index.client.query, self.index.passages,
            filter=f"article_row < {self._below} and text_match(bm25_text, {_quote(term)})",
            output_fields=["count(*)"], consistency_level="Strong",
        )
        return int(rows[0]["count(*)"]) if rows else 0

    def _idf_from_df(self, df: int) -> float:
        n = self._total
        # float32, as the local store computes it (rag.store.bm25): the same scores.
        return float(np.float32(math.log(1 + (n - df + 0.5) / (df + 0.5))))

    def outgrown(self) -> bool:
        return len(self.passages) > self.cache_passages

    def close(self) -> None:
        pass  # the connection and its fetch threads are the process's (MilvusIndex.shared)


__all__ = ["INFO_ROW", "MilvusCandidates", "MilvusSnapshot", "open_milvus", "scope_expr"]
