"""Benchmarks, one subcommand each.

    python -m eval.bench embed [--n 512] [--backends torch onnx onnx-int8 openvino] [--repeats 3]
                               [--queries 200] [--json eval/out/bench-embed.json]
    python -m eval.bench query --index DIR [--queries 200] [--backend B] [--cold-runs 3]
    python -m eval.bench scale [--sizes 10000 100000 1000000] [--kinds flat hnsw ivf ivfpq]

``embed`` compares the embedding backends on the same realistic passages (MultiHop-RAG
articles cut by ``rag.chunking`` into <=256-word-piece passages with their header, as
ingest embeds them): throughput (passages/s, timed R times with the backends
interleaved, so background load hits them alike), query latency (the dev questions,
one at a time, interleaved), and agreement with torch (cosine of the vectors, overlap
of the brute-force top-10 passages for each question).

``query`` times the query path over an existing index (MultiHop-RAG's, built by
``rag eval``): query embedding, ``search``, the whole extractive ``ask`` chain, and
the cold start of a ``rag ask`` process. ``scale`` (``eval/bench_scale.py``) times
FAISS index kinds and BM25 on synthetic data at 10k-1M passages.

Data: MultiHop-RAG (Tang & Yang 2024), ODC-BY 1.0.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# As the CLI does: idle OpenMP threads of one backend must not spin while the next one runs.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

BENCH = Path(__file__).resolve().parent.parent.parent / "shared" / "benchmarks" / "multihop-rag"
BACKENDS = ("torch", "onnx", "onnx-int8", "openvino")


# -- shared helpers -------------------------------------------------------------
def load_corpus(bench: Path) -> list[dict]:
    return json.loads((bench / "corpus.json").read_text(encoding="utf-8"))


def load_queries(bench: Path) -> list[str]:
    rows = json.loads((bench / "queries_dev.json").read_text(encoding="utf-8"))
    return [r["query"] for r in rows if r.get("query")]


def build_passages(articles: list[dict], embedder, n: int, *, max_tokens: int = 256, overlap: int = 64) -> list[str]:
    """The first ``n`` passages that ingest would embed: header line + verbatim chunk."""
    from rag.chunking import chunk_text, header_for

    tok = embedder.tokenizer

    def offsets(piece: str) -> list[tuple[int, int]]:
        return [tuple(o) for o in tok(piece, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]]

    out: list[str] = []
    for a in articles:
        body = a.get("body") or ""
        if not body.strip():
            continue
        head = header_for(a.get("title"), a.get("source"), a.get("published_at"))
        head_tokens = embedder.count_tokens([head])[0] if head else 0
        chunked = chunk_text(
            body,
            embedder.count_tokens,
            max_tokens=min(max_tokens, embedder.max_seq_length),
            overlap_tokens=overlap,
            header_tokens=head_tokens,
            token_offsets=offsets,
        )
        spans = getattr(chunked, "passages", chunked)  # a Chunking, or a plain span list
        for s in spans:
            text = body[s.start : s.end]
            out.append(f"{head}\n{text}" if head else text)
            if len(out) >= n:
                return out
    return out


def make_embedder(backend: str, index_dir: Path, threads: int | None, batch_size: int | None):
    from rag.embeddings import create_embedder
    from rag.settings import Settings

    update: dict = {"index_dir": Path(index_dir), "embedding_backend": backend}
    if threads:
        update["embedding_threads"] = threads
    if batch_size:
        update["embedding_batch_size"] = batch_size
    return create_embedder(Settings().model_copy(update=update))


def rotated(items: list, r: int) -> list:
    """``items`` rotated by ``r``: each round starts with a different backend."""
    r %= len(items)
    return items[r:] + items[:r]


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def top_k(queries: np.ndarray, passages: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ passages.T
    k = min(k, passages.shape[0])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    rows = np.arange(len(queries))[:, None]
    return part[rows, np.argsort(-scores[rows, part], axis=1)]


def machine_line() -> str:
    load = ""
    if hasattr(os, "getloadavg"):
        load = " load avg %.1f/%.1f/%.1f" % os.getloadavg()
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores,{load}"


# -- embed ----------------------------------------------------------------------
def cmd_embed(args: argparse.Namespace) -> dict:
    backends = list(dict.fromkeys(args.backends))
    bench = Path(args.bench)
    articles = load_corpus(bench)
    questions = load_queries(bench)[: args.queries]

    print(f"machine: {machine_line()}", flush=True)
    # torch is always loaded: it is the reference for the quality numbers.
    embedders = {}
    load_s = {}
    for b in dict.fromkeys(["torch", *backends]):
        secs, emb = timed(lambda b=b: make_embedder(b, Path(args.index), args.threads, args.batch_size))
        # First real use loads (or exports) the model: timed as "load".
        extra, _ = timed(lambda emb=emb: emb.embed(["warm up"]))
        embedders[b] = emb
        load_s[b] = secs + extra
        print(f"loaded {b:10s} in {load_s[b]:.1f}s", flush=True)

    passages = build_passages(articles, embedders["torch"], args.n)
    n_tokens = embedders["torch"].count_tokens(passages)
    print(
        f"{len(passages)} passages (word pieces: mean {statistics.mean(n_tokens):.0f}, "
        f"max {max(n_tokens)}), {len(questions)} questions, {args.repeats} rounds",
        flush=True,
    )

    # Warm-up: one batch of passages and a few questions each.
    for b in backends:
        embedders[b].embed(passages[: min(len(passages), 64)])
        for q in questions[:5]:
            embedders[b].embed_query(q)

    # Throughput: R rounds, backends interleaved (rotated start).
    rates: dict[str, list[float]] = {b: [] for b in backends}
    vectors: dict[str, np.ndarray] = {}
    for r in range(args.repeats):
        for b in rotated(backends, r):
            secs, vecs = timed(lambda b=b: embedders[b].embed(passages))
            rates[b].append(len(passages) / secs)
            vectors[b] = vecs
            print(f"  round {r + 1}: {b:10s} {rates[b][-1]:7.1f} passages/s", flush=True)
    if "torch" not in vectors:
        vectors["torch"] = embedders["torch"].embed(passages)

    # Query latency: one question at a time. Each backend takes the whole question
    # list in a block (rounds rotate the order): interleaving single questions would
    # time each backend against the previous one's still-spinning worker threads.
    lat: dict[str, list[float]] = {b: [] for b in backends}
    qvecs: dict[str, list[np.ndarray]] = {b: [] for b in dict.fromkeys(["torch", *backends])}
    for r in range(args.query_rounds):
        for b in rotated(backends, r):
            for q in questions:
                secs, v = timed(lambda b=b, q=q: embedders[b].embed_query(q))
                lat[b].append(secs * 1000)
                if r == 0:
                    qvecs[b].append(v)
    if "torch" not in backends:
        qvecs["torch"] = list(embedders["torch"].embed(questions))
    qmat = {b: np.stack(v) for b, v in qvecs.items()}

    # Quality vs torch.
    ref_top = top_k(qmat["torch"], vectors["torch"], args.k)
    rows = []
    for b in backends:
        cos = np.sum(vectors[b] * vectors["torch"], axis=1)
        qcos = np.sum(qmat[b] * qmat["torch"], axis=1)
        top = top_k(qmat[b], vectors[b], args.k)
        overlap = np.mean([len(set(a) & set(c)) / len(a) for a, c in zip(top, ref_top)])
        top1 = float(np.mean(top[:, 0] == ref_top[:, 0]))
        rate = statistics.median(rates[b])
        rows.append(
            {
                "backend": b,
                "load_s": round(load_s[b], 2),
                "passages_per_s": round(rate, 2),
                "passages_per_s_runs": [round(x, 2) for x in rates[b]],
                "spread_pct": round(100 * (max(rates[b]) - min(rates[b])) / rate, 1),
                "query_ms_median": round(statistics.median(lat[b]), 2),
                "query_ms_p95": round(float(np.percentile(lat[b], 95)), 2),
                "cos_passages_mean": round(float(cos.mean()), 5),
                "cos_passages_min": round(float(cos.min()), 5),
                "cos_queries_mean": round(float(qcos.mean()), 5),
                "cos_queries_min": round(float(qcos.min()), 5),
                f"top{args.k}_overlap": round(float(overlap), 4),
                "top1_agree": round(top1, 4),
            }
        )
    torch_rate = next((r["passages_per_s"] for r in rows if r["backend"] == "torch"), None)
    for r in rows:
        r["ratio_vs_torch"] = round(r["passages_per_s"] / torch_rate, 2) if torch_rate else None

    k = args.k
    header = (
        f"{'backend':10s} {'pass/s':>8s} {'spread':>7s} {'x torch':>7s} {'q ms':>6s} {'q p95':>6s} "
        f"{'cos pass':>9s} {'(min)':>7s} {'cos q':>7s} {f'top{k}':>6s} {'top1':>5s} {'load s':>6s}"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = f"{r['ratio_vs_torch']:.2f}" if r["ratio_vs_torch"] else "-"
        print(
            f"{r['backend']:10s} {r['passages_per_s']:8.1f} {r['spread_pct']:6.1f}% {ratio:>7s} "
            f"{r['query_ms_median']:6.2f} {r['query_ms_p95']:6.2f} {r['cos_passages_mean']:9.5f} "
            f"{r['cos_passages_min']:7.4f} {r['cos_queries_mean']:7.4f} {r[f'top{k}_overlap']:6.3f} "
            f"{r['top1_agree']:5.2f} {r['load_s']:6.1f}"
        )
    print(
        f"\npass/s: median of {args.repeats} interleaved rounds over {len(passages)} passages "
        f"(spread = (max-min)/median); q ms: embed_query, {len(questions)} questions x {args.query_rounds} "
        f"rounds; cos/top{k}: "
        "agreement with torch (brute-force search of the questions over the passages)."
    )
    result = {
        "benchmark": "embed",
        "machine": machine_line(),
        "threads": args.threads or os.cpu_count(),
        "batch_size": embedders["torch"].settings.embedding_batch_size,
        "n_passages": len(passages),
        "mean_tokens": round(statistics.mean(n_tokens), 1),
        "n_queries": len(questions),
        "repeats": args.repeats,
        "query_rounds": args.query_rounds,
        "rows": rows,
    }
    return result


# -- query ----------------------------------------------------------------------
def _percentiles(ms: list[float]) -> dict:
    return {
        "p50": round(float(np.percentile(ms, 50)), 2),
        "p95": round(float(np.percentile(ms, 95)), 2),
        "min": round(float(min(ms)), 2),
        "max": round(float(max(ms)), 2),
    }


def cmd_query(args: argparse.Namespace) -> dict:
    """Query-path latency over an existing index: query embedding, ``search`` and the
    whole extractive ``ask`` chain, one question at a time, plus the cold start of
    ``rag ask`` (a new process: imports, model and index loading, one answer)."""
    import subprocess

    from rag.chain import ask, build_chain
    from rag.engine import Engine
    from rag.settings import Settings

    index = Path(args.index)
    if not (index / "CURRENT").is_file():
        raise SystemExit(f"{index} holds no index: build one first, e.g. `rag eval --corpus "
                         f"{BENCH / 'corpus.json'} --questions {BENCH / 'queries_dev.json'} --index {index}`")
    update: dict = {"index_dir": index}
    if args.backend:
        update["embedding_backend"] = args.backend
    if args.query_backend:
        update["query_embedding_backend"] = args.query_backend
    settings = Settings().model_copy(update=update)
    if args.questions:
        from eval.question_sets import load_questions
        from rag.errors import RagError

        try:
            questions = [q.question for q in load_questions(args.questions)][: args.queries]
        except RagError as exc:
            raise SystemExit(str(exc)) from exc
        label = Path(args.questions).name
    else:
        questions = load_queries(Path(args.bench))[: args.queries]
        label = "MultiHop-RAG dev"
    if not questions:
        raise SystemExit("no questions to time")
    print(f"machine: {machine_line()}", flush=True)

    engine = Engine(settings)
    t = time.perf_counter()
    engine.retriever  # opens the index and builds the retriever
    qemb = engine.query_embedder
    qemb.warm_up()  # loads (or converts) the question model, as the app does at start
    warm_s = time.perf_counter() - t
    chain = build_chain(engine)
    for q in questions[:5]:  # warm-up: first-call allocations, caches
        ask(engine, q, [], settings, chain)
    # What a search embeds: the question without the publisher names and dates
    # that its metadata sub-searches match, nor the framing words (Retriever.content_query).
    embedded = [engine.retriever.content_query(q) for q in questions]
    tokens = qemb.count_tokens(questions)
    embedded_tokens = qemb.count_tokens(embedded)
    print(f"{len(engine.snapshot)} passages, backend {settings.embedding_backend} "
          f"(questions: {settings.query_embedding_backend}), "
          f"{len(questions)} questions ({label}, mean {statistics.mean(tokens):.0f} word pieces, "
          f"{statistics.mean(embedded_tokens):.0f} as embedded); "
          f"loaded in {warm_s:.1f}s", flush=True)

    embed_ms, first_ms, search_ms, ask_ms = [], [], [], []
    for q in embedded:
        t = time.perf_counter()
        qemb.embed_query(q)
        embed_ms.append((time.perf_counter() - t) * 1000)
    # The retriever caches per-sentence features (terms, flags) as it first meets
    # them: the first pass shows a fresh process, the second a running app.
    for q in questions:
        t = time.perf_counter()
        engine.search(q)
        first_ms.append((time.perf_counter() - t) * 1000)
    for q in questions:
        t = time.perf_counter()
        engine.search(q)
        search_ms.append((time.perf_counter() - t) * 1000)
    for q in questions:
        t = time.perf_counter()
        ask(engine, q, [], settings, chain)
        ask_ms.append((time.perf_counter() - t) * 1000)

    # Cold start: a fresh `rag ask` process per run, wall clock from spawn to exit.
    cold: list[float] = []
    rag_bin = Path(sys.executable).with_name("rag")
    cmd = [str(rag_bin) if rag_bin.exists() else sys.executable, *([] if rag_bin.exists() else ["-m", "rag.cli"]),
           "ask", questions[0], "--index", str(index), "-q"]
    env = dict(os.environ, RAG_EMBEDDING_BACKEND=settings.embedding_backend,
               RAG_QUERY_EMBEDDING_BACKEND=settings.query_embedding_backend)
    for _ in range(args.cold_runs):
        t = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        cold.append(time.perf_counter() - t)
        if proc.returncode != 0:
            raise SystemExit(f"`{' '.join(cmd)}` failed: {proc.stderr.strip()[-500:]}")

    rows = {
        "embed_query_ms": _percentiles(embed_ms),
        "search_first_pass_ms": _percentiles(first_ms),
        "search_ms": _percentiles(search_ms),
        "ask_ms": _percentiles(ask_ms),
        "cold_start_s": {"median": round(statistics.median(cold), 2), "runs": [round(c, 2) for c in cold]} if cold else None,
    }
    print()
    print(f"{'stage':22s} {'p50':>8s} {'p95':>8s} {'min':>8s} {'max':>8s}")
    for name in ("embed_query_ms", "search_first_pass_ms", "search_ms", "ask_ms"):
        r = rows[name]
        print(f"{name:22s} {r['p50']:8.2f} {r['p95']:8.2f} {r['min']:8.2f} {r['max']:8.2f}")
    if cold:
        print(f"{'rag ask cold start':22s} {rows['cold_start_s']['median']:7.2f}s (runs: {rows['cold_start_s']['runs']})")
    print(f"\n{len(questions)} {label} questions, one at a time; search = hybrid retrieval incl. the "
          "query embedding (first pass: sentence-feature caches cold; then warm, as in a running app); ask = search + extractive answer with citations; cold start = new process "
          "to printed answer.")
    return {
        "benchmark": "query",
        "machine": machine_line(),
        "index": str(index),
        "passages": len(engine.snapshot),
        "backend": settings.embedding_backend,
        "query_backend": settings.query_embedding_backend,
        "n_queries": len(questions),
        "questions": label,
        "mean_question_tokens": round(statistics.mean(tokens), 1),
        "mean_embedded_tokens": round(statistics.mean(embedded_tokens), 1),
        "load_s": round(warm_s, 2),
        **rows,
    }


# -- CLI ------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    # Options every benchmark takes (after its name: `embed --json OUT`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--bench", default=str(BENCH), help="MultiHop-RAG folder (corpus.json, queries_dev.json)")
    common.add_argument("--json", metavar="OUT", help="also write the numbers to this JSON file")
    common.add_argument("-v", "--verbose", action="store_true", help="log progress (exports etc.)")

    p = argparse.ArgumentParser(prog="python -m eval.bench", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="BENCHMARK")

    e = sub.add_parser(
        "embed", parents=[common], help="embedding backends: throughput, query latency, agreement with torch"
    )
    e.add_argument("--n", type=int, default=512, help="passages to embed (default 512)")
    e.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    e.add_argument("--repeats", "-r", type=int, default=3, help="interleaved timing rounds (default 3)")
    e.add_argument("--queries", type=int, default=200, help="questions for latency/top-k (default 200)")
    e.add_argument("--query-rounds", type=int, default=2, help="rounds over the questions (default 2)")
    e.add_argument("--k", type=int, default=10, help="top-k for the overlap (default 10)")
    e.add_argument("--threads", type=int, default=None, help="embedding threads (default: all cores)")
    e.add_argument("--batch-size", type=int, default=None, help="embedding batch size (default: settings)")
    e.add_argument(
        "--index",
        default=os.environ.get("RAG_INDEX", "index"),
        help="index dir whose .models/ caches the ONNX exports (default: $RAG_INDEX or ./index)",
    )
    e.set_defaults(func=cmd_embed)

    q = sub.add_parser(
        "query", parents=[common], help="query path over an index: embed_query, search, ask; cold start of `rag ask`"
    )
    q.add_argument("--index", default=os.environ.get("RAG_INDEX", "index"), help="an existing index (e.g. MultiHop-RAG's)")
    q.add_argument("--queries", type=int, default=200, help="questions to time (default 200)")
    q.add_argument("--questions", metavar="PATH", default=None,
                   help="time these questions instead (any set `rag eval` reads, e.g. eval/questions/seeds.jsonl)")
    q.add_argument("--backend", choices=BACKENDS, default=None, help="embedding backend (default: settings)")
    q.add_argument("--query-backend", choices=("same", *BACKENDS), default=None,
                   help="question embedding backend (default: settings)")
    q.add_argument("--cold-runs", type=int, default=3, help="fresh `rag ask` processes to time (default 3)")
    q.set_defaults(func=cmd_query)

    try:
        from eval import bench_scale
    except ImportError:  # pragma: no cover - the module ships with eval/
        bench_scale = None
    if bench_scale is not None and hasattr(bench_scale, "add_parser"):
        bench_scale.add_parser(sub, common)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:  # "sequence longer than the maximum" while counting whole sentences: expected here
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
    except ImportError:
        pass
    result = args.func(args)
    if args.json and result is not None:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
