"""The scaling benchmark runs end to end at a tiny size (structure and recall only, no timings)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

pytest.importorskip("faiss")
pytest.importorskip("bm25s")

from eval.bench import scale as bench_scale  # noqa: E402


def parse(*argv: str) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json")
    common.add_argument("-v", "--verbose", action="store_true")
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    bench_scale.add_parser(sub, common)
    return parser.parse_args(["scale", *argv])


def test_scale_tiny(capsys):
    args = parse(
        "--sizes", "2000", "--queries", "20", "--warmup", "2",
        "--kinds", "flat", "hnsw", "hnswsq", "ivf", "ivfpq",
        "--nprobe", "4", "64", "--ef-search", "64", "--pq-m", "16", "--pq-train", "2000", "--rerank", "0", "2",
        "--bm25-text-max", "1000",  # exercises the pre-tokenized path
    )  # fmt: skip
    assert args.func is bench_scale.cmd_scale
    out = args.func(args)

    assert out["benchmark"] == "scale" and out["depth"] == 100
    assert out["machine"]["cores"] and "load_avg" in out["machine"]
    kinds = {r["kind"] for r in out["rows"]}
    assert kinds == {"flat", "hnsw", "hnswsq", "ivf", "ivfpq"}
    for r in out["rows"]:
        assert r["n"] == 2000
        for key in ("params", "build_s", "index_mb", "rss_peak_mb", "p50_ms", "p95_ms", "recall10", "recall100"):
            assert key in r, key
        assert 0.0 <= r["recall10"] <= 1.0 and r["index_mb"] > 0
    flat = [r for r in out["rows"] if r["kind"] == "flat"]
    assert len(flat) == 1 and flat[0]["recall10"] == 1.0 and flat[0]["recall100"] == 1.0
    assert all(r["recall10"] > 0.8 for r in out["rows"] if r["kind"] == "hnsw")
    assert max(r["recall10"] for r in out["rows"] if r["kind"] == "ivf") > 0.95
    # The compressed kinds come raw and re-ranked with the exact vectors, which recovers recall.
    for kind in ("hnswsq", "ivfpq"):
        raw = [r for r in out["rows"] if r["kind"] == kind and "rerank" not in r["params"]]
        exact = [r for r in out["rows"] if r["kind"] == kind and "rerank=2x" in r["params"]]
        assert len(raw) == len(exact) > 0
        assert max(r["recall10"] for r in exact) >= max(r["recall10"] for r in raw)

    (bm,) = out["bm25"]
    assert bm["kind"] == "bm25" and bm["tokenize_estimated"] and bm["index_mb"] > 0 and bm["postings"] > 0
    assert [p["n"] for p in out["recommendation"]] == [2000]
    assert "recommended policy" in capsys.readouterr().out


def test_synthetic_vectors_are_normalised_and_clustered():
    gen = bench_scale.ClusteredVectors(3000, seed=1)
    x, q = gen.passages(), gen.queries(50)
    assert x.dtype == np.float32 and x.shape == (3000, 384) and q.shape == (50, 384)
    assert np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-4)
    assert np.allclose(np.linalg.norm(q, axis=1), 1, atol=1e-4)
    # Same seed, same data; queries are not copies of passages.
    assert np.array_equal(x, bench_scale.ClusteredVectors(3000, seed=1).passages())
    top_s, top_i = bench_scale.exact_top(x, q, 10)
    assert np.all(top_s[:, 0] < 0.999)
    # Neighbourhood structure: nearest neighbours are far closer than a random passage.
    assert np.median(top_s[:, 0]) > 0.4 > float(np.mean(q @ x[:500].T))
    brute = np.argsort(-(q @ x.T), axis=1)[:, :10]
    assert bench_scale.recall(top_i, brute, 10) == 1.0


def test_pretokenized_bm25_matches_text_path():
    """Token ids fed to bm25s give the same scores as the app tokenizing the texts."""
    import bm25s
    from rag.text.terms import bm25_query_tokens, bm25_tokenize

    text = bench_scale.SyntheticText(300, seed=2)
    a = bm25s.BM25()
    a.index(bm25_tokenize(text.texts()), show_progress=False)
    b = bm25s.BM25()
    b.index(bench_scale.pretokenized(text), show_progress=False)
    for query in text.queries(5):
        toks = bm25_query_tokens(query)
        sa = a.get_scores([t for t in toks if t in a.vocab_dict])
        sb = b.get_scores([t for t in toks if t in b.vocab_dict])
        assert np.allclose(sa, sb, atol=1e-5)


def test_store_bench_builds_an_index_the_store_opens(tmp_path):
    """`bench store`'s synthetic index is written in the store's own format; it must
    keep up with that format (a column added to the article table once broke a
    half-hour build at its last step)."""
    from eval.bench.store import build_synthetic
    from rag.store.check import check_index
    from rag.store.snapshot import open_index

    root = tmp_path / "index"
    build_synthetic(root, 3000, seed=0)
    snap = open_index(root)
    assert len(snap) == 3000 and len(snap.articles()) == snap.manifest.n_articles > 100
    p = snap.passage(1234)
    assert p.text and snap.article(p.article_id).text.count(p.text) >= 1
    assert check_index(root).ok
