"""``python -m eval.bench query``: the query path over an existing index."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


from .common import BENCH, load_queries, machine_line, percentiles_ms


def cmd_query(args: argparse.Namespace) -> dict:
    """Query-path latency over an existing index: query embedding, ``search`` and the
    whole extractive ``ask`` chain, one question at a time, plus the cold start of
    ``rag ask`` (a new process: imports, model and index loading, one answer)."""

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
    cmd = [str(rag_bin) if rag_bin.exists() else sys.executable, *([] if rag_bin.exists() else ["-m", "cli.main"]),
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
        "embed_query_ms": percentiles_ms(embed_ms),
        "search_first_pass_ms": percentiles_ms(first_ms),
        "search_ms": percentiles_ms(search_ms),
        "ask_ms": percentiles_ms(ask_ms),
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


