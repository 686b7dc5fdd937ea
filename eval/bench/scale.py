"""Scaling benchmark: FAISS index kinds and BM25 at 10k, 100k and 1M passages.

    python -m eval.bench scale [--sizes 10000 100000 1000000] [--kinds flat hnsw ivf ivfpq]
                               [--queries 200] [--threads 2] [--no-bm25] [--json OUT]
    python -m eval.bench_scale [same options]      # standalone

For each size and index kind it reports build time (train + add), memory, the
latency of one query at a time (as the app searches: ``index.search(q, depth)``
with ``depth`` = the app's ``candidates``, 100), and recall@10 against exact search;
for IVF/HNSW each search-time knob value (nprobe / efSearch / re-rank factor) is a
row, so the table shows the speed/recall trade-off. It ends with a recommended
policy: per size, the cheapest configuration that meets the targets
(p50 <= 10 ms, recall@10 >= 0.95, index <= 2 GB).

Vectors
-------
Uniform random vectors in 384-d have no neighbourhood structure: every ANN index
looks hopeless on them, which real sentence embeddings are not. The vectors here
are a hierarchical Gaussian mixture shaped like all-MiniLM-L6-v2 embeddings of
news passages:

    passage = mean + topic + article offset + passage noise, L2-normalised

with all Gaussian parts drawn in one random basis with a power-law spectrum
(variance of component j ~ j^-0.8, participation ratio ~55 like the real
vectors), one topic per 100 passages and one article per 10 (the real corpus:
8.8k passages, 609 articles), a shared mean direction (mean cosine ~0.1, as
real embeddings are anisotropic) and a per-article noise scale (lognormal), so
some stories are tight and some loose. Queries are not copies of passages: each
comes from a new article of a random topic, and half of them blend two topics
50/50, as the multi-hop questions of MultiHop-RAG ask about two stories.

Calibration against the real index (8.8k MultiHop-RAG passages embedded by the
app, its 400 first dev questions embedded the same way; recall@10 with k=10):

                         HNSW M16     HNSW M32     IVF 4*sqrt(N), nprobe
                         ef16  ef64   ef16  ef64   1     4     16
    real questions       .927  .988   .938  .991   .583  .880  .974
    synthetic, N=8.8k    .914  .988   .930  .995   .601  .917  .989

so the synthetic recall is about as hard as the real one (slightly easier for IVF
at mid nprobe). The number of topics grows with N (one per 100 passages), so a
bigger corpus brings more distractors but no closer neighbours: the nearest
passage stays at cosine ~0.54 from 10k to 1M. A real corpus that grows by more
coverage of the same stories gets denser instead, so the 1M recall here is on the
pessimistic side. ``--real-vectors FILE`` repeats the benchmark on a real
``vectors.npy`` (holding out rows as queries, or with ``--real-queries FILE``) to
check this again.

BM25
----
Synthetic text: passages of 150-200 words drawn from a Zipf-Mandelbrot
distribution (p(r) ~ 1/(r + 2.7)) over a 50k-word vocabulary whose most frequent
ranks are the English stop words (which the tokenizer drops, as in real text),
the rest invented words; 10% of the words of a passage come from its topic's
50-word list (bursty topical terms). Queries are 10 words, 30% topical. The index
is the app's: ``bm25s.BM25().index(rag.retrieval.bm25_tokenize(texts))``; the
query path is the app's too (``bm25_query_tokens``, ``get_scores``, top-depth by
argpartition). Above ``--bm25-text-max`` passages (default 100k) the texts are
not materialised: each word is tokenized once with the app's tokenizer and the
passages go to bm25s as token ids, which gives the same index; the tokenize time
is then extrapolated from a 20k-passage sample (marked ``~``).

Threads
-------
Indexes are built with ``--threads`` OpenMP threads (default 2) and searched with
``--search-threads`` (default 1). One query at a time gains little from OpenMP
(HNSW and IVF parallelise over queries), and on a shared 2-core machine a 2-thread
search region waits for a core the neighbours hold: a 10k flat search measured
2 ms with 1 thread and 16-36 ms with 2 at load average 4.

Memory
------
``index MB`` is the index's serialized size (``faiss.write_index`` into a byte
counter), which is what it occupies in RAM once loaded; ``RSS +MB`` is the growth
of the process's resident memory over the build (peak, sampled every 20 ms), a
check on it that also shows transient build memory. For BM25, ``index MB`` is the
bm25s score arrays (data + indices + indptr).

The compressed kinds (``hnswsq``: HNSW over 8-bit scalar-quantized vectors;
``ivfpq``) also have ``rerank=Fx`` rows: fetch depth*F candidates and re-score
them with the exact float32 vectors. The app keeps those memory-mapped anyway
(``vectors.npy``), so they are not counted in ``index MB``: the re-rank touches
depth*F rows of that file per query, from the page cache when it is warm.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import math
import os
import platform
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass
from collections.abc import Callable, Iterator, Sequence

import numpy as np

log = logging.getLogger(__name__)

DIM = 384  # all-MiniLM-L6-v2
KINDS = ("flat", "hnsw", "hnswsq", "ivf", "ivfpq")
DEFAULT_KINDS = ("flat", "hnsw", "ivf", "ivfpq")
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
CHUNK = 65_536  # rows generated / scanned at a time


def _app_depth() -> int:
    """The depth the app asks FAISS for (``Settings.candidates``)."""
    try:
        from rag.settings import Settings

        return int(Settings.model_fields["candidates"].default)
    except Exception:  # noqa: BLE001 - a benchmark must run even if the settings move
        return 100


# -- synthetic vectors ------------------------------------------------------------
@dataclass(frozen=True)
class VectorSpec:
    """Shape of the synthetic embedding distribution (see the module docstring)."""

    dim: int = DIM
    spectrum: float = 0.8  # variance of basis component j ~ j**-spectrum
    mean_weight: float = 0.4
    topic_sigma: float = 0.7
    article_sigma: float = 0.75
    passage_sigma: float = 0.6
    article_jitter: float = 0.3  # lognormal sigma of the per-article noise scale
    per_topic: int = 100
    per_article: int = 10
    query_blend: float = 0.5  # share of queries that blend two topics
    blend_weight: float = 0.5


class ClusteredVectors:
    """Seeded hierarchical-mixture vectors, generated in chunks."""

    def __init__(self, n: int, seed: int = 0, spec: VectorSpec = VectorSpec()):
        self.n, self.seed, self.spec = n, seed, spec
        d = spec.dim
        rng = np.random.default_rng([seed, 0])
        q, _ = np.linalg.qr(rng.standard_normal((d, d)))
        s = np.arange(1, d + 1, dtype=np.float64) ** (-spec.spectrum / 2)
        s /= np.sqrt((s**2).sum())  # unit expected squared norm per draw
        self.basis = (s[:, None] * q.T).astype(np.float32)
        mean = rng.standard_normal(d)
        self.mean = (spec.mean_weight * mean / np.linalg.norm(mean)).astype(np.float32)
        self.n_topics = max(1, n // spec.per_topic)
        n_articles = max(1, n // spec.per_article)
        self.topics = self._gauss(rng, self.n_topics) * spec.topic_sigma
        article_topic = rng.integers(0, self.n_topics, n_articles)
        self.articles = self.topics[article_topic] + self._gauss(rng, n_articles) * spec.article_sigma + self.mean
        self.article_scale = (spec.passage_sigma * rng.lognormal(0.0, spec.article_jitter, n_articles)).astype(
            np.float32
        )
        # Passages of one article are contiguous, as ingest writes them.
        self.passage_article = np.sort(rng.integers(0, n_articles, n)).astype(np.int32)

    def _gauss(self, rng: np.random.Generator, k: int) -> np.ndarray:
        return rng.standard_normal((k, self.spec.dim), dtype=np.float32) @ self.basis

    def passages(self, out: np.ndarray | None = None) -> np.ndarray:
        x = np.empty((self.n, self.spec.dim), dtype=np.float32) if out is None else out
        for c, lo in enumerate(range(0, self.n, CHUNK)):
            hi = min(self.n, lo + CHUNK)
            rng = np.random.default_rng([self.seed, 1, c])
            a = self.passage_article[lo:hi]
            block = self.articles[a] + self._gauss(rng, hi - lo) * self.article_scale[a, None]
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            x[lo:hi] = block
        return x

    def queries(self, nq: int) -> np.ndarray:
        sp = self.spec
        rng = np.random.default_rng([self.seed, 2])

        def new_article() -> np.ndarray:
            t = rng.integers(0, self.n_topics, nq)
            return self.topics[t] + self._gauss(rng, nq) * sp.article_sigma + self.mean

        centre, other = new_article(), new_article()
        w = ((rng.random(nq) < sp.query_blend) * sp.blend_weight).astype(np.float32)[:, None]
        q = (1 - w) * centre + w * other + self._gauss(rng, nq) * sp.passage_sigma
        return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def exact_top(x: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k inner products, batched over chunks of ``x`` (the recall reference)."""
    k = min(k, len(x))
    best_s = np.empty((len(q), 0), dtype=np.float32)
    best_i = np.empty((len(q), 0), dtype=np.int64)
    for lo in range(0, len(x), CHUNK):
        s = q @ x[lo : lo + CHUNK].T
        kk = min(k, s.shape[1])
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        best_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], axis=1)
        best_i = np.concatenate([best_i, part + lo], axis=1)
        if best_s.shape[1] > k:
            keep = np.argpartition(-best_s, k - 1, axis=1)[:, :k]
            best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    return np.take_along_axis(best_s, order, 1), np.take_along_axis(best_i, order, 1)


def recall(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(f[:k].tolist()) & set(t[:k].tolist())) / k for f, t in zip(found, truth)]))


# -- measurement helpers ------------------------------------------------------------
def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # peak only


def release_freed_memory() -> None:
    """Hand freed heap back to the OS, so the next build's RSS growth is its own."""
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class PeakRss:
    """Peak resident-memory growth over a ``with`` block, sampled by a thread."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.peak = self.start = self.end = 0
        self._stop = threading.Event()

    def __enter__(self) -> "PeakRss":
        self.start = self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.end = rss_bytes()
        self.peak = max(self.peak, self.end)

    @property
    def peak_mb(self) -> float:
        return (self.peak - self.start) / 2**20

    @property
    def kept_mb(self) -> float:
        return (self.end - self.start) / 2**20


def serialized_mb(index) -> float:
    """Size of ``faiss.write_index`` output, counted without a copy in RAM or on disk."""
    import faiss

    total = 0

    def count(chunk: bytes) -> int:
        nonlocal total
        total += len(chunk)
        return len(chunk)

    writer = faiss.PyCallbackIOWriter(count)
    faiss.write_index(index, writer)
    del writer  # flushes
    return total / 2**20


def time_queries(
    search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray, warmup: int
) -> tuple[list[float], np.ndarray]:
    """Per-query latency (ms) of ``search`` on one query at a time, and its results."""
    for i in range(min(warmup, len(queries))):
        search(queries[i : i + 1])
    lat, found = [], []
    for i in range(len(queries)):
        t = time.perf_counter()
        ids = search(queries[i : i + 1])
        lat.append((time.perf_counter() - t) * 1000)
        found.append(ids[0])
    return lat, np.stack(found)


def pct(values: Sequence[float], p: float) -> float:
    return float(np.percentile(values, p)) if len(values) else float("nan")


def load_avg() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def machine_info(threads: int) -> dict:
    import faiss

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_avg": load_avg(),
        "faiss": faiss.__version__,
        "faiss_build_threads": threads,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


# -- FAISS index kinds --------------------------------------------------------------
@dataclass
class Built:
    """An index plus the search-time settings to sweep over it."""

    kind: str
    params: str
    index: object
    build_s: float
    index_mb: float
    rss_peak_mb: float
    rss_kept_mb: float
    knobs: list[tuple[str, Callable[[], Callable[[np.ndarray], np.ndarray]], float | None]]
    # knobs: (label, prepare -> search function, index MB override for that knob)


def ivf_nlist(n: int, rule: float) -> int:
    # The engine's rule (4*sqrt(N), at most 4096); never more lists than 1 per 39 points.
    return int(max(1, min(4096, rule * math.sqrt(n), n // 39 or 1)))


def train_sample(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    if n >= len(x):
        return x
    return x[np.sort(np.random.default_rng([seed, 9]).choice(len(x), n, replace=False))]


class Builder:
    """Builds each kind over one data set; the IVF coarse quantizer is trained once."""

    def __init__(self, x: np.ndarray, args: argparse.Namespace, depth: int):
        self.x, self.args, self.depth = x, args, depth
        self._coarse: tuple[np.ndarray, float] | None = None

    def _measure(self, make: Callable[[], object]) -> tuple[object, float, PeakRss]:
        release_freed_memory()
        with PeakRss() as mem:
            t = time.perf_counter()
            index = make()
            secs = time.perf_counter() - t
        return index, secs, mem

    def flat(self) -> list[Built]:
        import faiss

        def make():
            index = faiss.IndexFlatIP(self.x.shape[1])
            index.add(self.x)
            return index

        index, secs, mem = self._measure(make)
        knobs = [("-", lambda: lambda q: index.search(q, self.depth)[1], None)]
        return [Built("flat", "exact", index, secs, serialized_mb(index), mem.peak_mb, mem.kept_mb, knobs)]

    def hnsw(self, sq8: bool = False) -> Iterator[Built]:
        import faiss

        d = self.x.shape[1]
        for m in self.args.hnsw_m:
            efc = self.args.ef_construction

            def make(m=m, efc=efc):
                if sq8:
                    index = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, m, faiss.METRIC_INNER_PRODUCT)
                    index.train(train_sample(self.x, 65_536, self.args.seed))
                else:
                    index = faiss.IndexHNSWFlat(d, m, faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efConstruction = efc
                index.add(self.x)
                return index

            index, secs, mem = self._measure(make)
            kind = "hnswsq" if sq8 else "hnsw"
            log.info("%s M=%d efC=%d: built %d vectors in %.1fs", kind, m, efc, len(self.x), secs)
            knobs = []
            # FAISS searches with ef = max(efSearch, k): values below the depth are all the same search.
            for factor in self.args.rerank if sq8 else [0]:
                for ef in sorted({max(e, self.depth) for e in self.args.ef_search}):

                    def prepare(index=index, ef=ef, factor=factor):
                        index.hnsw.efSearch = ef
                        return self._searcher(index, factor)

                    knobs.append((f"ef={ef}" + (f" rerank={factor}x" if factor else ""), prepare, None))
            yield Built(kind, f"M={m} efC={efc}", index, secs, serialized_mb(index), mem.peak_mb, mem.kept_mb, knobs)
            del index, knobs

    def coarse(self) -> tuple[np.ndarray, float]:
        """IVF centroids (k-means on a sample, as the engine does) and the seconds it took."""
        import faiss

        if self._coarse is None:
            nlist = ivf_nlist(len(self.x), self.args.nlist_rule)
            sample = train_sample(self.x, self.args.train_per_list * nlist, self.args.seed)
            t = time.perf_counter()
            quantizer = faiss.IndexFlatIP(self.x.shape[1])
            ivf = faiss.IndexIVFFlat(quantizer, self.x.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
            ivf.train(sample)
            secs = time.perf_counter() - t
            self._coarse = (quantizer.reconstruct_n(0, nlist), secs)
            log.info("IVF coarse k-means: %d lists from %d points in %.1fs", nlist, len(sample), secs)
        return self._coarse

    def _nprobes(self, nlist: int) -> list[int]:
        return sorted({min(p, nlist) for p in self.args.nprobe})

    def ivf(self) -> list[Built]:
        import faiss

        centroids, coarse_s = self.coarse()
        nlist, d = len(centroids), self.x.shape[1]

        def make():
            quantizer = faiss.IndexFlatIP(d)
            quantizer.add(centroids)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.add(self.x)
            return index

        index, secs, mem = self._measure(make)
        knobs = []
        for p in self._nprobes(nlist):

            def prepare(p=p):
                index.nprobe = p
                return lambda q: index.search(q, self.depth)[1]

            knobs.append((f"nprobe={p}", prepare, None))
        mb = serialized_mb(index)
        return [Built("ivf", f"nlist={nlist}", index, coarse_s + secs, mb, mem.peak_mb, mem.kept_mb, knobs)]

    def ivfpq(self) -> list[Built]:
        import faiss

        centroids, coarse_s = self.coarse()
        nlist, d = len(centroids), self.x.shape[1]
        m, nbits = self.args.pq_m, self.args.pq_bits

        def make():
            quantizer = faiss.IndexFlatIP(d)
            quantizer.add(centroids)
            index = faiss.IndexIVFPQ(quantizer, d, nlist, m, nbits, faiss.METRIC_INNER_PRODUCT)
            # The coarse quantizer already holds nlist centroids: train() fits the PQ only.
            # 48 k-means of 256 centroids are slow on 2 cores; ~39 points per centroid suffice.
            index.train(train_sample(self.x, self.args.pq_train, self.args.seed))
            index.add(self.x)
            return index

        index, secs, mem = self._measure(make)
        knobs = []
        for factor in self.args.rerank:
            for p in self._nprobes(nlist):

                def prepare(p=p, factor=factor):
                    index.nprobe = p
                    return self._searcher(index, factor)

                knobs.append((f"nprobe={p}" + (f" rerank={factor}x" if factor else ""), prepare, None))
        params = f"nlist={nlist} m={m}x{nbits}b"
        return [Built("ivfpq", params, index, coarse_s + secs, serialized_mb(index), mem.peak_mb, mem.kept_mb, knobs)]

    def _searcher(self, index, factor: int) -> Callable[[np.ndarray], np.ndarray]:
        """Search ``index``; with ``factor``, fetch depth*factor and re-rank them exactly.

        The exact scores come from the float32 vectors, which the app keeps
        memory-mapped (vectors.npy) anyway: page cache, not part of the index.
        """
        depth, x = self.depth, self.x
        if not factor:
            return lambda q: index.search(q, depth)[1]

        def search(q: np.ndarray) -> np.ndarray:
            ids = index.search(q, depth * factor)[1][0]
            ids = ids[ids >= 0]
            exact = x[ids] @ q[0]
            top = ids[np.argsort(-exact, kind="stable")[:depth]]
            # Fewer hits than asked (small lists): pad with -1, as FAISS does.
            return np.pad(top, (0, depth - len(top)), constant_values=-1)[None]

        return search

    def build(self, kind: str) -> Iterator[Built]:
        """The indexes of one kind, one at a time (only one is alive: 1M vectors are big)."""
        if kind == "flat":
            yield from self.flat()
        elif kind == "hnsw":
            yield from self.hnsw()
        elif kind == "hnswsq":
            yield from self.hnsw(sq8=True)
        elif kind == "ivf":
            yield from self.ivf()
        elif kind == "ivfpq":
            yield from self.ivfpq()
        else:
            raise ValueError(kind)


def dense_rows(
    n_label: str, x: np.ndarray, q: np.ndarray, args: argparse.Namespace, depth: int
) -> tuple[list[dict], dict]:
    """All kinds over one data set: one row per (index, search setting)."""
    import faiss

    t = time.perf_counter()
    true_s, true_i = exact_top(x, q, depth)
    gt_s = time.perf_counter() - t
    info = {
        "exact_s": round(gt_s, 2),
        "query_top1_cos_p50": round(float(np.median(true_s[:, 0])), 3),
        "query_top10_cos_p50": round(float(np.median(true_s[:, min(9, depth - 1)])), 3),
        f"query_top{depth}_cos_p50": round(float(np.median(true_s[:, -1])), 3),
    }
    log.info("%s: exact top-%d for %d queries in %.1fs", n_label, depth, len(q), gt_s)
    builder = Builder(x, args, depth)
    rows = []
    for kind in args.kinds:
        faiss.omp_set_num_threads(args.threads)
        for built in builder.build(kind):
            faiss.omp_set_num_threads(args.search_threads)
            for label, prepare, mb in built.knobs:
                lat, found = time_queries(prepare(), q, args.warmup)
                rows.append(
                    {
                        "n": len(x),
                        "kind": built.kind,
                        "params": built.params if label == "-" else f"{built.params} {label}",
                        "build_s": round(built.build_s, 2),
                        "index_mb": round(mb if mb is not None else built.index_mb, 1),
                        "rss_peak_mb": round(built.rss_peak_mb, 1),
                        "rss_kept_mb": round(built.rss_kept_mb, 1),
                        "p50_ms": round(statistics.median(lat), 3),
                        "p95_ms": round(pct(lat, 95), 3),
                        "recall10": round(recall(found, true_i, 10), 4),
                        f"recall{depth}": round(recall(found, true_i, depth), 4),
                    }
                )
                log.info("%s %s %s", n_label, built.kind, rows[-1])
            built.index = None
            built.knobs.clear()
            del built
            release_freed_memory()
            faiss.omp_set_num_threads(args.threads)
    return rows, info


# -- synthetic text and BM25 ----------------------------------------------------------
def _invented_words(count: int, rng: np.random.Generator, avoid: set[str]) -> list[str]:
    cons, vows = list("bcdfghjklmnprstvwz"), list("aeiou")
    words: list[str] = []
    seen = set(avoid)
    while len(words) < count:
        syll = rng.integers(2, 5)
        w = "".join(cons[rng.integers(len(cons))] + vows[rng.integers(len(vows))] for _ in range(syll))
        w += cons[rng.integers(len(cons))] if rng.random() < 0.5 else ""
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


class SyntheticText:
    """Zipf-distributed passages over stop words + invented words (see the module docstring)."""

    def __init__(self, n: int, seed: int = 0, vocab_size: int = 50_000, n_topics: int | None = None):
        from bm25s.stopwords import STOPWORDS_EN_PLUS

        rng = np.random.default_rng([seed, 3])
        stop = sorted({w for w in STOPWORDS_EN_PLUS if w.isalpha() and len(w) > 1})
        rng.shuffle(stop)
        self.words = stop + _invented_words(vocab_size - len(stop), rng, set(stop))
        ranks = np.arange(1, len(self.words) + 1, dtype=np.float64)
        p = 1.0 / (ranks + 2.7)
        self.cdf = np.cumsum(p / p.sum())
        self.n, self.seed = n, seed
        self.n_topics = n_topics or max(1, n // 100)
        # Topical words: mid-frequency and rarer content words.
        self.topic_words = rng.integers(len(stop) + 500, len(self.words), (self.n_topics, 50))
        self.passage_topic = rng.integers(0, self.n_topics, n)

    def _draw(self, rng: np.random.Generator, lengths: np.ndarray, topics: np.ndarray, topical: float) -> np.ndarray:
        total = int(lengths.sum())
        w = np.searchsorted(self.cdf, rng.random(total)).astype(np.int32)
        w = np.minimum(w, len(self.words) - 1)
        owner = np.repeat(topics, lengths)
        pick = rng.random(total) < topical
        w[pick] = self.topic_words[owner[pick], rng.integers(0, self.topic_words.shape[1], int(pick.sum()))]
        return w

    def passage_words(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Chunks of (word ranks flat, lengths)."""
        step = 20_000
        for c, lo in enumerate(range(0, self.n, step)):
            hi = min(self.n, lo + step)
            rng = np.random.default_rng([self.seed, 4, c])
            lengths = rng.integers(150, 201, hi - lo)
            yield self._draw(rng, lengths, self.passage_topic[lo:hi], 0.10), lengths

    def texts(self, limit: int | None = None) -> list[str]:
        out: list[str] = []
        for ranks, lengths in self.passage_words():
            flat = ranks.tolist()
            pos = 0
            for ln in lengths.tolist():
                out.append(" ".join(self.words[r] for r in flat[pos : pos + ln]))
                pos += ln
                if limit is not None and len(out) >= limit:
                    return out
        return out

    def queries(self, nq: int) -> list[str]:
        rng = np.random.default_rng([self.seed, 5])
        ranks = self._draw(rng, np.full(nq, 10), rng.integers(0, self.n_topics, nq), 0.30)
        return [" ".join(self.words[r] for r in ranks[i * 10 : (i + 1) * 10]) for i in range(nq)]


class TokenIdDocs(Sequence):
    """Passages as lists of token ids, made on demand from one flat int32 array."""

    def __init__(self, flat: np.ndarray, offsets: np.ndarray):
        self.flat, self.offsets = flat, offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.flat[self.offsets[i] : self.offsets[i + 1]].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        for i in range(len(self)):
            yield self.flat[self.offsets[i] : self.offsets[i + 1]].tolist()


def pretokenized(text: SyntheticText):
    """The app tokenizer's output for every passage, without materialising the texts.

    Each vocabulary word is tokenized once (stop words vanish, the rest are
    stemmed), and the passages' word ranks are mapped through that table.
    """
    import bm25s
    from rag.text.terms import bm25_tokenize

    per_word = bm25_tokenize(text.words)
    rank_to_tok = np.array([ids[0] if ids else -1 for ids in per_word.ids], dtype=np.int32)
    parts, lens = [], []
    for ranks, lengths in text.passage_words():
        toks = rank_to_tok[ranks]
        keep = toks >= 0
        owner = np.repeat(np.arange(len(lengths)), lengths)
        lens.append(np.bincount(owner[keep], minlength=len(lengths)))
        parts.append(toks[keep])
    flat = np.concatenate(parts)
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(lens))]).astype(np.int64)
    return bm25s.tokenization.Tokenized(ids=TokenIdDocs(flat, offsets), vocab=dict(per_word.vocab))


def bm25_row(n: int, args: argparse.Namespace, depth: int) -> dict:
    import bm25s
    from rag.text.terms import bm25_query_tokens, bm25_tokenize

    t = time.perf_counter()
    text = SyntheticText(n, seed=args.seed)
    queries = text.queries(args.queries)
    from_text = n <= args.bm25_text_max
    release_freed_memory()
    if from_text:
        texts = text.texts()
        gen_s = time.perf_counter() - t
        with PeakRss() as mem:
            t = time.perf_counter()
            tokens = bm25_tokenize(texts)
            tok_s = time.perf_counter() - t
            t = time.perf_counter()
            bm25 = bm25s.BM25()
            bm25.index(tokens, show_progress=False)
            build_s = time.perf_counter() - t
            del tokens
        del texts
    else:
        sample_n = min(n, 20_000)
        sample = text.texts(limit=sample_n)
        t0 = time.perf_counter()
        bm25_tokenize(sample)
        tok_s = (time.perf_counter() - t0) * n / sample_n
        del sample
        tokens = pretokenized(text)
        gen_s = time.perf_counter() - t
        with PeakRss() as mem:
            t = time.perf_counter()
            bm25 = bm25s.BM25()
            bm25.index(tokens, show_progress=False)
            build_s = time.perf_counter() - t
        del tokens
    sc = bm25.scores
    index_mb = sum(np.asarray(sc[k]).nbytes for k in ("data", "indices", "indptr")) / 2**20
    vocab = bm25.vocab_dict

    def search(query: str) -> list[int]:
        # As rag.retrieval: tokens known to the index, every passage scored, top depth kept.
        toks = [tk for tk in bm25_query_tokens(query) if tk in vocab]
        if not toks:
            return []
        scores = bm25.get_scores(toks)
        k = min(depth, int((scores > 0).sum()))
        if k == 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        return top[np.argsort(-scores[top], kind="stable")].tolist()

    for qtext in queries[: args.warmup]:
        search(qtext)
    lat = []
    for qtext in queries:
        t = time.perf_counter()
        search(qtext)
        lat.append((time.perf_counter() - t) * 1000)
    row = {
        "n": n,
        "kind": "bm25",
        "params": "bm25s, app tokenizer" if from_text else "bm25s, pre-tokenized ids",
        "gen_s": round(gen_s, 2),
        "tokenize_s": round(tok_s, 2),
        "tokenize_estimated": not from_text,
        "build_s": round(build_s, 2),
        "index_mb": round(index_mb, 1),
        "rss_peak_mb": round(mem.peak_mb, 1),
        "rss_kept_mb": round(mem.kept_mb, 1),
        "p50_ms": round(statistics.median(lat), 3),
        "p95_ms": round(pct(lat, 95), 3),
        "vocab": len(vocab),
        "postings": int(len(sc["data"])),
    }
    bm25 = vocab = sc = None  # free the matrices before the next size (the closure holds the names)
    release_freed_memory()
    return row


# -- policy -------------------------------------------------------------------------
def recommend(rows: list[dict], target_ms: float, target_recall: float, max_mb: float) -> dict:
    """The cheapest row meeting the targets, and the fastest and quickest-built ones.

    Cheapest: exact flat search when it meets them (no training, no recall loss,
    nothing to tune); otherwise the least index memory, and among rows within 10%
    of that, the fastest. When none meets them: the best recall within the
    latency and memory limits, as "closest".
    """
    ok = [r for r in rows if r["p50_ms"] <= target_ms and r["recall10"] >= target_recall and r["index_mb"] <= max_mb]
    if not ok:
        near = [r for r in rows if r["p50_ms"] <= target_ms and r["index_mb"] <= max_mb]
        return {"cheapest": None, "closest": max(near, key=lambda r: r["recall10"]) if near else None}
    flat = [r for r in ok if r["kind"] == "flat"]
    if flat:
        best = flat[0]
    else:
        least = min(r["index_mb"] for r in ok)
        best = min((r for r in ok if r["index_mb"] <= least * 1.1 + 1), key=lambda r: (r["p50_ms"], r["build_s"]))
    return {
        "cheapest": best,
        "fastest": min(ok, key=lambda r: r["p50_ms"]),
        "quickest_build": min(ok, key=lambda r: (r["build_s"], r["p50_ms"])),
    }


# -- output ---------------------------------------------------------------------------
def print_table(title: str, rows: list[dict], depth: int) -> None:
    header = (
        f"{'kind':7s} {'params':38s} {'build s':>8s} {'index MB':>9s} {'RSS +MB':>8s} "
        f"{'p50 ms':>7s} {'p95 ms':>7s} {'R@10':>6s} {f'R@{depth}':>6s}"
    )
    print(f"\n{title}")
    print(header)
    print("-" * len(header))
    for r in rows:
        r10 = f"{r['recall10']:.3f}" if "recall10" in r else "-"
        rd = f"{r[f'recall{depth}']:.3f}" if f"recall{depth}" in r else "-"
        print(
            f"{r['kind']:7s} {r['params']:38s} {r['build_s']:8.2f} {r['index_mb']:9.1f} {r['rss_peak_mb']:8.1f} "
            f"{r['p50_ms']:7.2f} {r['p95_ms']:7.2f} {r10:>6s} {rd:>6s}"
        )


def print_bm25(row: dict) -> None:
    tilde = "~" if row["tokenize_estimated"] else ""
    print(
        f"{'bm25':7s} {row['params']:38s} build {row['build_s']:.1f}s (+ tokenize {tilde}{row['tokenize_s']:.1f}s), "
        f"index {row['index_mb']:.1f} MB (RSS peak +{row['rss_peak_mb']:.0f} MB), "
        f"p50 {row['p50_ms']:.2f} ms, p95 {row['p95_ms']:.2f} ms, vocab {row['vocab']}, postings {row['postings']}"
    )


def _fmt_choice(r: dict | None) -> str:
    if r is None:
        return "none meets the targets"
    return (
        f"{r['kind']} {r['params']} ({r['index_mb']:.0f} MB, build {r['build_s']:.0f}s, "
        f"p50 {r['p50_ms']:.2f} ms, R@10 {r['recall10']:.3f})"
    )


# -- command --------------------------------------------------------------------------
def cmd_scale(args: argparse.Namespace) -> dict:
    import faiss

    threads = args.threads = args.threads or 2
    args.search_threads = args.search_threads or 1
    faiss.omp_set_num_threads(threads)
    # bm25s sets its own logger to DEBUG; its records would reach the root handler.
    logging.getLogger("bm25s").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    depth = args.depth or _app_depth()
    kinds = list(dict.fromkeys(args.kinds))
    args.kinds = kinds
    machine = machine_info(threads)
    print(
        f"machine: {machine['cpu']}, {machine['cores']} cores, load avg {machine['load_avg']}, "
        f"faiss {machine['faiss']} ({threads} build threads, {args.search_threads} search); dim {DIM}, "
        f"{args.queries} queries, top-{depth} searched one query at a time, recall vs exact",
        flush=True,
    )
    spec = VectorSpec()
    sets: list[tuple[str, Callable[[], tuple[np.ndarray, np.ndarray]]]] = []
    for n in args.sizes:
        def synth(n=n):
            gen = ClusteredVectors(n, seed=args.seed, spec=spec)
            return gen.passages(), gen.queries(args.queries)

        sets.append((f"{n:,}", synth))
    if args.real_vectors:
        sets.append(("real", lambda: real_set(args)))

    all_rows: list[dict] = []
    sizes_out: list[dict] = []
    policy: list[dict] = []
    for label, load in sets:
        t = time.perf_counter()
        x, q = load()
        gen_s = time.perf_counter() - t
        n = len(x)
        load_before = load_avg()
        rows, info = dense_rows(label, x, q, args, depth)
        del x
        release_freed_memory()
        bm = bm25_row(n, args, depth) if args.bm25 and label != "real" else None
        rec = recommend(rows, args.target_ms, args.target_recall, args.max_mb)
        what = f"{n:,} real vectors" if label == "real" else f"{label} passages"
        title = (
            f"== {what}: generated in {gen_s:.1f}s; query top-1/top-10 cos p50 {info['query_top1_cos_p50']}/"
            f"{info['query_top10_cos_p50']}; load avg {load_before} -> {load_avg()} =="
        )
        print_table(title, rows, depth)
        if bm:
            print_bm25(bm)
        print(f"  -> cheapest meeting targets: {_fmt_choice(rec['cheapest'])}")
        if rec["cheapest"]:
            print(f"     fastest: {_fmt_choice(rec['fastest'])}; quickest build: {_fmt_choice(rec['quickest_build'])}")
        elif rec["closest"]:
            print(f"     closest (best R@10 within the time and memory limits): {_fmt_choice(rec['closest'])}")
        sys.stdout.flush()
        all_rows += rows
        entry = {
            "label": label,
            "n": n,
            "gen_s": round(gen_s, 2),
            **info,
            "load_avg_before": load_before,
            "load_avg_after": load_avg(),
            "rows": rows,
            "bm25": bm,
            "recommended": rec["cheapest"],
            "fastest_ok": rec.get("fastest"),
            "quickest_build_ok": rec.get("quickest_build"),
            "closest": rec.get("closest"),
        }
        sizes_out.append(entry)
        policy.append({"label": label, "n": n, "recommended": entry["recommended"]})

    print(
        "\nrecommended policy (cheapest: flat if it qualifies, else least index memory, then fastest; "
        f"targets p50 <= {args.target_ms:g} ms, R@10 >= {args.target_recall:g}, index <= {args.max_mb:g} MB):"
    )
    for p in policy:
        print(f"  {p['label']:>10s}: {_fmt_choice(p['recommended'])}")
    print(
        "index MB: serialized size (= RAM once loaded); RSS +MB: peak resident growth during the build; "
        "build s includes the IVF coarse k-means (shared by ivf and ivfpq); p50/p95: one query at a time."
    )
    return {
        "benchmark": "scale",
        "machine": machine,
        "load_avg_end": load_avg(),
        "dim": DIM,
        "depth": depth,
        "queries": args.queries,
        "seed": args.seed,
        "vector_spec": asdict(spec),
        "settings": {
            "kinds": kinds,
            "hnsw_m": args.hnsw_m,
            "ef_construction": args.ef_construction,
            "ef_search": args.ef_search,
            "nlist_rule": args.nlist_rule,
            "train_per_list": args.train_per_list,
            "nprobe": args.nprobe,
            "pq_m": args.pq_m,
            "pq_bits": args.pq_bits,
            "rerank": args.rerank,
            "pq_train": args.pq_train,
            "build_threads": threads,
            "search_threads": args.search_threads,
        },
        "targets": {"p50_ms": args.target_ms, "recall10": args.target_recall, "index_mb": args.max_mb},
        "sizes": sizes_out,
        "rows": all_rows,
        "bm25": [s["bm25"] for s in sizes_out if s["bm25"]],
        "recommendation": policy,
    }


def real_set(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """A real ``vectors.npy``; queries from ``--real-queries`` or held-out rows."""
    x = np.ascontiguousarray(np.load(args.real_vectors), dtype=np.float32)
    if args.real_queries:
        return x, np.ascontiguousarray(np.load(args.real_queries), dtype=np.float32)[: args.queries]
    perm = np.random.default_rng([args.seed, 7]).permutation(len(x))
    held = np.sort(perm[: args.queries])
    keep = np.sort(perm[args.queries :])
    return np.ascontiguousarray(x[keep]), np.ascontiguousarray(x[held])


def add_parser(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "scale",
        parents=[common],
        help="FAISS flat/HNSW/IVF/IVF-PQ and BM25 at 10k-1M synthetic passages: build, memory, latency, recall",
    )
    arg = p.add_argument
    arg("--sizes", type=int, nargs="*", default=list(DEFAULT_SIZES), help="passage counts (default 10k 100k 1M)")
    arg("--kinds", nargs="+", choices=KINDS, default=list(DEFAULT_KINDS), help="index kinds (default: all but hnswsq)")
    arg("--queries", type=int, default=200, help="queries timed one at a time (default 200)")
    arg("--warmup", type=int, default=20, help="untimed queries before each setting (default 20)")
    arg("--depth", type=int, default=None, help="results per search (default: the app's candidates, 100)")
    arg("--threads", type=int, default=None, help="FAISS OpenMP threads for building (default 2)")
    arg("--search-threads", type=int, default=1, help="FAISS threads while timing queries (default 1, see above)")
    arg("--seed", type=int, default=0)
    arg("--hnsw-m", type=int, nargs="+", default=[32], help="HNSW M values, one build each (default 32)")
    arg("--ef-construction", type=int, default=80, help="HNSW efConstruction (default 80)")
    arg(
        "--ef-search",
        type=int,
        nargs="+",
        default=[64, 128, 256, 512],
        help="HNSW efSearch sweep (default 64 128 256 512; FAISS uses max(efSearch, depth))",
    )
    arg("--nlist-rule", type=float, default=4.0, help="IVF nlist = RULE*sqrt(N), at most 4096 (default 4)")
    arg("--train-per-list", type=int, default=50, help="IVF k-means sample per list (default 50)")
    arg("--nprobe", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256], help="IVF nprobe sweep (default 8..256)")
    arg("--pq-m", type=int, default=48, help="IVF-PQ sub-quantizers (divides 384; default 48)")
    arg("--pq-bits", type=int, default=8, help="IVF-PQ bits per code (default 8)")
    arg("--pq-train", type=int, default=10_000, help="IVF-PQ codebook training sample (default 10k)")
    arg(
        "--rerank",
        type=int,
        nargs="+",
        default=[0, 1],
        help="hnswsq/ivfpq: fetch depth*F candidates and re-rank them with the exact vectors; 0 = none (default 0 1)",
    )
    arg("--no-bm25", dest="bm25", action="store_false", help="skip the BM25 part")
    arg("--bm25-text-max", type=int, default=100_000, help="above this, BM25 is fed token ids (default 100k)")
    arg("--real-vectors", metavar="NPY", help="also run on this real vectors.npy (e.g. an index generation's)")
    arg("--real-queries", metavar="NPY", help="query vectors for --real-vectors (default: hold out rows)")
    arg("--target-ms", type=float, default=10.0, help="policy: p50 latency target (default 10)")
    arg("--target-recall", type=float, default=0.95, help="policy: recall@10 target (default 0.95)")
    arg("--max-mb", type=float, default=2048.0, help="policy: index memory limit in MB (default 2048)")
    p.set_defaults(func=cmd_scale)
