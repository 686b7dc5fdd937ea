"""Fit the extractive answerer's abstention model on several question sets, and report
precision/recall on each from data the model was not fitted on.

    python -m eval.calibrate NAME=OUT/results.json [NAME=OUT/results.json ...] [--folds 5] [--write]

Each ``results.json`` comes from a ``rag eval`` run with abstention switched off
(``RAG_ABSTAIN_THRESHOLD=-1000``), so every record carries the evidence features
the answerer computed (``evidence_features``: see ``rag/answer/abstain.py``).
Unanswerable questions are the positive class.

The model is a logistic regression over those features, each set weighted equally
(no set decides alone); its decision threshold is the one that maximises the mean
over the sets of the abstention F1, and is folded into the bias so that the
answerer abstains below log-odds 0 (``RAG_ABSTAIN_THRESHOLD``). Two held-out
figures per set:

- k-fold: each set's records are split into ``--folds`` parts; the model fitted on
  the other parts of every set decides each part;
- leave one set out: the model fitted on the other sets alone decides this one (a
  new kind of question).

``--write`` stores the model fitted on everything, with these figures, in
``rag/answer/abstain_weights.json`` (JSON, no pickle).

``--reader MODEL`` fits the local reader's decision instead (``rag/answer/reader.py``):
the runs are ``--config local`` ones with that packaged model, the features are the
extractive log-odds and the model's token signals each record keeps under
``reader.features``, and ``--write`` stores them under ``MODEL`` in
``rag/answer/reader_weights.json``. Fit SQuAD on its tuning half only
(``python -m eval.subset ... --half tuning --out DIR``).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

THRESHOLDS = np.round(np.arange(-4.0, 4.0, 0.05), 2)


def load(path: str, features: tuple[str, ...], reader: bool = False) -> dict[str, np.ndarray]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if reader:
        cfg = next(c for c in data["configs"].values() if c["overrides"].get("answer_mode") == "local")
    else:
        cfg = next(iter(data["configs"].values()))

    def feats(r: dict) -> dict | None:
        return ((r.get("reader") or {}).get("features")) if reader else r.get("evidence_features")

    rows = [r for r in cfg["records"] if r["error"] is None and feats(r)]
    return {
        "X": np.array([[feats(r).get(f, 0.0) for f in features] for r in rows], dtype=float),
        "unans": np.array([not r["answerable"] for r in rows]),
    }


def pr(abstain: np.ndarray, unans: np.ndarray) -> tuple[float | None, float | None]:
    both = float(np.sum(abstain & unans))
    return (both / abstain.sum() if abstain.sum() else None, both / unans.sum() if unans.sum() else None)


def _f1(abstain: np.ndarray, unans: np.ndarray) -> float:
    p, r = pr(abstain, unans)
    return 0.0 if not p or not r else 2 * p * r / (p + r)


def fit(sets: list[dict[str, np.ndarray]], c: float = 1.0) -> np.ndarray:
    """Weights (bias first feature) of log-odds that the question IS answerable, threshold folded in."""
    from sklearn.linear_model import LogisticRegression

    X = np.vstack([s["X"] for s in sets])
    y = np.concatenate([~s["unans"] for s in sets]).astype(int)
    weight = np.concatenate([np.full(len(s["X"]), 1.0 / len(s["X"])) for s in sets])
    model = LogisticRegression(C=c, fit_intercept=False, max_iter=5000)
    model.fit(X, y, sample_weight=weight * len(X))
    w = model.coef_[0].copy()
    scores = [s["X"] @ w for s in sets]
    best_t = max(THRESHOLDS, key=lambda t: np.mean([_f1(z < t, s["unans"]) for z, s in zip(scores, sets)]))
    w[0] -= best_t  # feature 0 is the constant 1: abstain below 0
    return w


def subset(s: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in s.items()}


def main(argv=None) -> int:
    from rag.answer.abstain import ABSTAIN_WEIGHTS, EVIDENCE_FEATURES
    from rag.answer.reader import READER_FEATURES, READER_WEIGHTS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", metavar="NAME=results.json")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--reader", metavar="MODEL", help="fit the local reader's decision for this packaged model")
    p.add_argument("--write", action="store_true", help=f"write the model to {ABSTAIN_WEIGHTS} (or {READER_WEIGHTS})")
    args = p.parse_args(argv)
    features = READER_FEATURES if args.reader else EVIDENCE_FEATURES
    assert features[0] == "bias"
    names, sets = [], []
    for item in args.runs:
        name, _, path = item.partition("=")
        names.append(name)
        sets.append(load(path, features, reader=bool(args.reader)))
    rng = random.Random(0)
    folds = []
    for s in sets:
        order = list(range(len(s["X"])))
        rng.shuffle(order)
        folds.append([np.array(sorted(order[i :: args.folds]), dtype=int) for i in range(args.folds)])
    held = [np.zeros(len(s["X"]), dtype=bool) for s in sets]
    for k in range(args.folds):
        train = [subset(s, np.setdiff1d(np.arange(len(s["X"])), f[k])) for s, f in zip(sets, folds)]
        w = fit(train)
        for i, (s, f) in enumerate(zip(sets, folds)):
            held[i][f[k]] = s["X"][f[k]] @ w < 0
    w_all = fit(sets)
    report: dict = {"sets": {}}
    for i, (name, s) in enumerate(zip(names, sets)):
        kp, kr = pr(held[i], s["unans"])
        others = [x for j, x in enumerate(sets) if j != i]
        lp, lr = pr(s["X"] @ fit(others) < 0, s["unans"]) if others else (None, None)
        fp, fr = pr(s["X"] @ w_all < 0, s["unans"])
        report["sets"][name] = {
            "questions": int(len(s["X"])), "unanswerable": int(s["unans"].sum()),
            "kfold": {"precision": kp, "recall": kr, "answerable_abstained": float(held[i][~s["unans"]].mean())},
            "leave_set_out": {"precision": lp, "recall": lr},
            "fitted_on_all": {"precision": fp, "recall": fr},
        }
    report["weights"] = {f: round(float(x), 5) for f, x in zip(features, w_all)}
    print(json.dumps(report, indent=1))
    if args.write and args.reader:
        data = json.loads(READER_WEIGHTS.read_text(encoding="utf-8")) if READER_WEIGHTS.exists() else {}
        data["about"] = ("The local reader's decision (rag/answer/reader.py), per packaged model: log-odds that "
                         "the articles answer the question; it abstains below 0. Fitted by `python -m eval.calibrate "
                         "--reader MODEL NAME=results.json ... --write`.")
        data.setdefault("models", {})[args.reader] = {
            "command": "python -m eval.calibrate --reader " + args.reader + " " + " ".join(args.runs) + " --write",
            "weights": report["weights"], "held_out": report["sets"],
        }
        READER_WEIGHTS.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {READER_WEIGHTS}")
    elif args.write:
        ABSTAIN_WEIGHTS.write_text(json.dumps({
            "about": "Abstention model of the extractive answerer (rag/answer/abstain.py): log-odds that the "
                     "articles answer the question; it abstains below RAG_ABSTAIN_THRESHOLD (0). Fitted by "
                     "`python -m eval.calibrate " + " ".join(args.runs) + " --write`.",
            "weights": report["weights"],
            "held_out": report["sets"],
        }, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {ABSTAIN_WEIGHTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
