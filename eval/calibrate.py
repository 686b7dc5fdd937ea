"""Fit the extractive answerer's abstention thresholds on several question sets, and
report precision/recall on each from data the thresholds were not fitted on.

    python -m eval.calibrate NAME=OUT/results.json [NAME=OUT/results.json ...] [--folds 5]

Each ``results.json`` comes from a ``rag eval`` run with abstention switched off
(``RAG_ABSTAIN_THRESHOLD=-9 RAG_MULTI_ABSTAIN_THRESHOLD=-9``), so every record
carries the evidence strength (``confidence``) the answerer would compare with a
threshold, and whether it was measured per outlet or clue (``multi_article``, which
has its own threshold). A question is abstained on when its confidence is below
its threshold; unanswerable questions are the positive class.

The objective is the mean over the sets of the abstention F1, so no set decides
alone. Two held-out figures per set:

- k-fold: each set's records are split into ``--folds`` parts; the thresholds
  fitted on the other parts of every set decide each part;
- leave one set out: the thresholds fitted on the other sets decide this one (a
  new kind of question).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

SINGLE = np.round(np.arange(0.30, 1.60, 0.01), 2)
MULTI = np.round(np.arange(0.00, 1.60, 0.02), 2)


def load(path: str) -> dict[str, np.ndarray]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    cfg = next(iter(data["configs"].values()))
    rows = [r for r in cfg["records"] if r["error"] is None and r.get("confidence") is not None]
    return {
        "conf": np.array([r["confidence"] for r in rows], dtype=float),
        "multi": np.array([bool(r.get("multi_article")) for r in rows]),
        "unans": np.array([not r["answerable"] for r in rows]),
    }


def decide(s: dict[str, np.ndarray], ts: float, tm: float) -> np.ndarray:
    return s["conf"] < np.where(s["multi"], tm, ts)


def pr(abstain: np.ndarray, unans: np.ndarray) -> tuple[float | None, float | None]:
    both = float(np.sum(abstain & unans))
    p = both / abstain.sum() if abstain.sum() else None
    r = both / unans.sum() if unans.sum() else None
    return p, r


def _f1(abstain: np.ndarray, unans: np.ndarray) -> float:
    p, r = pr(abstain, unans)
    if not p or not r:
        return 0.0
    return 2 * p * r / (p + r)


def fit(sets: list[dict[str, np.ndarray]]) -> tuple[float, float]:
    """Thresholds maximising the mean abstention F1 over the sets (ties: the lower ones)."""
    best, arg = -1.0, (float(SINGLE[0]), float(MULTI[0]))
    has_multi = any(s["multi"].any() for s in sets)
    for ts in SINGLE:
        for tm in (MULTI if has_multi else MULTI[:1]):
            score = float(np.mean([_f1(decide(s, ts, tm), s["unans"]) for s in sets]))
            if score > best + 1e-12:
                best, arg = score, (float(ts), float(tm))
    return arg


def subset(s: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in s.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", metavar="NAME=results.json")
    p.add_argument("--folds", type=int, default=5)
    args = p.parse_args(argv)
    names, sets = [], []
    for item in args.runs:
        name, _, path = item.partition("=")
        names.append(name)
        sets.append(load(path))
    rng = random.Random(0)
    folds = []
    for s in sets:
        order = list(range(len(s["conf"])))
        rng.shuffle(order)
        folds.append([np.array(sorted(order[i :: args.folds]), dtype=int) for i in range(args.folds)])
    held = [np.zeros(len(s["conf"]), dtype=bool) for s in sets]
    for k in range(args.folds):
        train = [subset(s, np.setdiff1d(np.arange(len(s["conf"])), f[k])) for s, f in zip(sets, folds)]
        ts, tm = fit(train)
        for i, (s, f) in enumerate(zip(sets, folds)):
            held[i][f[k]] = decide(subset(s, f[k]), ts, tm)
    ts_all, tm_all = fit(sets)
    report = {"thresholds": {"abstain_threshold": ts_all, "multi_abstain_threshold": tm_all}, "sets": {}}
    for i, (name, s) in enumerate(zip(names, sets)):
        kp, kr = pr(held[i], s["unans"])
        others = [x for j, x in enumerate(sets) if j != i]
        lo = fit(others) if others else (ts_all, tm_all)
        lp, lr = pr(decide(s, *lo), s["unans"])
        fp, fr = pr(decide(s, ts_all, tm_all), s["unans"])
        answerable = ~s["unans"]
        report["sets"][name] = {
            "questions": int(len(s["conf"])), "unanswerable": int(s["unans"].sum()),
            "kfold": {"precision": kp, "recall": kr,
                      "answerable_abstained": float(held[i][answerable].mean()) if answerable.any() else None},
            "leave_set_out": {"precision": lp, "recall": lr, "thresholds": list(lo)},
            "fitted_on_all": {"precision": fp, "recall": fr},
        }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
