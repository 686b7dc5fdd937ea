"""Shared fixtures: the real embedding model and a real index of the seed articles."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# One converted model (OpenVINO, the default backend) for every index the tests make,
# subprocesses included, instead of a conversion per temporary index folder.
if "RAG_MODEL_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["RAG_MODEL_CACHE_DIR"] = tempfile.mkdtemp(prefix="rag-test-models-")

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
# shared/ sits beside the project checkout (here and in CI).
MULTIHOP = ROOT.parent / "shared" / "benchmarks" / "multihop-rag"
SEED_FILES = {
    "moscow": SEEDS / "000_9e33ed96be5fae4a.txt",
    "bbc": SEEDS / "001_8d0bda64be03b343.txt",
    "aljazeera": SEEDS / "002_cd3876875249f1f8.txt",
    "econotimes": SEEDS / "003_27f71cfb1a963005.txt",
    "skai": SEEDS / "004_ef021427066fffa1.txt",
}


@pytest.fixture(scope="session")
def embedder():
    from rag.embeddings import Embedder
    from rag.settings import Settings

    return Embedder(Settings())


def make_settings(index_dir: Path, **overrides):
    from rag.settings import Settings

    return Settings().model_copy(update={"index_dir": Path(index_dir), **overrides})


@pytest.fixture(scope="session")
def seed_engine(tmp_path_factory, embedder):
    """An engine over a real index of the five seed articles (built once per run)."""
    from rag.engine import Engine

    engine = Engine(make_settings(tmp_path_factory.mktemp("seed-index")))
    engine.__dict__["embedder"] = embedder  # share the loaded model (cached_property slot)
    report = engine.ingest([SEEDS], show_progress=False)
    assert len(report.added) == 5, report
    return engine


@pytest.fixture
def fresh_engine(tmp_path, embedder):
    from rag.engine import Engine

    engine = Engine(make_settings(tmp_path / "index"))
    engine.__dict__["embedder"] = embedder
    return engine
