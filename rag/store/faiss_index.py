"""The FAISS vector index: which kind for which size, how to build it, how to call it."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np

from ..errors import RagError

# Measured by `python -m eval.bench scale` (2 cores, one query at a time): exact
# search costs ~0.18 ms per 1k passages (19 ms at 100k, 179 ms at 1M), so above
# ~50k passages HNSW takes over. M=32 / efSearch=256 gave recall@10 0.994 and
# recall@100 0.971 at 1.5 ms over 100k (efSearch 128: 0.975 / 0.909; the retriever
# fuses all 100 dense candidates, so recall@100 matters too).
HNSW_THRESHOLD = 50_000
HNSW_M = 32
HNSW_EF_SEARCH = 256
HNSW_EF_CONSTRUCTION = 80
# At 1M passages efSearch 256 fell to recall@10 0.932; 512 gave 0.967 at 4.9 ms p50
# (index 1.72 GB), so large indexes search wider.
HNSW_LARGE = 500_000
HNSW_EF_SEARCH_LARGE = 512


@contextmanager
def faiss_single_thread() -> Iterator[None]:
    """Run faiss calls made inside on the calling thread alone.

    A search makes a few small faiss calls (one flat search per sub-search, fp16
    decodes of a few thousand sentence vectors). faiss parallelises them with
    OpenMP, whose fork/join and spinning workers cost more than they save on a few
    cores and take them from the embedding runtime's threads: on 2 cores, with both
    threads a search spent ~8.5 ms decoding sentence vectors, with one 2.3 ms.
    OpenMP's thread count is per calling thread (libgomp), so ingest elsewhere
    keeps every core; the previous count is restored on the way out.
    """
    import faiss

    prev = faiss.omp_get_max_threads()
    if prev == 1:
        yield
        return
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(prev)


def hnsw_ef_search(n: int) -> int:
    return HNSW_EF_SEARCH_LARGE if n >= HNSW_LARGE else HNSW_EF_SEARCH


def choose_index_type(setting: str, n: int) -> str:
    if setting != "auto":
        return setting
    return "hnsw" if n >= HNSW_THRESHOLD else "flat"


def build_faiss(vectors: np.ndarray, index_type: str):
    import faiss

    dim = vectors.shape[1]
    if index_type == "flat":
        index = faiss.IndexFlatIP(dim)
    elif index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    elif index_type == "ivf":
        nlist = max(1, min(4096, int(4 * np.sqrt(max(len(vectors), 1)))))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        if len(vectors) < nlist:
            raise RagError(f"An IVF index needs at least {nlist} passages; use RAG_INDEX_TYPE=flat.")
        train = vectors if len(vectors) <= 100 * nlist else vectors[
            np.random.default_rng(0).choice(len(vectors), 100 * nlist, replace=False)
        ]
        index.train(np.ascontiguousarray(train))
        # eval.bench scale: nprobe 32 of 4*sqrt(N) lists gave recall@10 0.936 at 100k; 64 gave 0.967.
        index.nprobe = min(nlist, max(64, nlist // 16))
    else:
        raise RagError(f"Unknown index type {index_type!r}: use flat, hnsw, ivf or auto.")
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index
