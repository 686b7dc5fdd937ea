"""Turn ``results.json`` (see :mod:`eval.run`) into ``report.md``, PNG plots and a
compact summary table for the terminal.

    python -m eval.report OUT/results.json     (re-render a report)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# (label, section, key, higher is better)
COMPARISON_ROWS: tuple[tuple[str, str, str, bool], ...] = (
    ("Hits@4", "retrieval", "hits@4", True),
    ("Hits@10", "retrieval", "hits@10", True),
    ("MRR@10", "retrieval", "mrr@10", True),
    ("MAP@10", "retrieval", "map@10", True),
    ("Evidence recall@10", "retrieval", "evidence_recall@10", True),
    ("Answer accuracy", "answer", "accuracy", True),
    ("Accuracy when answered", "answer", "accuracy_answered", True),
    ("Answer token F1", "answer", "token_f1", True),
    ("Short answer EM", "answer", "short_em", True),
    ("Short answer F1", "answer", "short_f1", True),
    ("Short answer given", "answer", "short_given", True),
    ("Gold answer in the response", "answer", "contains", True),
    ("Conflicts: both values shown, each cited", "conflicts", "both_shown_cited", True),
    ("Conflicts: misled (only the conflicting value)", "conflicts", "misled", False),
    ("Answered (answerable questions)", "answer", "answered_rate", True),
    ("Citations verbatim", "citation", "valid", True),
    ("Citation support", "citation", "support", True),
    ("Abstention precision", "abstention", "precision", True),
    ("Abstention recall", "abstention", "recall", True),
)
LATENCY_ROWS = (("retrieve", "Retrieve"), ("answer", "Answer"), ("total", "Total"))
# Compact terminal table: (header, section, key)
TABLE_COLUMNS = (
    ("H@4", "retrieval", "hits@4"),
    ("H@10", "retrieval", "hits@10"),
    ("MRR", "retrieval", "mrr@10"),
    ("MAP", "retrieval", "map@10"),
    ("Acc", "answer", "accuracy"),
    ("AccAns", "answer", "accuracy_answered"),
    ("SaEM", "answer", "short_em"),
    ("SaF1", "answer", "short_f1"),
    ("CitOK", "citation", "valid"),
    ("CitSup", "citation", "support"),
    ("AbsP", "abstention", "precision"),
    ("AbsR", "abstention", "recall"),
)
WORST_N = 5
SNIPPET = 150


# ----------------------------------------------------------------------- formatting


def _get(summary: dict, section: str, key: str) -> float | None:
    sec = summary.get(section)
    return None if sec is None else sec.get(key)


def fmt(v: float | None, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def fmt_ms(v: float | None) -> str:
    return "—" if v is None else (f"{v:.0f} ms" if v >= 10 else f"{v:.1f} ms")


def _cell(text: Any) -> str:
    """Safe inside a Markdown table cell."""
    return " ".join(str(text if text is not None else "").split()).replace("|", "\\|")


def _short(text: str | None, n: int) -> str:
    t = " ".join((text or "").split())
    return t if len(t) <= n else t[: n - 1].rstrip() + "…"


def summary_table(results: dict) -> str:
    """A compact fixed-width table, one row per configuration."""
    names = list(results["configs"])
    width = max([len("config")] + [len(n) for n in names])
    head = f"{'config':<{width}}  " + " ".join(f"{h:>6}" for h, _, _ in TABLE_COLUMNS) + f" {'p50 ms':>7} {'p95 ms':>7}"
    lines = [head, "-" * len(head)]
    for name in names:
        s = results["configs"][name]["summary"]
        cells = [f"{fmt(_get(s, sec, key)):>6}" for _, sec, key in TABLE_COLUMNS]
        total = s["latency_ms"]["total"]
        p50 = "—" if total["p50"] is None else f"{total['p50']:.0f}"
        p95 = "—" if total["p95"] is None else f"{total['p95']:.0f}"
        lines.append(f"{name:<{width}}  " + " ".join(cells) + f" {p50:>7} {p95:>7}")
    c = results["configs"][names[0]]["summary"]["counts"] if names else {}
    if names:
        lines.append(
            f"({c['questions']} questions: {c['retrieval_scored']} scored for retrieval, "
            f"{c['answers_scored']} for answers, {c['unanswerable']} unanswerable. "
            "H@k/MRR/MAP: paper's rule on passage text; Acc: gold answer in the response; "
            "AccAns: same, over non-abstained; SaEM/SaF1: SQuAD exact match / token F1 of the short answer; CitOK: quote verbatim in article; "
            "CitSup: cited quote holds the answer or overlaps gold evidence; AbsP/AbsR: abstention precision/recall)"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- plots


def make_plots(results: dict, plots_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    plots_dir.mkdir(parents=True, exist_ok=True)
    configs = results["configs"]
    names = list(configs)
    out: list[Path] = []
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    def grouped(ax, groups: list[str], series: dict[str, list[float | None]]):
        x = np.arange(len(groups))
        width = 0.8 / max(1, len(series))
        for i, (label, values) in enumerate(series.items()):
            ys = [np.nan if v is None else v for v in values]
            xs = x + (i - (len(series) - 1) / 2) * width
            ax.bar(xs, ys, width, label=label, color=colors[i % len(colors)])
            for xi, v in zip(xs, values):
                if v == 0:  # a zero bar is invisible: say it is zero, not missing
                    ax.text(xi, 0.01, "0", ha="center", va="bottom", fontsize=7, color=colors[i % len(colors)])
        ax.set_xticks(x)
        ax.set_xticklabels(groups, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)

    # 1. By question type: one panel per metric, grouped bars per configuration.
    types = list(dict.fromkeys(t for c in configs.values() for t in c["by_type"]))
    metrics = (("hits@10", "Hits@10"), ("mrr@10", "MRR@10"), ("accuracy", "Answer accuracy"))
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4.2), squeeze=False)
    for ax, (key, label) in zip(axes[0], metrics):
        grouped(ax, types, {n: [configs[n]["by_type"].get(t, {}).get(key) for t in types] for n in names})
        ax.set_title(label)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(names), 6), fontsize=8, frameon=False)
    fig.suptitle("Metrics by question type (missing bar: not applicable)")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    out.append(_save(fig, plots_dir / "by_type.png"))
    plt.close(fig)

    # 2. By configuration: every [0, 1] metric, grouped bars per configuration.
    rows = [(label, sec, key) for label, sec, key, _ in COMPARISON_ROWS]
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(rows) + 1.2 * len(names)), 4.5))
    grouped(ax, [r[0] for r in rows], {n: [_get(configs[n]["summary"], sec, key) for _, sec, key in rows] for n in names})
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("Metrics by configuration (missing bar: not applicable)")
    fig.tight_layout()
    out.append(_save(fig, plots_dir / "by_config.png"))
    plt.close(fig)

    # 3. Latency: box plot per configuration for each stage.
    fig, axes = plt.subplots(1, len(LATENCY_ROWS), figsize=(4.5 * len(LATENCY_ROWS), 4), squeeze=False)
    for ax, (stage, label) in zip(axes[0], LATENCY_ROWS):
        data = [[r["timings"][f"{stage}_ms"] for r in configs[n]["records"] if f"{stage}_ms" in r["timings"]] for n in names]
        values = [v for d in data for v in d if v > 0]
        if values:
            ax.boxplot([d or [np.nan] for d in data], showfliers=True)
            ax.set_xticks(range(1, len(names) + 1))
            ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
            if max(values) / min(values) > 50:  # e.g. BM25 in 1 ms next to hybrid in 300 ms
                ax.set_yscale("log")
        ax.set_title(f"{label} latency (ms)")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out.append(_save(fig, plots_dir / "latency.png"))
    plt.close(fig)
    return out


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    return path


# ----------------------------------------------------------------------------- report


def worst_questions(records: list[dict], n: int = WORST_N) -> list[dict]:
    """Answerable questions, lowest MRR@10 first, then wrong answers, then lowest F1."""
    scored = [r for r in records if r["answerable"] and r["error"] is None]

    def key(r):
        mrr = r["retrieval"]["mrr@10"] if r["retrieval"] else 1.0
        correct = 1 if r["answer_correct"] or r["answer_correct"] is None and r["citation_support"] else 0
        return (mrr, correct, r["token_f1"] if r["token_f1"] is not None else 1.0)

    return sorted(scored, key=key)[:n]


def _config_section(name: str, cfg: dict) -> list[str]:
    s = cfg["summary"]
    c = s["counts"]
    lines = [f"### `{name}`", "", cfg["description"] + ".", ""]
    if cfg["overrides"]:
        lines += ["Overrides: " + ", ".join(f"`{k}={v}`" for k, v in cfg["overrides"].items()), ""]
    lines += [
        f"Index `{cfg['index']}` · {c['questions']} questions in {cfg['seconds']:.0f} s · "
        f"{c['answered']} answered, {c['abstained']} abstained, {c['citations']} citations"
        + (f", **{c['errors']} errors**" if c["errors"] else ""),
        "",
        "| metric | value | metric | value |",
        "|---|---|---|---|",
    ]
    left = [(label, _get(s, sec, key)) for label, sec, key, _ in COMPARISON_ROWS]
    right = [(f"{label} latency p50 / p95", f"{fmt_ms(s['latency_ms'][k]['p50'])} / {fmt_ms(s['latency_ms'][k]['p95'])}")
             for k, label in LATENCY_ROWS]
    half = (len(left) + 1) // 2
    col1, col2 = left[:half], left[half:] + right
    for i in range(max(len(col1), len(col2))):
        a = col1[i] if i < len(col1) else ("", None)
        b = col2[i] if i < len(col2) else ("", "")
        bv = b[1] if isinstance(b[1], str) else fmt(b[1])
        lines.append(f"| {a[0]} | {fmt(a[1]) if a[0] else ''} | {b[0]} | {bv} |")
    lines += ["", "By question type:", "", "| type | n | Hits@10 | MRR@10 | accuracy | short-answer F1 | abstained |", "|---|---|---|---|---|---|---|"]
    for t, v in cfg["by_type"].items():
        lines.append(f"| {_cell(t)} | {v['n']} | {fmt(v['hits@10'])} | {fmt(v['mrr@10'])} | {fmt(v['accuracy'])} | {fmt(v.get('short_f1'))} | {fmt(v['abstained'], 2)} |")
    lines += ["", f"Worst {WORST_N} questions (lowest MRR@10, then wrong answer):", ""]
    worst = worst_questions(cfg["records"])
    if not worst:
        lines.append("_none_")
    for r in worst:
        mrr = r["retrieval"]["mrr@10"] if r["retrieval"] else None
        lines.append(
            f"- **{_cell(r['id'])}** ({_cell(r['type'] or 'untyped')}) {_cell(r['question'])}  "
        )
        if r["query"] and r["query"] != r["question"]:
            lines.append(f"  standalone query: {_cell(r['query'])}  ")
        lines.append(
            f"  MRR@10 {fmt(mrr)} · answer {'correct' if r['answer_correct'] else 'wrong' if r['answer_correct'] is False else 'unscored'}"
            f" · gold: {_cell('; '.join(r['gold_answers'])) or '—'}  "
        )
        lines.append(f"  answered: {_cell(_short(r['answer'], 300))}  ")
        if r["evidence"]:
            lines.append(f"  gold evidence: “{_cell(_short(r['evidence'][0], SNIPPET))}”  ")
        lines.append("  retrieved:")
        for p in r["retrieved"][:5]:
            mark = " ✓" if p.get("relevant") else ""
            lines.append(f"  {p['rank']}. {_cell(p['title'])} ({_cell(p['source'] or 'unknown source')}){mark} — {_cell(_short(p['text'], SNIPPET))}")
        later = next((p for p in r["retrieved"][5:] if p.get("relevant")), None)
        if later is not None:
            lines.append(f"  … first relevant passage at rank {later['rank']}: {_cell(later['title'])} — {_cell(_short(later['text'], SNIPPET))}")
        elif r["retrieval"] is not None and not any(p.get("relevant") for p in r["retrieved"]):
            lines.append("  (no retrieved passage contains a gold quote)")
        lines.append("")
    return lines


def _comparison(configs: dict) -> list[str]:
    names = list(configs)
    lines = ["| metric | " + " | ".join(f"`{n}`" for n in names) + " |", "|---|" + "---|" * len(names)]
    for label, sec, key, higher in COMPARISON_ROWS:
        vals = [_get(configs[n]["summary"], sec, key) for n in names]
        lines.append(f"| {label} | " + " | ".join(_bold_best(vals, higher, fmt)) + " |")
    for stage, label in LATENCY_ROWS:
        for p in ("p50", "p95"):
            vals = [configs[n]["summary"]["latency_ms"][stage][p] for n in names]
            lines.append(f"| {label} latency {p} | " + " | ".join(_bold_best(vals, False, fmt_ms)) + " |")
    return lines


def _bold_best(vals: list[float | None], higher: bool, f) -> list[str]:
    present = [v for v in vals if v is not None]
    shown = [f(v) for v in vals]
    if len(vals) < 2 or len({f(v) for v in present}) < 2:  # nothing to tell apart at this precision
        return shown
    best = f(max(present) if higher else min(present))
    return [f"**{t}**" if v is not None and t == best else t for v, t in zip(vals, shown)]


def render_markdown(results: dict, plots: list[Path], out_dir: Path) -> str:
    meta, configs = results["meta"], results["configs"]
    q = meta["questions"]
    lines = ["# Evaluation report", ""]
    lines += [
        f"Run {meta['date']} (finished {meta['finished']}).",
        "",
        "## What was run",
        "",
        f"- **Corpus**: {', '.join(f'`{p}`' for p in meta['corpus']['paths'])} ({meta['corpus']['files']} file(s))",
    ]
    for ix in meta["corpus"]["indexes"]:
        lines.append(
            f"  - index `{ix['dir']}` ({ix['status']}, {ix['seconds']:.0f} s): {ix['articles']} articles, "
            f"{ix['passages']} passages, {ix['index_type']}; {ix['embedding_model']} ({ix['embedding_backend']}), "
            f"chunks {ix['chunk_max_tokens']}/{ix['chunk_overlap_tokens']} word pieces; fingerprint `{ix['fingerprint'][:10]}`"
        )
    types = ", ".join(f"{t} {n}" for t, n in q["types"].items())
    lines += [
        f"- **Questions**: `{q['path']}`, {q['n']} questions" + (f" (first {q['limit']})" if q["limit"] else "")
        + f": {q['answerable']} answerable ({q['with_evidence']} with gold evidence), {q['n'] - q['answerable']} unanswerable, "
        f"{q['follow_ups']} follow-ups asked with the conversation so far. Types: {types}.",
        f"- **Answerer**: `{meta['settings']['answer_mode']}`; embedding model `{meta['settings']['embedding_model']}`.",
        "- **Configurations**:",
    ]
    for n, c in configs.items():
        ov = ", ".join(f"`{k}={v}`" for k, v in c["overrides"].items()) or "no overrides"
        lines.append(f"  - `{n}` — {c['description']} ({ov})")
    if meta.get("command"):
        lines += [f"- **Command**: `{meta['command']}`"]
    lines += [""]
    if meta.get("attribution"):
        lines += [f"> Data: {meta['attribution']}", ""]

    lines += ["## Comparison", ""] + _comparison(configs) + [""]
    lines += [
        "Retrieval metrics cover answerable questions with gold evidence, over the passages the chain "
        "retrieved (top_k; with top_k < 10 the @10 metrics see fewer passages). Best value per row in bold.",
        "",
    ]
    for p in plots:
        rel = p.relative_to(out_dir).as_posix() if p.is_relative_to(out_dir) else str(p)
        lines += [f"![{p.stem}]({rel})", ""]

    lines += ["## Configurations", ""]
    for n, c in configs.items():
        lines += _config_section(n, c)

    lines += [
        "## How the numbers are computed",
        "",
        "- **Retrieval** (MultiHop-RAG paper's rule, `eval/metrics.py`): a retrieved passage is relevant when a gold "
        "evidence quote, with spaces and newlines removed, is a substring of the passage text (likewise squashed). "
        "Hits@k: a relevant passage in the top k; MRR@10: 1/rank of the first; MAP@10: per newly found quote, 1/rank, "
        "summed and divided by min(#quotes, 10); evidence recall@10: share of the quotes found in the top 10.",
        "- **Answer accuracy**: an acceptable answer appears in the response, ignoring case (the paper's rule), over "
        "answerable questions with gold answers; abstentions count as wrong (and score F1 0), whatever their wording. *Accuracy when answered* leaves out the "
        "questions the system abstained on. An extractive answerer quotes sentences, so one-word gold answers such "
        "as \"Yes\"/\"No\" are rarely found verbatim: read accuracy together with citation support. *Token F1*: "
        "SQuAD-style, citation markers removed. *Short answer EM / F1*: SQuAD's official exact match and token F1 "
        "(lower-cased, punctuation and a/an/the removed) of `short_answer` against the best gold answer; no short "
        "answer (or an abstention) scores 0. *Gold answer in the response*: the same as accuracy, named as in the "
        "SQuAD dev README.",
        "- **Conflicts** (question sets with `conflicting` values): *both shown, each cited*: the response shows a "
        "gold value and a conflicting one and each appears in some cited quote; *misled*: it shows a conflicting "
        "value and no gold one.",
        "- **Citations**: *verbatim*: share of all citations whose quote is an exact substring of the cited article's "
        "text in the index. *Support*: share of answered answerable questions where some cited quote contains an "
        "acceptable answer or shares 30+ characters with a gold evidence quote.",
        "- **Abstention**: unanswerable questions are the positive class; precision = abstentions that were on "
        "unanswerable questions, recall = unanswerable questions abstained on.",
        "- **Latency**: per question, after one untimed warm-up question; retrieve = the search, answer = "
        "answer composition, total = the whole chain including the follow-up rewrite.",
        "",
        "Per-question records (query, retrieved passages, answer, citations, scores, timings) are in `results.json`.",
    ]
    if meta.get("attribution"):
        lines += ["", "---", "", meta["attribution"] + " Keep this attribution wherever these results are shown."]
    return "\n".join(lines) + "\n"


def write_report(results: dict, out_dir: Path) -> tuple[Path, list[Path]]:
    out_dir = Path(out_dir)
    plots = make_plots(results, out_dir / "plots")
    report = out_dir / "report.md"
    report.write_text(render_markdown(results, plots, out_dir), encoding="utf-8")
    return report, plots


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m eval.report OUT/results.json", file=sys.stderr)
        return 2
    path = Path(argv[0])
    results = json.loads(path.read_text(encoding="utf-8"))
    report, _ = write_report(results, path.parent)
    print(summary_table(results))
    print(f"\nreport: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
