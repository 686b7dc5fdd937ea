"""``python -m eval.bench ingest``: `rag ingest` against a plain LangChain pipeline, whole processes.

Both ingest the same first N MultiHop-RAG articles, each in a fresh process timed
from spawn to exit (imports, model loading, chunking, embedding and, for `rag
ingest`, writing the index), interleaved round by round so that the shared
machine's load hits them alike. ``--baseline-code DIR`` adds `rag ingest` run from
another checkout (e.g. a worktree of main) as a third contender.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .common import load_corpus, machine_line, rotated

HERE = Path(__file__).resolve().parents[2]  # the checkout this benchmark runs from


def run_process(cmd: list[str], code: Path, env_extra: dict | None = None) -> tuple[float, float, str]:
    """Wall seconds and CPU seconds (user + system, threads included) of one process, and its output."""
    env = dict(os.environ, PYTHONPATH=str(code), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", **(env_extra or {}))
    before = os.times()
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=code, env=env, capture_output=True, text=True)
    took = time.perf_counter() - t
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    if proc.returncode != 0:
        raise SystemExit(f"`{' '.join(cmd)}` failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    return took, cpu, proc.stdout


@dataclass(frozen=True)
class Contender:
    name: str
    code: Path  # checkout whose code runs
    plain: bool = False  # the plain LangChain pipeline instead of `rag ingest`
    env: tuple = ()  # extra environment (settings), as (name, value) pairs


def cmd_ingest(args: argparse.Namespace) -> dict:
    articles = load_corpus(Path(args.bench))[: args.articles]
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-", dir=args.tmp))
    data = work / "articles.json"
    data.write_text(json.dumps(articles), encoding="utf-8")
    contenders = [Contender("rag ingest", HERE), Contender("plain LangChain", HERE, plain=True)]
    if args.late_sentences:
        contenders.append(Contender("rag ingest, late sentences", HERE, env=(("RAG_SENTENCE_VECTORS", "late"),)))
    if args.pooled_passages:
        contenders.append(Contender("rag ingest, pooled passages", HERE, env=(("RAG_PASSAGE_VECTORS", "pooled"),)))
    if args.baseline_code:
        contenders.append(Contender("rag ingest (baseline code)", Path(args.baseline_code).resolve()))

    def command(c: Contender, i: int) -> list[str]:
        if c.plain:
            return [sys.executable, "-m", "eval.bench.plain", str(data)]
        return [sys.executable, "-m", "cli.main", "ingest", str(data), "--index", str(work / f"index-{i}"), "-q"]

    print(f"machine: {machine_line()}", flush=True)
    print(f"{len(articles)} MultiHop-RAG articles; contenders: {', '.join(c.name for c in contenders)}", flush=True)
    wall: dict[str, list[float]] = {c.name: [] for c in contenders}
    cpu: dict[str, list[float]] = {c.name: [] for c in contenders}
    details: dict[str, str] = {}
    try:
        run = 0
        for r in range(-1 if args.warmup else 0, args.repeats):
            for c in rotated(contenders, max(r, 0)):
                took, used, out = run_process(command(c, run), c.code, dict(c.env))
                shutil.rmtree(work / f"index-{run}", ignore_errors=True)
                run += 1
                label = "warm-up" if r < 0 else f"round {r + 1}"
                print(f"  {label:8s} {c.name:34s} {took:7.1f} s wall {used:7.1f} s CPU", flush=True)
                if r >= 0:
                    wall[c.name].append(took)
                    cpu[c.name].append(used)
                    details[c.name] = out.strip().splitlines()[-1] if out.strip() else ""
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    med = {name: statistics.median(v) for name, v in wall.items()}
    med_cpu = {name: statistics.median(v) for name, v in cpu.items()}
    print()
    for c in contenders:
        print(f"{c.name:34s} median {med[c.name]:7.1f} s wall, {med_cpu[c.name]:7.1f} s CPU  "
              f"runs {[round(t, 1) for t in wall[c.name]]}  {details[c.name][:100]}")
    ours = med["rag ingest"]
    ratio = med["plain LangChain"] / ours
    ratio_cpu = med_cpu["plain LangChain"] / med_cpu["rag ingest"]
    print(f"\ningest speed-up over the plain LangChain pipeline: {ratio:.2f}x wall, {ratio_cpu:.2f}x CPU "
          f"(whole processes, {len(articles)} articles)")
    out = {
        "benchmark": "ingest",
        "machine": machine_line(),
        "articles": len(articles),
        "wall_s": {name: [round(t, 2) for t in v] for name, v in wall.items()},
        "cpu_s": {name: [round(t, 2) for t in v] for name, v in cpu.items()},
        "median_wall_s": {name: round(v, 2) for name, v in med.items()},
        "median_cpu_s": {name: round(v, 2) for name, v in med_cpu.items()},
        "ratio_plain_over_rag": round(ratio, 3),
        "ratio_plain_over_rag_cpu": round(ratio_cpu, 3),
    }
    for c in contenders[2:]:
        r = med[c.name] / ours
        print(f"speed-up over {c.name}: {r:.2f}x wall, {med_cpu[c.name] / med_cpu['rag ingest']:.2f}x CPU")
        out[f"ratio_{c.name}"] = round(r, 3)
    return out


def add_parser(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("ingest", parents=[common],
                       help="`rag ingest` vs a plain LangChain pipeline (whole processes, interleaved)")
    p.add_argument("--articles", type=int, default=120, help="first N MultiHop-RAG articles (default 120)")
    p.add_argument("--repeats", "-r", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--no-warmup", dest="warmup", action="store_false",
                   help="skip the untimed first round (model conversion, file caches)")
    p.add_argument("--baseline-code", metavar="DIR", help="also time `rag ingest` from this checkout (e.g. main)")
    p.add_argument("--late-sentences", action="store_true",
                   help="also time `rag ingest` with late-chunked sentence vectors (RAG_SENTENCE_VECTORS=late)")
    p.add_argument("--pooled-passages", action="store_true",
                   help="also time `rag ingest` with pooled passage vectors (RAG_PASSAGE_VECTORS=pooled)")
    p.add_argument("--tmp", default=None, help="scratch folder (default: the system's)")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    p.set_defaults(func=cmd_ingest)
