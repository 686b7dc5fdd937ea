"""Shared fixtures: the real embedding model and a real index of the seed articles."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.runtime import configure_process

# As every face does at start (offline, quiet OpenMP threads, no analytics).
configure_process()
# Converted models (OpenVINO, the default backend) go to the per-user cache, as the
# app's do, so every index and subprocess of a run shares one conversion.

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
    from rag.embed.torch_backend import TorchEmbedder as Embedder
    from rag.settings import Settings

    return Embedder(Settings())


def make_settings(index_dir: Path, **overrides):
    from rag.settings import Settings

    return Settings().model_copy(update={"index_dir": Path(index_dir), **overrides})


@pytest.fixture(scope="session")
def seed_engine(tmp_path_factory, embedder):
    """An engine over a real index of the five seed articles (built once per run)."""
    from rag.engine import Engine

    engine = Engine(make_settings(tmp_path_factory.mktemp("seed-index")), embedder=embedder)
    report = engine.ingest([SEEDS], show_progress=False)
    assert len(report.added) == 5, report
    return engine


@pytest.fixture
def fresh_engine(tmp_path, embedder):
    from rag.engine import Engine

    engine = Engine(make_settings(tmp_path / "index"), embedder=embedder)
    return engine
