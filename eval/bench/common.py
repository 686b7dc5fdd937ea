"""What the benchmarks share: the MultiHop-RAG data, passages as ingest makes them, timing."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Callable

import numpy as np

BENCH = Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "multihop-rag"
BACKENDS = ("torch", "onnx", "onnx-int8", "openvino")


def load_corpus(bench: Path) -> list[dict]:
    return json.loads((bench / "corpus.json").read_text(encoding="utf-8"))


def load_queries(bench: Path) -> list[str]:
    rows = json.loads((bench / "queries_dev.json").read_text(encoding="utf-8"))
    return [r["query"] for r in rows if r.get("query")]


def build_passages(articles: list[dict], embedder, n: int, *, max_tokens: int = 256, overlap: int = 64) -> list[str]:
    """The first ``n`` passages that ingest would embed: header line + verbatim chunk."""
    from rag.ingest.chunking import chunk_text
    from rag.text.headers import header_for

    tok = embedder.tokenizer

    def offsets(piece: str) -> list[tuple[int, int]]:
        return [tuple(o) for o in tok(piece, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]]

    out: list[str] = []
    for a in articles:
        body = a.get("body") or ""
        if not body.strip():
            continue
        head = header_for(a.get("title"), a.get("source"), a.get("published_at"))
        head_tokens = embedder.count_tokens([head])[0] if head else 0
        chunked = chunk_text(
            body,
            embedder.count_tokens,
            max_tokens=min(max_tokens, embedder.max_seq_length),
            overlap_tokens=overlap,
            header_tokens=head_tokens,
            token_offsets=offsets,
        )
        spans = getattr(chunked, "passages", chunked)  # a Chunking, or a plain span list
        for s in spans:
            text = body[s.start : s.end]
            out.append(f"{head}\n{text}" if head else text)
            if len(out) >= n:
                return out
    return out


def make_embedder(backend: str, threads: int | None, batch_size: int | None):
    from rag.embed.factory import create_embedder
    from rag.settings import Settings

    update: dict = {"embedding_backend": backend}
    if threads:
        update["embedding_threads"] = threads
    if batch_size:
        update["embedding_batch_size"] = batch_size
    return create_embedder(Settings().model_copy(update=update))


def rotated(items: list, r: int) -> list:
    """``items`` rotated by ``r``: each round starts with a different backend."""
    r %= len(items)
    return items[r:] + items[:r]


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def top_k(queries: np.ndarray, passages: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ passages.T
    k = min(k, passages.shape[0])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    rows = np.arange(len(queries))[:, None]
    return part[rows, np.argsort(-scores[rows, part], axis=1)]


def machine_line() -> str:
    load = ""
    if hasattr(os, "getloadavg"):
        load = " load avg %.1f/%.1f/%.1f" % os.getloadavg()
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores,{load}"


def percentiles_ms(ms: list[float], digits: int = 2) -> dict:
    """p50/p95/min/max of timings, rounded (numpy's percentiles, through eval.metrics)."""
    from eval.metrics import percentiles

    p = percentiles(ms)
    return {"p50": round(p["p50"], digits), "p95": round(p["p95"], digits),
            "min": round(float(min(ms)), digits), "max": round(p["max"], digits)}
