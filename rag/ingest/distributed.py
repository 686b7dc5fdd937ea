"""`rag ingest --ray`: reading, cleaning and chunking as Ray Data tasks, embedding on actors.

The plan (one Ray Data pipeline per stage, streamed):

1. reading and cleaning: one task per file (``flat_map``), yielding its articles and
   its per-file problems; the driver reports the problems and drops duplicates;
2. chunking: tasks (``map``) with the model's tokenizer only (loaded once per worker);
3. embedding: ``map_batches`` over a pool of actors, one model per actor, passages
   and sentence units embedded together (as plain ingest does);
4. writing: the driver writes each batch of embedded articles to the configured
   store through the same writer as plain ingest (Milvus: every article whole or
   not at all; local: one segment per batch, merged later).

With no address a local cluster of ``settings.ray_local_cpus`` CPUs is started and
shut down at the end; ``RAY_ADDRESS`` (or ``--ray ADDRESS``) joins a running cluster.
Vectors cross the object store as float32 bytes (no pickle of engine objects).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np
from tqdm.auto import tqdm

from ..errors import RagError
from ..settings import Settings
from ..types import Article, FileResult, IngestReport
from .chunking import Chunking, Span
from .pipeline import (
    Chunked,
    chunk_article,
    chunk_settings_for,
    curate,
    embed_pooled,
    new_articles,
    passage_index_texts,
    write_chunked,
)
from .readers import iter_input_files, load_file

log = logging.getLogger(__name__)
WRITE_ARTICLES = 256  # articles per write (Milvus: per commit batch; local: per segment)
EMBED_BATCH_ARTICLES = 16  # articles per map_batches call on an actor
SECRETS = {"llm_api_key", "auth", "api_keys", "milvus_token"}  # settings never sent to workers


@lru_cache(maxsize=2)
def _settings(doc: str) -> Settings:
    return Settings.model_validate_json(doc)


@lru_cache(maxsize=2)
def _tokenizer(model: str):
    """The model's tokenizer only (chunking needs no model weights), once per worker process."""
    from ..embed.model_files import ModelFiles

    return ModelFiles(model)


def _read(row: dict, settings_doc: str) -> list[dict]:
    """One file -> its articles and problems (a Ray task)."""
    loaded = load_file(Path(row["path"]), _settings(settings_doc))
    out = [{"article": asdict(a), "problem": None} for a in loaded.articles]
    out += [{"article": None, "problem": asdict(p)} for p in loaded.problems]
    return out


def _chunk(row: dict, settings_doc: str) -> dict:
    """One article -> its sentence units and passages (a Ray task)."""
    settings = _settings(settings_doc)
    article = Article(**row["article"])
    c = chunk_article(article, _tokenizer(settings.embedding_model), settings)
    return {"article": row["article"], "units": [[u.start, u.end] for u in c.units],
            "passages": [[p.start, p.end] for p in c.passages], "unit_tokens": list(c.unit_tokens)}


class EmbedActor:
    """One embedding model per actor; embeds a batch of chunked articles."""

    def __init__(self, settings_doc: str):
        from ..embed.factory import create_embedder

        # One thread per actor: parallelism comes from the actor pool.
        settings = _settings(settings_doc).model_copy(update={"embedding_threads": 1})
        self.embedder = create_embedder(settings)
        self.pooled = settings.passage_vectors == "pooled"

    def __call__(self, batch: dict) -> dict:
        chunked = [_chunked(a, u, p, n) for a, u, p, n in
                   zip(batch["article"], batch["units"], batch["passages"], batch["unit_tokens"])]
        texts = passage_index_texts(chunked)
        t = time.perf_counter()
        if self.pooled:
            p_vectors, u_vectors = embed_pooled(self.embedder, chunked)
        else:
            unit_texts = [c.article.text[u.start : u.end] for c in chunked for u in c.chunking.units]
            vectors = self.embedder.embed(texts + unit_texts)
            p_vectors, u_vectors = vectors[: len(texts)], vectors[len(texts) :]
        p_vectors, u_vectors = p_vectors.astype(np.float32), u_vectors.astype(np.float32)
        took = time.perf_counter() - t
        out_p, out_u, at, u_at = [], [], 0, 0
        for c in chunked:
            n_p, n_u = len(c.chunking.passages), len(c.chunking.units)
            out_p.append(p_vectors[at : at + n_p].tobytes())
            out_u.append(u_vectors[u_at : u_at + n_u].tobytes())
            at += n_p
            u_at += n_u
        # The actor's embedding seconds, spread over its articles by passage count: the
        # driver sums them into the per-worker throughput that sizing a cluster needs.
        share = [took * len(c.chunking.passages) / max(1, len(texts)) for c in chunked]
        return {**batch, "vectors": out_p, "unit_vectors": out_u, "dim": [p_vectors.shape[1]] * len(chunked),
                "embed_s": share}


def _chunked(article: dict, units, passages, unit_tokens=()) -> Chunked:
    return Chunked(Article(**article), Chunking([Span(int(s), int(e)) for s, e in units],
                                                [Span(int(s), int(e)) for s, e in passages],
                                                tuple(int(n) for n in unit_tokens)))


def _init_ray(settings: Settings, address: str | None):
    """Join the cluster at ``address`` (or RAY_ADDRESS), else start a local one. Returns (ray, started)."""
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is a dependency
        raise RagError(f"`rag ingest --ray` needs the ray package ({exc}).") from exc
    if ray.is_initialized():
        return ray, False
    address = address or settings.ray_address
    for attempt in (1, 2):
        try:
            if address:
                ray.init(address=address, log_to_driver=False, include_dashboard=False)
            else:
                ray.init(num_cpus=settings.ray_local_cpus, log_to_driver=False, include_dashboard=False)
            return ray, True
        except Exception as exc:  # noqa: BLE001 - Ray raises bare Exceptions (e.g. a node start timeout)
            with contextlib.suppress(Exception):
                ray.shutdown()
            # A local cluster's start waits 30 s for its raylet, which an overloaded
            # machine can miss: once more before giving up.
            if attempt == 1 and not address:
                log.warning("the local Ray cluster did not start (%s); trying once more", exc)
                continue
            where = f" at {address}" if address else " (local)"
            raise RagError(f"Cannot start or join the Ray cluster{where}: {exc}") from exc
    raise AssertionError("unreachable")


def ingest_paths_ray(
    paths: Iterable[str | Path],
    settings: Settings,
    *,
    address: str | None = None,
    workers: int | None = None,
    show_progress: bool = True,
) -> IngestReport:
    """Add articles from files/folders to the configured store with a Ray cluster (see the module notes)."""
    from ..store.writes import index_writer

    if settings.sentence_vectors != "separate":
        raise RagError("`rag ingest --ray` embeds sentences separately: unset RAG_SENTENCE_VECTORS (or set it to separate).")
    report = IngestReport()
    readable = []
    for path, not_read in iter_input_files(paths):
        if not_read is not None:
            report.results.append(not_read)
        else:
            readable.append(str(path))
    if not readable:
        return report
    ray, started = _init_ray(settings, address)
    try:
        from ray.data import DataContext

        DataContext.get_current().enable_progress_bars = False
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n_actors = max(1, workers or cpus)
        doc = settings.model_dump_json(exclude=SECRETS)  # workers need no secrets
        t0 = time.perf_counter()
        # 1. read and clean: tasks without a CPU reservation (the actors hold the CPUs).
        rows = (ray.data.from_items([{"path": p} for p in readable], override_num_blocks=min(len(readable), 4 * cpus))
                .flat_map(_read, fn_kwargs={"settings_doc": doc}, num_cpus=0)
                .take_all())
        articles = []
        for r in rows:
            if r["problem"] is not None:
                report.results.append(FileResult(**r["problem"]))
            else:
                articles.append(Article(**r["article"]))
        log.info("read %d articles from %d files in %.1fs", len(articles), len(readable), time.perf_counter() - t0)
        with index_writer(settings) as writer:
            fresh = new_articles(writer, articles, settings, report)
            if fresh:
                fresh, replacing = curate(writer, fresh, settings, report)
            if not fresh:
                return report
            chunk_settings = chunk_settings_for(writer, settings)
            cdoc = chunk_settings.model_dump_json(exclude=SECRETS)
            # 2. chunk (tasks) and 3. embed (actors), streamed to the driver.
            ds = (ray.data.from_items([{"article": asdict(a)} for a in fresh],
                                      override_num_blocks=max(1, min(len(fresh) // 8, 8 * n_actors)))
                  .map(_chunk, fn_kwargs={"settings_doc": cdoc}, num_cpus=0)
                  .map_batches(EmbedActor, fn_constructor_kwargs={"settings_doc": cdoc}, batch_size=EMBED_BATCH_ARTICLES,
                               concurrency=n_actors, num_cpus=1, batch_format="default"))
            pending: list[dict] = []
            embed_s, n_passages, n_units = 0.0, 0, 0
            with tqdm(total=len(fresh), desc=f"Ingesting on Ray ({n_actors} embedding actors)", unit="article",
                      disable=not show_progress) as bar:
                for row in ds.iter_rows():
                    embed_s += float(row["embed_s"])
                    n_passages += len(row["passages"])
                    n_units += len(row["units"])
                    pending.append(row)
                    if len(pending) >= WRITE_ARTICLES:
                        _write(writer, pending, chunk_settings, settings, report, replacing)
                        bar.update(len(pending))
                        pending = []
                if pending:
                    _write(writer, pending, chunk_settings, settings, report, replacing)
                    bar.update(len(pending))
            if embed_s > 0:
                log.info("embedding: %d passages and %d sentence units in %.1f actor-seconds, "
                         "%.1f passages/s per actor (%d actors)",
                         n_passages, n_units, embed_s, n_passages / embed_s, n_actors)
        log.info("ingested %d articles on Ray in %.1fs", len(report.added), time.perf_counter() - t0)
        return report
    finally:
        if started:
            ray.shutdown()


def _write(writer, rows: list[dict], chunk_settings: Settings, settings: Settings, report: IngestReport,
           replacing: dict[str, str]) -> None:
    chunked, vecs, uvecs = [], [], []
    for r in rows:
        c = _chunked(r["article"], r["units"], r["passages"])
        if not c.chunking.passages:
            report.results.append(FileResult(c.article.origin or "?", "rejected", "no text to index"))
            continue
        dim = int(r["dim"])
        chunked.append(c)
        vecs.append(np.frombuffer(r["vectors"], dtype=np.float32).reshape(-1, dim))
        uvecs.append(np.frombuffer(r["unit_vectors"], dtype=np.float32).reshape(-1, dim))
    if not chunked:
        return
    write_chunked(writer, chunked, np.concatenate(vecs), np.concatenate(uvecs), passage_index_texts(chunked),
                  chunk_settings, settings.embedding_model, report, replacing)
