"""Quick MultiHop-RAG retrieval check (the paper's metric) for one or more modes.

    python -m eval.retrieval_check [--index DIR] [--modes hybrid bm25 dense]
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from eval.metrics import mean_metrics, retrieval_metrics
from eval.question_sets import load_questions
from rag.engine import Engine
from rag.settings import Settings

BENCH = Path(__file__).resolve().parent.parent.parent / "shared" / "benchmarks" / "multihop-rag"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--index", default="index-multihop")
    p.add_argument("--bench", default=str(BENCH))
    p.add_argument("--modes", nargs="+", default=["hybrid", "bm25", "dense"])
    p.add_argument("--k", type=int, default=10)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    engine = Engine(Settings().model_copy(update={"index_dir": Path(args.index)}))
    if not engine.has_index():
        t = time.perf_counter()
        engine.ingest([Path(args.bench) / "corpus.json"])
        print(f"indexed in {time.perf_counter() - t:.0f}s")
    questions = [q for q in load_questions(Path(args.bench) / "queries_dev.json") if q.answerable]
    for mode in args.modes:
        rows, t = [], time.perf_counter()
        for q in questions:
            hits = engine.search(q.question, k=args.k, mode=mode).hits
            rows.append(retrieval_metrics([h.passage.text for h in hits], [e.quote for e in q.evidence]))
        m = mean_metrics(rows)
        ms = (time.perf_counter() - t) * 1000 / len(questions)
        print(f"{mode:7s} " + "  ".join(f"{k} {v:.4f}" for k, v in m.items()) + f"  ({ms:.1f} ms/query)")


if __name__ == "__main__":
    main()
