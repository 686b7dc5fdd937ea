"""The Milvus collections of an index, the connection, and the index record.

Three collections per index, named ``<prefix>articles``, ``<prefix>passages`` and
``<prefix>units``; every row carries its article row (``article_row``), a number
unique across the index and never reused, as in the local store.

* **articles**: one row per article and text part (Milvus VARCHAR holds at most
  65,535 bytes, so long texts are split into parts). Part 0 carries the metadata
  (every field of :class:`~rag.types.Article` as JSON, plus the scalar filter
  fields) and is the article's **commit marker**: it is written after all the
  article's other rows, and readers only ever return articles whose marker they
  read. Row 0 is the index record (:class:`IndexRecord`): the embedding model,
  chunking, the next article row, the generation and any write in progress.
* **passages**: per passage its offsets, the range of its sentence units, the
  filter fields (source, publication day, article id), the dense vector (HNSW) and
  the BM25 text: the passage's BM25 tokens as the local store makes them (stemmed,
  stopwords out), from which the server's BM25 function computes the sparse vector.
* **units**: the sentence units with their vectors, fetched per article when a
  search first returns one of its passages (never searched).

Milvus needs a vector field in every collection: an article's is the normalised
mean of its passage vectors (an article-level vector, unused by retrieval so far).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from ...errors import IndexLoadError, RagError
from ...settings import Settings
from ...types import Article
from ..manifest import FORMAT_VERSION, Manifest, SegmentInfo

log = logging.getLogger(__name__)
# pymilvus warns on every query iterator that a server does not report its MVCC
# timestamp (Milvus Lite); the client-side timestamp it falls back to is correct.
logging.getLogger("pymilvus").setLevel(logging.ERROR)
_shared: dict[tuple, "MilvusIndex"] = {}
_shared_lock = threading.Lock()

# Keys: article_row << ROW_SHIFT | ordinal (passage, unit or text part within the article).
ROW_SHIFT = 20
# Characters per text part: 15,000 characters are at most 60,000 UTF-8 bytes.
TEXT_PART_CHARS = 15_000
MAX_VARCHAR = 65_535
INFO_ROW = 0
# Rows per request: Milvus caps a query's result window (16,384) and a request's size.
BATCH = 1000
ARTICLE_FIELDS = {f.name for f in fields(Article)} - {"text"}


def key(row: int, ordinal: int) -> int:
    return (int(row) << ROW_SHIFT) | int(ordinal)


@dataclass(frozen=True)
class IndexRecord:
    """What the index was built with, and the state of writes (row 0 of the articles collection)."""

    embedding_model: str
    embedding_backend: str
    dim: int
    chunk_max_tokens: int
    chunk_overlap_tokens: int
    index_setting: str = "auto"
    format_version: int = FORMAT_VERSION
    generation: int = 0
    next_row: int = 1
    created_at: float = field(default_factory=time.time)
    # A write in progress: article rows [lo, hi) reserved by an ingest, or rows being
    # deleted. The next writer finishes (deletes) or cleans up (uncommitted rows) them.
    pending_rows: tuple[int, int] | None = None
    deleting_rows: tuple[int, ...] = ()

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "IndexRecord":
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        if data.get("pending_rows") is not None:
            data["pending_rows"] = tuple(data["pending_rows"])
        data["deleting_rows"] = tuple(data.get("deleting_rows") or ())
        return cls(**data)

    def manifest(self, n_articles: int, n_passages: int, n_units: int) -> Manifest:
        """The same description a local index's manifest gives (one pseudo-segment: the server)."""
        seg = SegmentInfo("milvus", n_articles, n_passages, n_units, "hnsw")
        return Manifest(
            format_version=self.format_version, embedding_model=self.embedding_model, dim=self.dim,
            chunk_max_tokens=self.chunk_max_tokens, chunk_overlap_tokens=self.chunk_overlap_tokens,
            index_type="flat" if self.index_setting == "flat" else "hnsw", generation=self.generation,
            created_at=self.created_at, embedding_backend=self.embedding_backend,
            index_setting=self.index_setting, next_row=self.next_row, segments=(seg,), store="milvus",
        )


def article_meta_json(article: Article) -> dict:
    """Every metadata field of the article (all but the text), whatever fields Article has."""
    return {k: v for k, v in asdict(article).items() if k != "text"}


def article_from_json(meta: dict, text: str = "") -> Article:
    """An Article from stored metadata; fields this version does not know are left out."""
    return Article(**{k: v for k, v in meta.items() if k in ARTICLE_FIELDS}, text=text)


def text_parts(text: str) -> list[str]:
    return [text[i : i + TEXT_PART_CHARS] for i in range(0, len(text), TEXT_PART_CHARS)] or [""]


def _milvus_message(exc: BaseException) -> str:
    msg = getattr(exc, "message", None) or str(exc)
    return " ".join(str(msg).split())[:300]


class MilvusIndex:
    """A connection to the collections of one index (``settings.milvus_prefix``)."""

    def __init__(self, settings: Settings):
        if not settings.milvus_uri:
            raise RagError("RAG_STORE=milvus needs RAG_MILVUS_URI (for example http://localhost:19530).")
        self.uri = settings.milvus_uri
        self.prefix = settings.milvus_prefix
        self.articles = f"{self.prefix}articles"
        self.passages = f"{self.prefix}passages"
        self.units = f"{self.prefix}units"
        self.settings = settings
        # Fetches and term counts run side by side on the one connection; the pool is
        # the connection's, so snapshots replaced on a long-running server leave no threads.
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="milvus")
        try:
            from pymilvus import MilvusClient
        except ImportError as exc:  # pragma: no cover - pymilvus is a dependency
            raise RagError(f"RAG_STORE=milvus needs the pymilvus package ({exc}).") from exc
        token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
        for attempt in (1, 2):
            try:
                self.client = MilvusClient(uri=self.uri, token=token, db_name=settings.milvus_database, timeout=30)
                break
            except Exception as exc:  # noqa: BLE001 - pymilvus raises several kinds; all mean "cannot connect"
                # gRPC shares one transport per server in a process; a server that closed
                # it (e.g. a grpc-python server tired of an idle client's keep-alive pings:
                # "Too many pings") fails the next connect once, and the retry dials anew.
                if attempt == 1:
                    log.info("connecting to Milvus at %s failed (%s); trying once more", self.uri, _milvus_message(exc))
                    time.sleep(1.0)
                    continue
                raise RagError(
                    f"Cannot connect to the Milvus server at {self.uri} ({_milvus_message(exc)}). "
                    "Start the server or fix RAG_MILVUS_URI / RAG_MILVUS_TOKEN / RAG_MILVUS_DATABASE."
                ) from exc

    @classmethod
    def shared(cls, settings: Settings) -> "MilvusIndex":
        """One connection per server, database, prefix and token in this process (snapshots share it)."""
        token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
        k = (settings.milvus_uri, settings.milvus_database, settings.milvus_prefix, token)
        with _shared_lock:
            got = _shared.get(k)
            if got is None:
                got = _shared[k] = cls(settings)
            return got

    def where(self) -> str:
        return f"Milvus {self.uri} (collections {self.prefix}*)"

    def call(self, what: str, fn, *args, **kwargs):
        """Run one client call; a server error becomes one line naming the server."""
        try:
            return fn(*args, **kwargs)
        except RagError:
            raise
        except Exception as exc:  # noqa: BLE001 - MilvusException, grpc errors: one clear line
            raise RagError(f"Milvus {what} failed at {self.uri}: {_milvus_message(exc)}") from exc

    def close(self) -> None:
        self.pool.shutdown(wait=False)
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing a dead connection is not an error
            pass

    # -- the collections ---------------------------------------------------------
    def exists(self) -> bool:
        return bool(self.call("list_collections", self.client.has_collection, self.articles))

    def create(self, record: IndexRecord) -> None:
        """Create the three collections and the index record (an empty index)."""
        from pymilvus import DataType, Function, FunctionType, MilvusClient

        dim = record.dim
        c = self.client
        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("key", DataType.INT64, is_primary=True)
        s.add_field("article_row", DataType.INT64)
        s.add_field("part", DataType.INT64)
        s.add_field("article_id", DataType.VARCHAR, max_length=MAX_VARCHAR)
        s.add_field("source", DataType.VARCHAR, max_length=MAX_VARCHAR)  # lower-cased, for filters
        s.add_field("day", DataType.INT64)  # publication day (date.toordinal()); -1: undated
        s.add_field("n_passages", DataType.INT64)
        s.add_field("n_units", DataType.INT64)
        s.add_field("meta", DataType.JSON)
        s.add_field("text", DataType.VARCHAR, max_length=MAX_VARCHAR)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        ip = c.prepare_index_params()
        ip.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
        self.call("create_collection", c.create_collection, self.articles, schema=s, index_params=ip,
                  consistency_level="Strong")

        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("key", DataType.INT64, is_primary=True)
        s.add_field("article_row", DataType.INT64)
        s.add_field("article_id", DataType.VARCHAR, max_length=MAX_VARCHAR)
        s.add_field("source", DataType.VARCHAR, max_length=MAX_VARCHAR)
        s.add_field("day", DataType.INT64)
        s.add_field("start", DataType.INT64)
        s.add_field("end", DataType.INT64)
        s.add_field("unit_lo", DataType.INT64)  # the article's units [unit_lo, unit_hi)
        s.add_field("unit_hi", DataType.INT64)
        s.add_field("bm25_text", DataType.VARCHAR, max_length=MAX_VARCHAR, enable_analyzer=True, enable_match=True)
        s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        s.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                input_field_names=["bm25_text"], output_field_names=["sparse"]))
        ip = c.prepare_index_params()
        if record.index_setting == "flat":
            ip.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
        else:
            ip.add_index(field_name="vector", index_type="HNSW", metric_type="IP", params={"M": 16, "efConstruction": 200})
        # bm25s's "lucene" defaults, as the local store scores.
        ip.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                     params={"bm25_k1": 1.5, "bm25_b": 0.75})
        for name in ("article_row", "source", "day"):
            ip.add_index(field_name=name, index_type="INVERTED")
        self.call("create_collection", c.create_collection, self.passages, schema=s, index_params=ip,
                  consistency_level="Strong")

        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("key", DataType.INT64, is_primary=True)
        s.add_field("article_row", DataType.INT64)
        s.add_field("start", DataType.INT64)
        s.add_field("end", DataType.INT64)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        ip = c.prepare_index_params()
        ip.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
        ip.add_index(field_name="article_row", index_type="INVERTED")
        self.call("create_collection", c.create_collection, self.units, schema=s, index_params=ip,
                  consistency_level="Strong")
        self.write_record(record)

    def drop(self) -> None:
        for name in (self.articles, self.passages, self.units):
            if self.call("has_collection", self.client.has_collection, name):
                self.call("drop_collection", self.client.drop_collection, name)

    def check_collections(self) -> None:
        """The three collections exist and look like ours (else one clear line)."""
        for name, wanted in ((self.articles, "meta"), (self.passages, "bm25_text"), (self.units, "start")):
            if not self.call("has_collection", self.client.has_collection, name):
                raise IndexLoadError(
                    f"{self.where()} is incomplete: collection {name} is missing. Migrate or ingest again "
                    f"into a new RAG_MILVUS_PREFIX, or drop the {self.prefix}* collections."
                )
            got = {f["name"] for f in self.call("describe_collection", self.client.describe_collection, name)["fields"]}
            if wanted not in got or "article_row" not in got:
                raise IndexLoadError(
                    f"Collection {name} at {self.uri} was not made by article-rag (fields: {', '.join(sorted(got))}). "
                    "Set RAG_MILVUS_PREFIX to another prefix."
                )

    # -- the index record --------------------------------------------------------
    def read_record(self) -> IndexRecord | None:
        if not self.exists():
            return None
        self.check_collections()
        rows = self.call("query", self.client.query, self.articles, filter=f"key == {key(INFO_ROW, 0)}",
                         output_fields=["meta"], consistency_level="Strong")
        if not rows:
            raise IndexLoadError(
                f"{self.where()} has no index record (a create was interrupted). Drop the "
                f"{self.prefix}* collections or use another RAG_MILVUS_PREFIX, then ingest again."
            )
        try:
            return IndexRecord.from_json(rows[0]["meta"])
        except (TypeError, ValueError) as exc:
            raise IndexLoadError(f"{self.where()}: the index record is unreadable ({exc}).") from exc

    def write_record(self, record: IndexRecord) -> None:
        e0 = np.zeros(record.dim, dtype=np.float32)
        e0[0] = 1.0
        row = {"key": key(INFO_ROW, 0), "article_row": INFO_ROW, "part": 0, "article_id": "", "source": "",
               "day": -1, "n_passages": 0, "n_units": 0, "meta": record.to_json(), "text": "", "vector": e0.tolist()}
        self.call("upsert", self.client.upsert, self.articles, [row])

    def check_model(self, record: IndexRecord, embedding_model: str | None) -> None:
        if record.format_version != FORMAT_VERSION:
            raise IndexLoadError(
                f"{self.where()} has format version {record.format_version}; this version reads "
                f"{FORMAT_VERSION}. Use another RAG_MILVUS_PREFIX and migrate or ingest again."
            )
        if embedding_model is not None and record.embedding_model != embedding_model:
            raise IndexLoadError(
                f"{self.where()} was built with the embedding model {record.embedding_model!r}, but the "
                f"settings ask for {embedding_model!r}. Set RAG_EMBEDDING_MODEL={record.embedding_model} "
                "or RAG_MILVUS_PREFIX to another prefix."
            )

    # -- reads -----------------------------------------------------------------------
    def query_all(self, collection: str, expr: str, output_fields: list[str]) -> list[dict[str, Any]]:
        """Every row matching ``expr`` (paged: a query's result window is capped)."""
        out: list[dict] = []
        it = self.call("query_iterator", self.client.query_iterator, collection, batch_size=BATCH, filter=expr,
                       output_fields=output_fields, consistency_level="Strong")
        try:
            while True:
                page = self.call("query", it.next)
                if not page:
                    break
                out.extend(page)
        finally:
            it.close()
        return out

    def markers(self, below_row: int) -> list[dict]:
        """The committed articles (their part-0 rows) with a row below ``below_row``."""
        return self.query_all(
            self.articles, f"part == 0 and article_row > {INFO_ROW} and article_row < {int(below_row)}",
            ["article_row", "meta", "n_passages", "n_units"],
        )


def record_for(settings: Settings, embedder_name: str, dim: int, chunk_max: int, chunk_overlap: int) -> IndexRecord:
    return IndexRecord(embedder_name, settings.embedding_backend, int(dim), int(chunk_max), int(chunk_overlap),
                       settings.index_type)


__all__ = [
    "ARTICLE_FIELDS", "BATCH", "INFO_ROW", "IndexRecord", "MilvusIndex", "ROW_SHIFT", "article_from_json",
    "article_meta_json", "key", "record_for", "text_parts",
]
