"""Benchmarks, one subcommand each.

    python -m eval.bench embed [--n 512] [--backends torch onnx onnx-int8 openvino] [--repeats 3]
                               [--queries 200] [--json eval/out/bench-embed.json]
    python -m eval.bench query --index DIR [--queries 200] [--backend B] [--cold-runs 3]
    python -m eval.bench scale [--sizes 10000 100000 1000000] [--kinds flat hnsw ivf ivfpq]
    python -m eval.bench ingest [--articles 120] [--repeats 3] [--baseline-code DIR] [--late-sentences]
    python -m eval.bench store [--passages 1000000] [--index DIR] [--adds 9] [--big-merge]
    python -m eval.bench devrun --baseline-code DIR [--repeats 1]

``embed`` compares the embedding backends on the same realistic passages (MultiHop-RAG
articles cut by ``rag.ingest.chunking`` into <=256-word-piece passages with their header, as
ingest embeds them): throughput (passages/s, timed R times with the backends
interleaved, so background load hits them alike), query latency (the dev questions,
one at a time, interleaved), and agreement with torch (cosine of the vectors, overlap
of the brute-force top-10 passages for each question).

``query`` times the query path over an existing index (MultiHop-RAG's, built by
``rag eval``): query embedding, ``search``, the whole extractive ``ask`` chain, and
the cold start of a ``rag ask`` process. ``scale`` (``eval/bench/scale.py``) times
FAISS index kinds and BM25 on synthetic data at 10k-1M passages. ``ingest`` times
whole `rag ingest` processes against a plain LangChain pipeline (``plain.py``) on
the same articles; ``store`` the segmented index at a million synthetic passages
(adding 10 articles, search with 1 and 10 segments, merges); ``devrun`` the full
MultiHop-RAG dev run of this code against another checkout.

Data: MultiHop-RAG (Tang & Yang 2024), ODC-BY 1.0.
"""
