"""Adding and removing articles: files -> articles -> passages -> a new segment (removals: tombstones)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from tqdm.auto import tqdm

from ..embed.base import Embedder
from ..embed.late import embed_with_spans
from ..embed.pooled import pooled_vectors
from ..errors import RagError
from ..settings import Settings
from ..store import steps
from ..store.writer import IndexSpec, NewArticle
from ..store.writes import describe, index_writer
from ..text.headers import article_header, index_text
from ..text.units import unit_runs
from ..types import Article, FileResult, IngestReport
from .chunking import Chunking, chunk_text, home_passages
from .curation import plan_ingest
from .readers import iter_input_files, load_file

log = logging.getLogger(__name__)

# Called with (stage, done, total) so the UI can show progress without tqdm.
ProgressFn = Callable[[str, int, int], None]
# Texts per embedding call: progress is reported between calls, and each call ends
# with the backend's parallel streams draining (one idles while the other finishes
# the last batch), so calls are few and large.
EMBED_CHUNK = 2048


@dataclass
class Chunked:
    article: Article
    chunking: Chunking


def chunk_article(article: Article, embedder: Embedder, settings: Settings) -> Chunking:
    head = article_header(article)
    head_tokens = embedder.count_tokens([head])[0] if head else 0
    return chunk_text(
        article.text,
        embedder.count_tokens,
        max_tokens=min(settings.chunk_max_tokens, embedder.max_seq_length),
        overlap_tokens=settings.chunk_overlap_tokens,
        header_tokens=head_tokens,
        token_offsets=embedder.token_offsets,
    )


def ingest_paths(
    paths: Iterable[str | Path],
    settings: Settings,
    embedder: Embedder,
    *,
    progress: ProgressFn | None = None,
    show_progress: bool = True,
) -> IngestReport:
    """Add articles from files/folders to the configured store.

    Bad files are reported and skipped; the index is only replaced (atomically)
    when at least one new article was read.
    """
    report = IngestReport()
    articles: list[Article] = []
    files = list(iter_input_files(paths))
    for path, not_read in tqdm(files, desc="Reading", unit="file", disable=not show_progress or len(files) < 2):
        if not_read is not None:
            report.results.append(not_read)
            continue
        loaded = load_file(path, settings)
        report.results.extend(loaded.problems)
        for art in loaded.articles:
            articles.append(art)
        if progress:
            progress("reading", len(report.results) + len(articles), len(files))
    return ingest_articles(articles, settings, embedder, report=report, progress=progress, show_progress=show_progress)


def ingest_articles(
    articles: list[Article],
    settings: Settings,
    embedder: Embedder,
    *,
    report: IngestReport | None = None,
    progress: ProgressFn | None = None,
    show_progress: bool = True,
) -> IngestReport:
    """Add new articles to the configured store (the local one: one new segment,
    atomically; Milvus: each article whole or not at all). Duplicates are skipped."""
    report = report or IngestReport()
    with index_writer(settings) as writer:
        fresh = new_articles(writer, articles, settings, report)
        if not fresh:
            return report
        fresh, replaces = curate(writer, fresh, settings, report)
        if not fresh:
            return report
        chunk_settings = chunk_settings_for(writer, settings)
        chunked: list[Chunked] = []
        for i, art in enumerate(tqdm(fresh, desc="Chunking", unit="article", disable=not show_progress)):
            chunking = chunk_article(art, embedder, chunk_settings)
            if not chunking.passages:
                report.results.append(FileResult(art.origin or "?", "rejected", "no text to index"))
                continue
            chunked.append(Chunked(art, chunking))
            if progress:
                progress("chunking", i + 1, len(fresh))
        if not chunked:
            return report

        texts = passage_index_texts(chunked)
        t0 = time.perf_counter()
        if settings.sentence_vectors == "late":
            new_vectors, new_unit_vectors = _embed_late(embedder, chunked, texts, progress, show_progress)
        elif settings.passage_vectors == "pooled":
            new_vectors, new_unit_vectors = embed_pooled(embedder, chunked, progress, show_progress)
        else:
            unit_texts = [c.article.text[u.start : u.end] for c in chunked for u in c.chunking.units]
            # One run over both: the backend sorts them by length into full batches.
            both = _embed_with_progress(embedder, texts + unit_texts, progress, show_progress, "passages and sentences")
            new_vectors, new_unit_vectors = both[: len(texts)], both[len(texts) :]
        log.info(
            "embedded %d passages and %d sentences (sentences %s, passages %s) in %.1fs",
            len(texts),
            len(new_unit_vectors),
            settings.sentence_vectors,
            "pooled" if settings.passage_vectors == "pooled" and settings.sentence_vectors != "late" else "embedded",
            time.perf_counter() - t0,
        )
        steps.reached("embedded")
        if progress:
            progress("indexing", 0, 1)
        write_chunked(writer, chunked, new_vectors, new_unit_vectors, texts, chunk_settings, embedder.name, report,
                      replaces)
    if progress:
        progress("done", 1, 1)
    return report


def new_articles(writer, articles: list[Article], settings: Settings, report: IngestReport) -> list[Article]:
    """The articles not in the store yet (each once); the others are reported as duplicates."""
    writer.check_model(settings.embedding_model)
    fresh: list[Article] = []
    seen: set[str] = set()
    for art in articles:
        if art.article_id in writer or art.article_id in seen:
            report.results.append(
                FileResult(art.origin or "?", "duplicate", "already in the index", art.article_id, art.title)
            )
            continue
        seen.add(art.article_id)
        fresh.append(art)
    return fresh


def chunk_settings_for(writer, settings: Settings) -> Settings:
    """The settings with the chunking the existing index was built with (new articles use the same)."""
    base = writer.manifest
    chunk_max = base.chunk_max_tokens if base else settings.chunk_max_tokens
    chunk_overlap = base.chunk_overlap_tokens if base else settings.chunk_overlap_tokens
    if base and (chunk_max, chunk_overlap) != (settings.chunk_max_tokens, settings.chunk_overlap_tokens):
        log.warning(
            "index was built with %s-token chunks (overlap %s); new articles use the same",
            chunk_max,
            chunk_overlap,
        )
    return settings.model_copy(update={"chunk_max_tokens": chunk_max, "chunk_overlap_tokens": chunk_overlap})


def passage_index_texts(chunked: list[Chunked]) -> list[str]:
    """What is embedded and keyword-indexed per passage: the header and the passage."""
    return [index_text(c.article, c.article.text[p.start : p.end]) for c in chunked for p in c.chunking.passages]


def curate(writer, fresh: list[Article], settings: Settings, report: IngestReport) -> tuple[list[Article], dict[str, str]]:
    """Updates (same URL, other text) and wire copies, decided under the writer lock (see
    curation.py): the articles to add and, per new article id, the indexed one it replaces."""
    cache = Path(settings.index_dir) if settings.store == "local" else None  # wire signature cache
    plan = plan_ingest(writer if writer.manifest is not None else None, fresh, settings, cache)
    report.results.extend(plan.results)
    return plan.articles, plan.replaces


def write_chunked(writer, chunked: list[Chunked], vectors: np.ndarray, unit_vectors: np.ndarray, texts: list[str],
                  chunk_settings: Settings, model_name: str, report: IngestReport,
                  replacing: dict[str, str] | None = None) -> None:
    """Write embedded articles to the store and report each as added (or updated:
    ``replacing`` maps a new article id to the indexed version it replaces)."""
    spec = IndexSpec(model_name, chunk_settings.embedding_backend, int(vectors.shape[1]), chunk_settings.chunk_max_tokens,
                     chunk_settings.chunk_overlap_tokens, chunk_settings.index_type)
    items = [NewArticle(c.article, c.chunking.units, c.chunking.passages) for c in chunked]
    replaces = {c.article.article_id: replacing[c.article.article_id]
                for c in chunked if replacing and c.article.article_id in replacing}
    writer.add(spec, items, vectors, unit_vectors, texts, replaces=list(replaces.values()))
    for c in chunked:
        aid = c.article.article_id
        report.results.append(
            FileResult(
                c.article.origin or "?", "updated" if aid in replaces else "added",
                f"new version of {replaces[aid]}" if aid in replaces else None,
                aid, c.article.title, len(c.chunking.passages),
            )
        )


def _embed_late(embedder, chunked: list[Chunked], texts: list[str], progress, show_progress) -> tuple[np.ndarray, np.ndarray]:
    """Passage vectors, and sentence vectors pooled from the same pass (see rag.embed.late)."""
    spans: list[list[tuple[int, int]]] = [[] for _ in texts]  # per passage: its units, in its index text
    where: list[tuple[int, int]] = []  # per unit: (passage, slot), or (-1, index into alone)
    alone: list[str] = []  # units no passage holds whole: embedded on their own
    first = 0
    for c in chunked:
        head = article_header(c.article)
        shift = len(head) + 1 if head else 0  # index_text puts the header and a newline first
        passages = c.chunking.passages
        for u, k in zip(c.chunking.units, home_passages(c.chunking.units, passages)):
            if k < 0:
                where.append((-1, len(alone)))
                alone.append(c.article.text[u.start : u.end])
                continue
            p = passages[k]
            where.append((first + k, len(spans[first + k])))
            spans[first + k].append((shift + u.start - p.start, shift + u.end - p.start))
        first += len(passages)
    batch = EMBED_CHUNK
    parts: list[np.ndarray] = []
    span_vectors: list[np.ndarray] = []
    with tqdm(total=len(texts), desc="Embedding passages", unit="passage", disable=not show_progress) as bar:
        for i in range(0, len(texts), batch):
            v, sv = embed_with_spans(embedder, texts[i : i + batch], spans[i : i + batch])
            parts.append(v)
            span_vectors.extend(sv)
            bar.update(len(v))
            if progress:
                progress("embedding passages", min(i + batch, len(texts)), len(texts))
    vectors = np.concatenate(parts) if parts else np.zeros((0, embedder.dim), dtype=np.float32)
    lone = embedder.embed(alone) if alone else np.zeros((0, vectors.shape[1]), dtype=np.float32)
    units = [span_vectors[k][j] if k >= 0 else lone[j] for k, j in where]
    return vectors, np.stack(units) if units else np.zeros((0, vectors.shape[1]), dtype=np.float32)


def embed_pooled(embedder, chunked: list[Chunked], progress=None, show_progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Sentence vectors, and passage vectors pooled from them and their header's (see rag.embed.pooled)."""
    unit_texts = [c.article.text[u.start : u.end] for c in chunked for u in c.chunking.units]
    heads = [article_header(c.article) for c in chunked]
    head_texts = [h for h in heads if h]
    vectors = _embed_with_progress(embedder, unit_texts + head_texts, progress, show_progress, "sentences")
    unit_vectors, head_vectors = vectors[: len(unit_texts)], vectors[len(unit_texts) :]
    head_tokens = embedder.count_tokens(head_texts) if head_texts else []
    weights: list[int] = []
    runs: list[tuple[int, int]] = []
    p_heads: list[int] = []  # per passage: its header's row in head_vectors (-1: none)
    first, h = 0, 0
    for c, head in zip(chunked, heads):
        units = c.chunking.units
        counts = c.chunking.unit_tokens or embedder.count_tokens([c.article.text[u.start : u.end] for u in units])
        weights.extend(counts)
        for lo, hi in unit_runs(units, c.chunking.passages):
            runs.append((first + lo, first + hi))
            p_heads.append(h if head else -1)
        first += len(units)
        h += 1 if head else 0
    dim = unit_vectors.shape[1] if len(unit_vectors) else embedder.dim
    hv = np.zeros((len(runs), dim), dtype=np.float32)
    hw = np.zeros(len(runs), dtype=np.float32)
    for k, j in enumerate(p_heads):
        if j >= 0:
            hv[k], hw[k] = head_vectors[j], head_tokens[j]
    return pooled_vectors(unit_vectors, weights, runs, hv, hw), unit_vectors


def _embed_with_progress(embedder, texts, progress, show_progress, what: str) -> np.ndarray:
    """Vectors of ``texts``; a text that repeats (boilerplate lines, wire copies: 5% of
    MultiHop-RAG's sentences) is embedded once."""
    distinct = list(dict.fromkeys(texts))
    out = []
    with tqdm(total=len(distinct), desc=f"Embedding {what}", unit="text", disable=not show_progress) as bar:
        for i in range(0, len(distinct), EMBED_CHUNK):
            out.append(embedder.embed(distinct[i : i + EMBED_CHUNK]))
            bar.update(len(distinct[i : i + EMBED_CHUNK]))
            if progress:
                progress(f"embedding {what}", min(i + EMBED_CHUNK, len(distinct)), len(distinct))
    if not out:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    vectors = np.concatenate(out)
    if len(distinct) == len(texts):
        return vectors
    at = {t: i for i, t in enumerate(distinct)}
    return vectors[[at[t] for t in texts]]


def remove_articles(article_ids: list[str], settings: Settings) -> list[Article]:
    """Remove articles by id (local store: tombstones until the next merge); returns what
    was removed. Unknown ids are an error and nothing is removed."""
    with index_writer(settings) as writer:
        if writer.manifest is None:
            raise RagError(f"No index at {describe(settings)}.")
        return writer.delete(article_ids)
