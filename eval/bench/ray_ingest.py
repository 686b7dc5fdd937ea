"""``python -m eval.bench ray``: `rag ingest --ray` against plain `rag ingest`, whole processes.

The same first N MultiHop-RAG articles (one file per article, as a folder of news
would be), each run a fresh process into a fresh index, interleaved round by round.
A local Ray cluster starts processes the driver does not wait for (GCS, raylet,
workers), so a process's own CPU times miss most of Ray's work: CPU here is the
whole machine's busy time during the run (``/proc/stat``), which means something only
on an otherwise quiet machine; the load average is printed with each run.

The per-worker throughput the sizing table needs comes from the actors themselves:
`rag ingest --ray -v` logs the passages each embedding actor embedded and the
seconds it spent embedding them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .common import load_corpus, machine_line, rotated

HERE = Path(__file__).resolve().parents[2]
PER_ACTOR = re.compile(r"embedding: (\d+) passages and (\d+) sentence units in ([\d.]+) actor-seconds, "
                       r"([\d.]+) passages/s per actor \((\d+) actors\)")


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (all cores; /proc/stat, not idle or iowait)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in fields]
    busy = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)
    return busy / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Contender:
    name: str
    args: tuple[str, ...]


def run_one(cmd: list[str]) -> tuple[float, float, str]:
    env = dict(os.environ, PYTHONPATH=str(HERE), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               RAY_ADDRESS="")  # always a fresh local cluster, never one left in the environment
    busy0, t = machine_busy_s(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=HERE, env=env, capture_output=True, text=True)
    took, busy = time.perf_counter() - t, machine_busy_s() - busy0
    if proc.returncode != 0:
        raise SystemExit(f"`{' '.join(cmd)}` failed ({proc.returncode}): {proc.stderr.strip()[-1500:]}")
    return took, busy, proc.stderr


def cmd_ray(args: argparse.Namespace) -> dict:
    articles = load_corpus(Path(args.bench))[: args.articles]
    work = Path(tempfile.mkdtemp(prefix="bench-ray-", dir=args.tmp))
    folder = work / "articles"
    folder.mkdir()
    for i, a in enumerate(articles):  # one file per article: Ray reads files in parallel tasks
        (folder / f"{i:04d}.json").write_text(json.dumps(a), encoding="utf-8")
    contenders = [Contender("rag ingest", ())]
    contenders += [Contender(f"rag ingest --ray, {w} actor{'s' if w > 1 else ''}", ("--ray", "--ray-workers", str(w)))
                   for w in args.workers]
    print(f"machine: {machine_line()}", flush=True)
    print(f"{len(articles)} MultiHop-RAG articles as {len(articles)} files; {args.repeats} interleaved rounds", flush=True)
    wall: dict[str, list[float]] = {c.name: [] for c in contenders}
    busy: dict[str, list[float]] = {c.name: [] for c in contenders}
    actor_rates: dict[str, list[float]] = {c.name: [] for c in contenders}
    run = 0
    try:
        for r in range(args.repeats):
            for c in rotated(contenders, r):
                index = work / f"index-{run}"
                cmd = [sys.executable, "-m", "cli.main", "ingest", str(folder), "--index", str(index), "-q", "-v", *c.args]
                took, used, err = run_one(cmd)
                shutil.rmtree(index, ignore_errors=True)
                run += 1
                wall[c.name].append(took)
                busy[c.name].append(used)
                m = PER_ACTOR.search(err)
                if m:
                    actor_rates[c.name].append(float(m.group(4)))
                load = os.getloadavg()[0]
                rate = f"  {float(m.group(4)):.1f} passages/s per actor" if m else ""
                print(f"  round {r + 1} {c.name:30s} {took:7.1f} s wall {used:7.1f} s machine CPU  "
                      f"(load {load:.1f}){rate}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print()
    base_wall = statistics.median(wall["rag ingest"])
    base_busy = statistics.median(busy["rag ingest"])
    out: dict = {"benchmark": "ray", "machine": machine_line(), "articles": len(articles), "runs": {}}
    for c in contenders:
        w, b = statistics.median(wall[c.name]), statistics.median(busy[c.name])
        rates = actor_rates[c.name]
        line = f"{c.name:30s} median {w:7.1f} s wall, {b:7.1f} s machine CPU"
        if c.name != "rag ingest":
            line += f"; overhead {w / base_wall:.2f}x wall, {b / base_busy:.2f}x CPU"
        if rates:
            line += f"; {statistics.median(rates):.1f} passages/s per actor (while embedding)"
        print(line)
        out["runs"][c.name] = {"wall_s": [round(x, 2) for x in wall[c.name]], "machine_cpu_s": [round(x, 2) for x in busy[c.name]],
                               "passages_per_s_per_actor": [round(x, 2) for x in rates]}
    return out


def add_parser(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("ray", parents=[common],
                       help="`rag ingest --ray` (local Ray cluster) vs plain `rag ingest` (whole processes, interleaved)")
    p.add_argument("--articles", type=int, default=120, help="first N MultiHop-RAG articles (default 120)")
    p.add_argument("--repeats", "-r", type=int, default=2, help="interleaved rounds (default 2)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="embedding actors to try (default 1 2)")
    p.add_argument("--tmp", default=None, help="scratch folder (default: the system's)")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    p.set_defaults(func=cmd_ray)
