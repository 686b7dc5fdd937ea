"""Adding and removing articles: files -> articles -> passages -> a new index generation."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from tqdm.auto import tqdm

from ..embed.base import Embedder
from ..errors import RagError
from ..settings import Settings
from ..store.bm25_tokens import Bm25Tokens
from ..store.faiss_index import build_faiss, choose_index_type
from ..store.generations import GenerationBuilder, collect_garbage, current_generation, open_index, writer_lock
from ..store.manifest import FORMAT_VERSION, Manifest
from ..store.snapshot import PASSAGE_DTYPE, UNIT_DTYPE, IndexSnapshot
from ..text.headers import article_header, index_text
from ..types import Article, FileResult, IngestReport
from .chunking import Chunking, chunk_text
from .curation import plan_ingest
from .readers import iter_input_files, load_file

log = logging.getLogger(__name__)

# Called with (stage, done, total) so the UI can show progress without tqdm.
ProgressFn = Callable[[str, int, int], None]


@dataclass
class Chunked:
    article: Article
    chunking: Chunking


def _open_base(settings: Settings) -> IndexSnapshot | None:
    root = Path(settings.index_dir)
    if not root.exists() or current_generation(root) is None:
        return None
    return open_index(root, embedding_model=settings.embedding_model)


def chunk_article(article: Article, embedder: Embedder, settings: Settings) -> Chunking:
    head = article_header(article)
    head_tokens = embedder.count_tokens([head])[0] if head else 0
    tok = embedder.tokenizer

    def offsets(piece: str) -> list[tuple[int, int]]:
        return [tuple(o) for o in tok(piece, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]]

    return chunk_text(
        article.text,
        embedder.count_tokens,
        max_tokens=min(settings.chunk_max_tokens, embedder.max_seq_length),
        overlap_tokens=settings.chunk_overlap_tokens,
        header_tokens=head_tokens,
        token_offsets=offsets,
    )


def ingest_paths(
    paths: Iterable[str | Path],
    settings: Settings,
    embedder: Embedder,
    *,
    progress: ProgressFn | None = None,
    show_progress: bool = True,
) -> IngestReport:
    """Add articles from files/folders to the index at ``settings.index_dir``.

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
    report = report or IngestReport()
    root = Path(settings.index_dir)
    with writer_lock(root):
        base = _open_base(settings)
        known = set(base.row_by_id) if base else set()
        fresh: list[Article] = []
        for art in articles:
            if art.article_id in known:
                report.results.append(
                    FileResult(art.origin or "?", "duplicate", "already in the index", art.article_id, art.title)
                )
                continue
            known.add(art.article_id)
            fresh.append(art)
        if not fresh:
            return report
        # Updates (same URL, other text) and wire copies: see curation.py.
        plan = plan_ingest(base, fresh, settings, root)
        report.results.extend(plan.results)
        fresh = plan.articles
        if not fresh:
            return report

        chunk_max = base.manifest.chunk_max_tokens if base else settings.chunk_max_tokens
        chunk_overlap = base.manifest.chunk_overlap_tokens if base else settings.chunk_overlap_tokens
        if base and (chunk_max, chunk_overlap) != (settings.chunk_max_tokens, settings.chunk_overlap_tokens):
            log.warning(
                "index was built with %s-token chunks (overlap %s); new articles use the same",
                chunk_max,
                chunk_overlap,
            )
        chunk_settings = settings.model_copy(
            update={"chunk_max_tokens": chunk_max, "chunk_overlap_tokens": chunk_overlap}
        )
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

        texts = [index_text(c.article, c.article.text[p.start : p.end]) for c in chunked for p in c.chunking.passages]
        unit_texts = [c.article.text[u.start : u.end] for c in chunked for u in c.chunking.units]
        t0 = time.perf_counter()
        new_vectors = _embed_with_progress(embedder, texts, progress, show_progress, "passages")
        new_unit_vectors = _embed_with_progress(embedder, unit_texts, progress, show_progress, "sentences")
        log.info(
            "embedded %d passages and %d sentences in %.1fs",
            len(texts),
            len(unit_texts),
            time.perf_counter() - t0,
        )

        # An update replaces the old version in the same generation: one commit.
        replaces = {c.article.article_id: plan.replaces[c.article.article_id]
                    for c in chunked if c.article.article_id in plan.replaces}
        drop_rows = {base.row_by_id[old] for old in replaces.values()} if base is not None else set()
        kept = _kept_tables(base, drop_rows) if base is not None else None
        builder = GenerationBuilder(root, base)
        try:
            if replaces:
                builder.delete_articles(list(replaces.values()))
            unit_base = len(kept.units) if kept is not None else 0
            new_passages, new_units = _tables(builder, chunked, unit_base)
            if kept is not None:
                passages = np.concatenate([kept.passages, new_passages])
                vectors = np.concatenate([kept.vectors, new_vectors])
                units = np.concatenate([kept.units, new_units])
                unit_vectors = np.concatenate([kept.unit_vectors, new_unit_vectors.astype(np.float16)])
            else:
                passages, vectors = new_passages, new_vectors
                units, unit_vectors = new_units, new_unit_vectors
            index_type = choose_index_type(settings.index_type, len(passages))
            if base is not None and not drop_rows and base.manifest.index_type == index_type:
                # Incremental: add only the new vectors to a copy of the live index.
                import faiss

                faiss_index = faiss.clone_index(base.faiss)
                faiss_index.add(new_vectors)
            else:
                faiss_index = build_faiss(vectors, index_type)
            if progress:
                progress("indexing", 0, 1)
            tokens = kept.tokens if kept is not None else Bm25Tokens.empty()
            # Only the new passages are tokenized; the stored ones are reused as ids.
            tokens = tokens.extend(texts) if tokens is not None else Bm25Tokens.from_texts(
                builder.all_index_texts(passages)
            )
            bm25 = tokens.build_bm25()
            manifest = Manifest(
                format_version=FORMAT_VERSION,
                embedding_model=embedder.name,
                dim=int(vectors.shape[1]),
                chunk_max_tokens=chunk_max,
                chunk_overlap_tokens=chunk_overlap,
                index_type=index_type,
                n_articles=(base.manifest.n_articles - len(drop_rows) if base else 0) + len(chunked),
                n_passages=len(passages),
                generation=(base.manifest.generation + 1) if base else 1,
                created_at=time.time(),
                embedding_backend=settings.embedding_backend,
            )
            builder.commit(manifest, passages, vectors, units, unit_vectors, faiss_index, bm25, tokens)
        except BaseException:
            builder.abort()
            raise
        if base is not None:
            base.close()
        collect_garbage(root)
        for c in chunked:
            aid = c.article.article_id
            report.results.append(
                FileResult(
                    c.article.origin or "?", "updated" if aid in replaces else "added",
                    f"new version of {replaces[aid]}" if aid in replaces else None,
                    aid, c.article.title, len(c.chunking.passages)
                )
            )
        if progress:
            progress("done", 1, 1)
        return report


@dataclass
class _Kept:
    """A generation's tables without some of its articles."""

    passages: np.ndarray
    vectors: np.ndarray
    units: np.ndarray
    unit_vectors: np.ndarray
    tokens: Bm25Tokens | None  # None: written without stored tokens; re-tokenize from the texts


def _kept_tables(base: IndexSnapshot, rows: set[int]) -> _Kept:
    """``base``'s passages, sentence units, vectors and BM25 tokens minus the articles in ``rows``."""
    tokens = _stored_bm25_tokens(base, len(base.passages))
    if not rows:
        return _Kept(base.passages, np.asarray(base.vectors), base.units, np.asarray(base.unit_vectors), tokens)
    keep = ~np.isin(base.passages["article_row"], list(rows))
    keep_units = ~np.isin(base.units["article_row"], list(rows))
    # Old unit index -> new unit index once the removed units are gone.
    new_index = np.cumsum(keep_units) - 1
    passages = base.passages[keep].copy()
    if len(passages):
        passages["unit_lo"] = new_index[passages["unit_lo"]]
        passages["unit_hi"] = new_index[passages["unit_hi"] - 1] + 1
    return _Kept(
        passages,
        np.asarray(base.vectors)[keep],
        base.units[keep_units],
        np.asarray(base.unit_vectors)[keep_units],
        # Drop the removed passages' runs rather than re-tokenizing the rest.
        tokens.select(keep) if tokens is not None else None,
    )


def _stored_bm25_tokens(base: IndexSnapshot | None, n_passages: int) -> Bm25Tokens | None:
    """The base generation's tokenized BM25 corpus; None when it must be rebuilt from the texts.

    A generation written before ``bm25_tokens/`` existed has none: the caller then
    re-tokenizes every passage once, and the generation it writes has the files.
    """
    if base is None:
        return Bm25Tokens.empty()
    stored = base.bm25_tokens()
    if stored is None:
        log.info(
            "%s has no stored BM25 tokens (written by an older version): re-tokenizing all "
            "%d passages once",
            base.gen_dir,
            n_passages,
        )
    return stored


def _tables(builder: GenerationBuilder, chunked: list[Chunked], unit_base: int) -> tuple[np.ndarray, np.ndarray]:
    """Passage and unit rows for new articles; unit indices continue after ``unit_base``."""
    p_rows, u_rows = [], []
    for c in chunked:
        row = builder.add_article(c.article)
        first = unit_base + len(u_rows)
        starts = np.array([u.start for u in c.chunking.units])
        ends = np.array([u.end for u in c.chunking.units])
        u_rows.extend((row, u.start, u.end) for u in c.chunking.units)
        for p in c.chunking.passages:
            lo = int(np.searchsorted(starts, p.start, side="left"))
            hi = int(np.searchsorted(ends, p.end, side="right"))
            p_rows.append((row, p.start, p.end, first + lo, first + hi))
    return np.array(p_rows, dtype=PASSAGE_DTYPE), np.array(u_rows, dtype=UNIT_DTYPE)


def _embed_with_progress(embedder, texts, progress, show_progress, what: str) -> np.ndarray:
    batch = max(1, embedder.settings.embedding_batch_size) * 8
    out = []
    with tqdm(total=len(texts), desc=f"Embedding {what}", unit=what[:-1], disable=not show_progress) as bar:
        for i in range(0, len(texts), batch):
            out.append(embedder.embed(texts[i : i + batch]))
            bar.update(len(texts[i : i + batch]))
            if progress:
                progress(f"embedding {what}", min(i + batch, len(texts)), len(texts))
    return np.concatenate(out) if out else np.zeros((0, embedder.dim), dtype=np.float32)


def remove_articles(article_ids: list[str], settings: Settings) -> list[Article]:
    """Remove articles by id; returns what was removed. Unknown ids are an error."""
    root = Path(settings.index_dir)
    with writer_lock(root):
        base = _open_base(settings)
        if base is None:
            raise RagError(f"No index at {root}.")
        missing = [a for a in article_ids if a not in base.row_by_id]
        if missing:
            raise RagError(
                f"No article with id {', '.join(missing)} in {root} (see `rag articles`)."
            )
        rows = {base.row_by_id[a] for a in article_ids}
        removed = [base.meta_by_row[r] for r in rows]
        kept = _kept_tables(base, rows)
        passages, vectors, units, unit_vectors = kept.passages, kept.vectors, kept.units, kept.unit_vectors
        builder = GenerationBuilder(root, base)
        try:
            builder.delete_articles(article_ids)
            index_type = choose_index_type(
                base.manifest.index_type if base.manifest.index_type != "auto" else settings.index_type,
                len(passages),
            )
            faiss_index = build_faiss(vectors, index_type)
            tokens = kept.tokens if kept.tokens is not None else Bm25Tokens.from_texts(
                builder.all_index_texts(passages)
            )
            bm25 = tokens.build_bm25()
            m = base.manifest
            manifest = Manifest(
                **{
                    **m.__dict__,
                    "n_articles": m.n_articles - len(rows),
                    "n_passages": len(passages),
                    "generation": m.generation + 1,
                    "created_at": time.time(),
                    "index_type": index_type,
                }
            )
            builder.commit(manifest, passages, vectors, units, unit_vectors, faiss_index, bm25, tokens)
        except BaseException:
            builder.abort()
            raise
        base.close()
        collect_garbage(root)
        return removed
