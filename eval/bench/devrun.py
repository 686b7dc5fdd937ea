"""``python -m eval.bench devrun``: the full MultiHop-RAG dev run, this code against another checkout.

    python -m eval.bench devrun --baseline-code /tmp/store-base [--repeats 1]

Each run is a fresh ``python -m eval --corpus corpus.json --questions
queries_dev.json --index NEW --out NEW -q`` process: building the index of the 609
articles, asking the 511 questions, writing the report. The two checkouts run
alternately (the order rotated every round), timed from spawn to exit (wall and
CPU), and each run's summary line is printed, so speed and quality are compared
in one sitting on this shared machine.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from .common import machine_line, rotated
from .ingest import HERE, Contender, run_process


def cmd_devrun(args: argparse.Namespace) -> dict:
    bench = Path(args.bench)
    contenders = [Contender("this code", HERE), Contender("baseline code", Path(args.baseline_code).resolve())]
    work = Path(tempfile.mkdtemp(prefix="bench-devrun-", dir=args.tmp))
    print(f"machine: {machine_line()}", flush=True)
    wall: dict[str, list[float]] = {c.name: [] for c in contenders}
    cpu: dict[str, list[float]] = {c.name: [] for c in contenders}
    rows: dict[str, list[str]] = {c.name: [] for c in contenders}
    try:
        run = 0
        for r in range(args.repeats):
            for c in rotated(contenders, r):
                out = work / f"run-{run}"
                cmd = [sys.executable, "-m", "eval", "--corpus", str(bench / "corpus.json"), "--questions",
                       str(bench / "queries_dev.json"), "--index", str(out / "index"), "--out", str(out / "report"), "-q"]
                took, used, stdout = run_process(cmd, c.code)
                line = next((ln for ln in stdout.splitlines() if ln.startswith("default")), "")
                wall[c.name].append(took)
                cpu[c.name].append(used)
                rows[c.name].append(line)
                print(f"  round {r + 1} {c.name:14s} {took:7.1f} s wall {used:7.1f} s CPU   {line}", flush=True)
                if not args.keep:
                    shutil.rmtree(out, ignore_errors=True)
                run += 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    ratio = med["baseline code"] / med["this code"]
    ratio_cpu = med_cpu["baseline code"] / med_cpu["this code"]
    print(f"\ndev run (index 609 articles + 511 questions + report): this code {med['this code']:.0f} s, "
          f"baseline {med['baseline code']:.0f} s: {ratio:.2f}x faster wall, {ratio_cpu:.2f}x CPU")
    return {
        "benchmark": "devrun",
        "machine": machine_line(),
        "wall_s": wall,
        "cpu_s": cpu,
        "summary_rows": rows,
        "ratio_wall": round(ratio, 3),
        "ratio_cpu": round(ratio_cpu, 3),
    }


def add_parser(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("devrun", parents=[common],
                       help="full MultiHop-RAG dev run (index + questions + report): this code vs another checkout")
    p.add_argument("--baseline-code", required=True, metavar="DIR", help="the other checkout (e.g. a worktree of main)")
    p.add_argument("--repeats", "-r", type=int, default=1, help="interleaved rounds (default 1)")
    p.add_argument("--tmp", default=None, help="scratch folder (default: the system's)")
    p.add_argument("--keep", action="store_true", help="keep the indexes and reports")
    p.set_defaults(func=cmd_devrun)
