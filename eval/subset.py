"""Re-summarise a ``rag eval`` run over one half of the SQuAD dev articles.

    python -m eval.subset OUT/results.json --questions QUESTIONS.jsonl --half tuning|held-out [--out DIR]

The halves are the span model's (``rag/answer/span_weights.json``, ``train_titles``:
every other title, sorted): "tuning" is the articles anything was fitted on, and
"held-out" the others, which nothing in the answerer has seen. A question about an
absent article has no title; those are split by a stable hash of their id, so each
half keeps its share of them.

Prints the summary table; ``--out`` also writes the subset as a ``results.json``
(e.g. for ``python -m eval.calibrate``).
"""

from __future__ import annotations

import argparse
import json
import zlib
from pathlib import Path

SPAN_WEIGHTS = Path(__file__).resolve().parent.parent / "rag" / "answer" / "span_weights.json"


def tuning_titles() -> set[str]:
    return set(json.loads(SPAN_WEIGHTS.read_text(encoding="utf-8"))["train_titles"])


def question_titles(path: Path) -> dict[str, str | None]:
    """Question id → the title of its gold article (None for an absent article)."""
    out: dict[str, str | None] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            q = json.loads(line)
            out[str(q["id"])] = next((e.get("title") for e in q.get("evidence") or [] if e.get("title")), None)
    return out


def in_tuning_half(question_id: str, title: str | None, titles: set[str]) -> bool:
    if title is None:
        return zlib.crc32(question_id.encode("utf-8")) % 2 == 0
    return title in titles


def main(argv: list[str] | None = None) -> int:
    from eval.report import summary_table
    from eval.run import by_type, summarise

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path)
    p.add_argument("--questions", type=Path, required=True, help="the SQuAD questions file the run asked")
    p.add_argument("--half", choices=("tuning", "held-out"), required=True)
    p.add_argument("--out", type=Path, help="write the subset's results.json here")
    args = p.parse_args(argv)
    titles, by_id = tuning_titles(), question_titles(args.questions)
    data = json.loads(args.results.read_text(encoding="utf-8"))
    want = args.half == "tuning"
    for cfg in data["configs"].values():
        records = [r for r in cfg["records"]
                   if str(r["id"]) in by_id and in_tuning_half(str(r["id"]), by_id[str(r["id"])], titles) == want]
        cfg["records"], cfg["summary"], cfg["by_type"] = records, summarise(records), by_type(records)
    data.setdefault("meta", {})["subset"] = f"SQuAD dev, {args.half} half of the articles"
    print(summary_table(data))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
