"""``python -m eval.bench``: the benchmark commands."""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from rag.runtime import configure_process

from . import devrun, embed, ingest, query, ray_ingest, reader, scale, store
from .common import BACKENDS, BENCH


def build_parser() -> argparse.ArgumentParser:
    # Options every benchmark takes (after its name: `embed --json OUT`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--bench", default=str(BENCH), help="MultiHop-RAG folder (corpus.json, queries_dev.json)")
    common.add_argument("--json", metavar="OUT", help="also write the numbers to this JSON file")
    common.add_argument("-v", "--verbose", action="store_true", help="log progress (exports etc.)")

    p = argparse.ArgumentParser(prog="python -m eval.bench", description="Benchmarks, one subcommand each.")
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
    e.set_defaults(func=embed.cmd_embed)

    q = sub.add_parser(
        "query", parents=[common], help="query path over an index: embed_query, search, ask; cold start of `rag ask`"
    )
    q.add_argument("--index", default=os.environ.get("RAG_INDEX"), required=not os.environ.get("RAG_INDEX"),
                   help="an existing index (e.g. MultiHop-RAG's; default $RAG_INDEX)")
    q.add_argument("--queries", type=int, default=200, help="questions to time (default 200)")
    q.add_argument("--questions", metavar="PATH", default=None,
                   help="time these questions instead (any set `rag eval` reads, e.g. eval/questions/seeds.jsonl)")
    q.add_argument("--backend", choices=BACKENDS, default=None, help="embedding backend (default: settings)")
    q.add_argument("--query-backend", choices=("same", *BACKENDS), default=None,
                   help="question embedding backend (default: settings)")
    q.add_argument("--cold-runs", type=int, default=3, help="fresh `rag ask` processes to time (default 3)")
    q.set_defaults(func=query.cmd_query)

    scale.add_parser(sub, common)
    ingest.add_parser(sub, common)
    store.add_parser(sub, common)
    devrun.add_parser(sub, common)
    ray_ingest.add_parser(sub, common)
    reader.add_parser(sub, common)
    return p


def main(argv: list[str] | None = None) -> int:
    configure_process()
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
