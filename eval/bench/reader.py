"""``python -m eval.bench reader``: what a user waits for with ``--llm local``.

One process, one index, the questions asked in turn by the extractive chain and by
the local reader (A/B interleaved, the order alternating per question, so the
machine's drift hits both alike). For each side it times, from the moment the
question is asked:

- first text: the first ``TextEvent`` (what the user sees first; in local mode the
  extractive draft);
- complete: the ``DoneEvent`` (in local mode, the model's checked answer).

The model is loaded and warmed on one question before timing (the app keeps it
loaded); the load itself is timed and reported apart.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .common import BENCH, load_queries, machine_line, percentiles_ms


def add_parser(sub, common) -> None:
    p = sub.add_parser("reader", parents=[common],
                       help="local reader latency: first text and complete answer, interleaved with extractive")
    p.add_argument("--index", required=True, help="an existing index (e.g. MultiHop-RAG's)")
    p.add_argument("--queries", type=int, default=50, help="questions to time (default 50)")
    p.add_argument("--skip", type=int, default=0, help="start at this question of the set (default 0)")
    p.add_argument("--local-model", default="qwen2.5-0.5b", help="packaged model (default qwen2.5-0.5b)")
    p.set_defaults(func=cmd_reader)


def _timed_ask(engine, chain, settings, question: str) -> tuple[float, float]:
    from rag.chain import DoneEvent, TextEvent, stream

    t0 = time.perf_counter()
    first = None
    for event in stream(engine, question, settings=settings, chain=chain):
        if first is None and isinstance(event, TextEvent):
            first = time.perf_counter() - t0
        if isinstance(event, DoneEvent):
            break
    done = time.perf_counter() - t0
    return (first if first is not None else done) * 1000, done * 1000


def cmd_reader(args: argparse.Namespace) -> dict:
    from rag.chain import build_chain
    from rag.engine import Engine
    from rag.llm.models import ChatModels
    from rag.settings import Settings

    base = Settings().model_copy(update={"index_dir": Path(args.index)})
    extractive = base.model_copy(update={"answer_mode": "extractive"})
    local = base.model_copy(update={"answer_mode": "local", "local_model": args.local_model})
    questions = load_queries(Path(args.bench))[args.skip: args.skip + args.queries + 1]
    print(f"machine: {machine_line()}", flush=True)
    engine = Engine(base)
    models = ChatModels()
    chain = build_chain(engine, models)
    t = time.perf_counter()
    models.get(local)
    load_s = time.perf_counter() - t
    _timed_ask(engine, chain, local, questions[0])  # warm: the prompt prefix, the index, the embedder
    _timed_ask(engine, chain, extractive, questions[0])
    times: dict[str, dict[str, list[float]]] = {s: {"first": [], "complete": []} for s in ("extractive", "local")}
    for i, q in enumerate(questions[1:]):
        order = [("extractive", extractive), ("local", local)]
        if i % 2:
            order.reverse()
        for name, settings in order:
            first, done = _timed_ask(engine, chain, settings, q)
            times[name]["first"].append(first)
            times[name]["complete"].append(done)
    engine.close()
    result = {
        "machine": machine_line(), "index": str(args.index), "questions": len(questions) - 1,
        "local_model": args.local_model, "model_load_s": round(load_s, 2),
        **{name: {k: percentiles_ms(v) for k, v in t.items()} for name, t in times.items()},
    }
    print(f"{result['questions']} questions, interleaved; model {args.local_model} loaded in {load_s:.1f} s")
    for name in ("extractive", "local"):
        f, c = result[name]["first"], result[name]["complete"]
        print(f"{name:>10}: first text p50 {f['p50']:.0f} ms p95 {f['p95']:.0f} ms | "
              f"complete p50 {c['p50']:.0f} ms p95 {c['p95']:.0f} ms")
    return result
