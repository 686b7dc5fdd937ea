"""Train the short-answer span model on half of the SQuAD dev articles; report on the other half.

    python -m eval.train_spans --index DIR [--corpus .../squad-dev/corpus.json]
        [--questions .../squad-dev/questions.jsonl] [--write]

``DIR`` is an index of the SQuAD dev corpus (``rag eval`` builds one; any index of
those 30 articles works). For each answerable question, the sentence unit of its
article that holds a gold answer and most of the question's words is the "gold
sentence"; every candidate span of it (``rag.answer.spans``) is a training example,
positive when its token F1 with the best gold answer is at least 0.5. Articles are
split by title (sorted; even positions train, odd positions held out), so the
held-out figures come from articles the model never saw. ``--write`` stores the
weights as JSON in ``rag/answer/span_weights.json`` (no pickle), with the split and
the held-out figures.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "benchmarks" / "squad-dev"


def gold_sentences(store, questions):
    """(question, sentence text, unit) for answerable questions whose answer is in a unit of their article."""
    from rag.text.terms import sentence_terms

    by_title: dict[str, list[int]] = defaultdict(list)
    titles = {row: a.title for row, a in store.meta_by_row.items()}
    rows = store.units["article_row"]
    for u in range(len(store.units)):
        by_title[titles.get(int(rows[u]), "")].append(u)
    out = []
    for q in questions:
        if not q.answerable or q.type != "squad" or not q.evidence:
            continue
        title = q.evidence[0].title
        qst = set(sentence_terms(q.question))
        best = None
        for u in by_title.get(title, []):
            rec = store.units[u]
            text = store.article_text(int(rec["article_row"]))[int(rec["start"]):int(rec["end"])]
            if not any(a and a in text for a in q.answers):
                continue
            score = len(qst & set(sentence_terms(text)))
            if best is None or score > best[0]:
                best = (score, text, u)
        if best is not None:
            out.append((q, best[1], best[2], title))
    return out


def examples(items, tagger):
    """Per question: the feature matrix of its candidates and their F1 with the gold answers."""
    from eval.metrics import token_f1
    from rag.answer.spans import FEATURES, expected_kind, question_stems, sentence_features

    tagged = tagger.tag_many([(("unit", u), text) for _, text, u, _ in items])
    groups = []
    for (q, text, u, title), tg in zip(items, tagged):
        kind = expected_kind(q.question)
        if kind == "none" or not tg.spans:
            continue
        qs = question_stems(q.question)
        X = np.array([[d[f] for f in FEATURES] for d in sentence_features(tg, kind, qs)])
        f1 = np.array([token_f1(s.text, q.answers) for s in tg.spans])
        groups.append((q, title, X, f1, tg.spans))
    return groups


def evaluate(groups, w) -> dict[str, float]:

    f1s, ems = [], []
    for q, _, X, f1, spans in groups:
        i = int(np.argmax(X @ w))
        f1s.append(float(f1[i]))
        ems.append(float(_em(spans[i].text, q.answers)))
    return {"questions": len(groups), "f1": float(np.mean(f1s)), "em": float(np.mean(ems)),
            "oracle_f1": float(np.mean([g[3].max() for g in groups]))}


def _em(text: str, answers) -> bool:
    from eval.metrics import exact_match

    return exact_match(text, answers)


def fit_listwise(groups, l2: float = 1e-3, steps: int = 300, lr: float = 0.1) -> np.ndarray:
    """Softmax over each question's candidates (target: their F1, normalised), by Adam."""
    w = np.zeros(groups[0][2].shape[1])
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    targets = [(g[2], g[3] / g[3].sum()) for g in groups if g[3].sum() > 0]
    for t in range(1, steps + 1):
        grad = l2 * w
        for X, y in targets:
            z = X @ w
            p = np.exp(z - z.max())
            p /= p.sum()
            grad += X.T @ (p - y) / len(targets)
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        w -= lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return w


def fit(groups, c: float = 1.0) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    X = np.vstack([g[2] for g in groups])
    y = np.concatenate([g[3] >= 0.5 for g in groups]).astype(int)
    model = LogisticRegression(C=c, fit_intercept=False, max_iter=2000)
    model.fit(X, y)
    return model.coef_[0]


def main(argv=None) -> int:
    from rag.answer.spans import FEATURES, WEIGHTS_FILE, SpanTagger
    from rag.engine import Engine
    from rag.runtime import configure_process
    from rag.settings import Settings

    from eval.question_sets import load_questions

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--index", required=True)
    p.add_argument("--questions", default=str(SHARED / "questions.jsonl"))
    p.add_argument("--write", action="store_true", help=f"write the weights to {WEIGHTS_FILE}")
    args = p.parse_args(argv)
    configure_process()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    engine = Engine(Settings().model_copy(update={"index_dir": Path(args.index)}))
    store = engine.snapshot
    items = gold_sentences(store, load_questions(args.questions))
    titles = sorted({t for *_, t in items})
    train_titles = set(titles[::2])
    tagger = SpanTagger()
    groups = examples(items, tagger)
    train = [g for g in groups if g[1] in train_titles]
    held = [g for g in groups if g[1] not in train_titles]
    w = fit_listwise(train)
    report = {"train": evaluate(train, w), "held_out": evaluate(held, w)}
    pointwise = fit(train)
    print("pointwise logistic, held out:", evaluate(held, pointwise))
    print(json.dumps(report, indent=1))
    if args.write:
        WEIGHTS_FILE.write_text(json.dumps({
            "about": "Logistic model over short-answer span features (rag/answer/spans.py); "
                     "trained by `python -m eval.train_spans --index DIR --write` on the gold sentences "
                     "of the SQuAD dev articles listed in train_titles; held_out is measured on the others.",
            "features": list(FEATURES),
            "weights": {f: round(float(x), 5) for f, x in zip(FEATURES, w)},
            "train_titles": sorted(train_titles),
            "figures": report,
        }, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {WEIGHTS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
