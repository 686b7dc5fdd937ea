"""``python -m eval.bench embed``: the embedding backends side by side."""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import numpy as np

from .common import build_passages, load_corpus, load_queries, machine_line, make_embedder, rotated, timed, top_k


def cmd_embed(args: argparse.Namespace) -> dict:
    backends = list(dict.fromkeys(args.backends))
    bench = Path(args.bench)
    articles = load_corpus(bench)
    questions = load_queries(bench)[: args.queries]

    print(f"machine: {machine_line()}", flush=True)
    # torch is always loaded: it is the reference for the quality numbers.
    embedders = {}
    load_s = {}
    for b in dict.fromkeys(["torch", *backends]):
        secs, emb = timed(lambda b=b: make_embedder(b, args.threads, args.batch_size))
        # First real use loads (or exports) the model: timed as "load".
        extra, _ = timed(lambda emb=emb: emb.embed(["warm up"]))
        embedders[b] = emb
        load_s[b] = secs + extra
        print(f"loaded {b:10s} in {load_s[b]:.1f}s", flush=True)

    passages = build_passages(articles, embedders["torch"], args.n)
    n_tokens = embedders["torch"].count_tokens(passages)
    print(
        f"{len(passages)} passages (word pieces: mean {statistics.mean(n_tokens):.0f}, "
        f"max {max(n_tokens)}), {len(questions)} questions, {args.repeats} rounds",
        flush=True,
    )

    # Warm-up: one batch of passages and a few questions each.
    for b in backends:
        embedders[b].embed(passages[: min(len(passages), 64)])
        for q in questions[:5]:
            embedders[b].embed_query(q)

    # Throughput: R rounds, backends interleaved (rotated start).
    rates: dict[str, list[float]] = {b: [] for b in backends}
    vectors: dict[str, np.ndarray] = {}
    for r in range(args.repeats):
        for b in rotated(backends, r):
            secs, vecs = timed(lambda b=b: embedders[b].embed(passages))
            rates[b].append(len(passages) / secs)
            vectors[b] = vecs
            print(f"  round {r + 1}: {b:10s} {rates[b][-1]:7.1f} passages/s", flush=True)
    if "torch" not in vectors:
        vectors["torch"] = embedders["torch"].embed(passages)

    # Query latency: one question at a time. Each backend takes the whole question
    # list in a block (rounds rotate the order): interleaving single questions would
    # time each backend against the previous one's still-spinning worker threads.
    lat: dict[str, list[float]] = {b: [] for b in backends}
    qvecs: dict[str, list[np.ndarray]] = {b: [] for b in dict.fromkeys(["torch", *backends])}
    for r in range(args.query_rounds):
        for b in rotated(backends, r):
            for q in questions:
                secs, v = timed(lambda b=b, q=q: embedders[b].embed_query(q))
                lat[b].append(secs * 1000)
                if r == 0:
                    qvecs[b].append(v)
    if "torch" not in backends:
        qvecs["torch"] = list(embedders["torch"].embed(questions))
    qmat = {b: np.stack(v) for b, v in qvecs.items()}

    # Quality vs torch.
    ref_top = top_k(qmat["torch"], vectors["torch"], args.k)
    rows = []
    for b in backends:
        cos = np.sum(vectors[b] * vectors["torch"], axis=1)
        qcos = np.sum(qmat[b] * qmat["torch"], axis=1)
        top = top_k(qmat[b], vectors[b], args.k)
        overlap = np.mean([len(set(a) & set(c)) / len(a) for a, c in zip(top, ref_top)])
        top1 = float(np.mean(top[:, 0] == ref_top[:, 0]))
        rate = statistics.median(rates[b])
        rows.append(
            {
                "backend": b,
                "load_s": round(load_s[b], 2),
                "passages_per_s": round(rate, 2),
                "passages_per_s_runs": [round(x, 2) for x in rates[b]],
                "spread_pct": round(100 * (max(rates[b]) - min(rates[b])) / rate, 1),
                "query_ms_median": round(statistics.median(lat[b]), 2),
                "query_ms_p95": round(float(np.percentile(lat[b], 95)), 2),
                "cos_passages_mean": round(float(cos.mean()), 5),
                "cos_passages_min": round(float(cos.min()), 5),
                "cos_queries_mean": round(float(qcos.mean()), 5),
                "cos_queries_min": round(float(qcos.min()), 5),
                f"top{args.k}_overlap": round(float(overlap), 4),
                "top1_agree": round(top1, 4),
            }
        )
    torch_rate = next((r["passages_per_s"] for r in rows if r["backend"] == "torch"), None)
    for r in rows:
        r["ratio_vs_torch"] = round(r["passages_per_s"] / torch_rate, 2) if torch_rate else None

    k = args.k
    header = (
        f"{'backend':10s} {'pass/s':>8s} {'spread':>7s} {'x torch':>7s} {'q ms':>6s} {'q p95':>6s} "
        f"{'cos pass':>9s} {'(min)':>7s} {'cos q':>7s} {f'top{k}':>6s} {'top1':>5s} {'load s':>6s}"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = f"{r['ratio_vs_torch']:.2f}" if r["ratio_vs_torch"] else "-"
        print(
            f"{r['backend']:10s} {r['passages_per_s']:8.1f} {r['spread_pct']:6.1f}% {ratio:>7s} "
            f"{r['query_ms_median']:6.2f} {r['query_ms_p95']:6.2f} {r['cos_passages_mean']:9.5f} "
            f"{r['cos_passages_min']:7.4f} {r['cos_queries_mean']:7.4f} {r[f'top{k}_overlap']:6.3f} "
            f"{r['top1_agree']:5.2f} {r['load_s']:6.1f}"
        )
    print(
        f"\npass/s: median of {args.repeats} interleaved rounds over {len(passages)} passages "
        f"(spread = (max-min)/median); q ms: embed_query, {len(questions)} questions x {args.query_rounds} "
        f"rounds; cos/top{k}: "
        "agreement with torch (brute-force search of the questions over the passages)."
    )
    result = {
        "benchmark": "embed",
        "machine": machine_line(),
        "threads": args.threads or os.cpu_count(),
        "batch_size": embedders["torch"].settings.embedding_batch_size,
        "n_passages": len(passages),
        "mean_tokens": round(statistics.mean(n_tokens), 1),
        "n_queries": len(questions),
        "repeats": args.repeats,
        "query_rounds": args.query_rounds,
        "rows": rows,
    }
    return result


