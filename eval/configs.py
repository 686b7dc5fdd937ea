"""Named configurations for ``rag eval --config NAME ...``.

Each entry is a description plus overrides of :class:`rag.settings.Settings` fields,
applied on top of the base settings (defaults, ``RAG_*`` environment variables,
``.env``). Several configurations run on the same questions and are reported side
by side.

Overrides of the fields in :data:`INDEX_FIELDS` change what is stored in the index
(chunk boundaries, vectors), so such a configuration gets its own index, built once
and found again by its fingerprint. Every other field only changes retrieval or
answering and shares the index.
"""

from __future__ import annotations

from typing import Any

# Settings that shape the index itself: part of the index fingerprint.
INDEX_FIELDS = ("embedding_model", "embedding_backend", "chunk_max_tokens", "chunk_overlap_tokens", "index_type",
                "sentence_vectors", "passage_vectors")

CONFIGS: dict[str, dict[str, Any]] = {
    "default": {
        "description": "the shipped settings: hybrid retrieval (BM25 + best sentence over dense and BM25 candidates, fused), top 10, per-source/day sub-queries, article diversity",
        "overrides": {},
    },
    "local": {
        "description": "the packaged Qwen2.5 0.5B model reads the best sentences and picks the short answer (answer_mode local)",
        "overrides": {"answer_mode": "local", "local_model": "qwen2.5-0.5b"},
    },
    "local-1.5b": {
        "description": "as local, with the larger packaged Qwen2.5 1.5B model",
        "overrides": {"answer_mode": "local", "local_model": "qwen2.5-1.5b"},
    },
    "late-sentences": {
        "description": "sentence vectors pooled from each passage's one pass (late chunking) instead of embedded one by one",
        "overrides": {"sentence_vectors": "late"},
    },
    "pooled-passages": {
        "description": "passage vectors pooled from their sentence vectors and header (word-piece weighted) instead of a passage pass",
        "overrides": {"passage_vectors": "pooled"},
    },
    "bm25": {
        "description": "lexical retrieval only (BM25)",
        "overrides": {"retrieval_mode": "bm25"},
    },
    "dense": {
        "description": "embedding retrieval only (FAISS inner product)",
        "overrides": {"retrieval_mode": "dense"},
    },
    "hybrid-k5": {
        "description": "hybrid retrieval, only 5 passages retrieved (the @10 metrics then see 5)",
        "overrides": {"top_k": 5},
    },
    "no-diversity": {
        "description": "hybrid without the per-article discount (article_diversity 1.0)",
        "overrides": {"article_diversity": 1.0},
    },
    "no-subqueries": {
        "description": "hybrid without the extra searches restricted to the sources/days a question names",
        "overrides": {"metadata_subqueries": False},
    },
    "no-time": {
        "description": "relative time words (\"last week\", \"latest\") read as plain words: no date filter, no newest-first order",
        "overrides": {"time_aware": False},
    },
    "mmr": {
        "description": "hybrid, re-ranked with maximal marginal relevance (lambda 0.7)",
        "overrides": {"mmr": True},
    },
    "no-lexical": {
        "description": "sentence scores without the question-word coverage term (lexical_weight 0), in retrieval and answering",
        "overrides": {"lexical_weight": 0.0},
    },
    "no-clauses": {
        "description": "sentence scores count question words against the whole question only, not also against each of its clues (clause_coverage off)",
        "overrides": {"clause_coverage": False},
    },
    "no-answer-type": {
        "description": "sentence scores without the expected-answer-type bonus (answer_type_weight 0)",
        "overrides": {"answer_type_weight": 0.0},
    },
    "abstain-strict": {
        "description": "abstains more readily (abstain_threshold 0.5 instead of 0: evidence log-odds)",
        "overrides": {"abstain_threshold": 0.5},
    },
    "abstain-lenient": {
        "description": "abstains less readily (abstain_threshold -0.5 instead of 0: evidence log-odds)",
        "overrides": {"abstain_threshold": -0.5},
    },
    "chunks-128": {
        "description": "smaller passages: 128 word pieces, overlap 32 (own index)",
        "overrides": {"chunk_max_tokens": 128, "chunk_overlap_tokens": 32},
    },
    "onnx-int8": {
        "description": "int8-quantised ONNX embeddings (own index)",
        "overrides": {"embedding_backend": "onnx-int8"},
    },
    "torch-fp32": {
        "description": "plain sentence-transformers float32 embeddings, the reference (own index)",
        "overrides": {"embedding_backend": "torch"},
    },
    "openvino": {
        "description": "OpenVINO embeddings (bf16 on AMX CPUs; own index)",
        "overrides": {"embedding_backend": "openvino"},
    },
}

DEFAULT_CONFIGS = ("default",)


def config_names() -> list[str]:
    return list(CONFIGS)


def overrides_for(name: str) -> dict[str, Any]:
    return dict(CONFIGS[name]["overrides"])


def description(name: str) -> str:
    return CONFIGS[name]["description"]


def changes_index(name: str) -> bool:
    return any(k in INDEX_FIELDS for k in CONFIGS[name]["overrides"])
