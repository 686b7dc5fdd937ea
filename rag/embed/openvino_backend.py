"""OpenVINO backend for :class:`~rag.embed.base.Embedder` (``embedding_backend``
``"openvino"``): the fastest of the backends on this kind of CPU, with the float
model's accuracy.

The sentence-transformers model (encoder + pooling + L2 normalisation, the same
module the ONNX backend exports) is converted once, locally, with
``openvino.convert_model`` straight from torch (so PyTorch's fused
scaled-dot-product attention maps onto OpenVINO's fused attention), saved as
OpenVINO IR in the per-user model cache (see :mod:`rag.embed.converted`) and checked
against torch before it is trusted. Nothing is downloaded.

Why it is fast here (measured by ``python -m eval.bench embed``):

* On CPUs with AMX or AVX-512 BF16, OpenVINO runs the float model in bfloat16
  (its default inference precision there). Unlike int8 this keeps the vectors
  within cosine 0.9999 of float32, so retrieval does not change.
* Bulk embedding runs two inference streams of one thread each, fed by an
  ``AsyncInferQueue``: two length-sorted batches at once keep both cores busy
  through the many small ops that a single two-thread request spends waiting.
* Batches are padded only to a multiple of 16 tokens of their own longest text,
  so a large ingest compiles a few dozen shapes, not hundreds; a batch holds a
  fixed budget of tokens, so short texts (sentence units) go many to a batch.

Questions (one short text) run on compilations with a static shape, one per width
(the question padded to a multiple of 16 tokens; compiled on first use or by
``warm_up``, cached on disk, weights shared): a dynamic-shape model re-plans its
kernels for each new length, which on MultiHop-RAG's questions cost a third of the
embedding time (interleaved A/B in one process: 16.5 -> 10.8 ms p50, search 28.7
-> 23.0 ms; vectors within cosine 0.99999 of the dynamic model's).
On CPUs without bf16 the precision hint falls back to float32, where this backend
is about as fast as torch; ``onnx-int8`` is the faster choice there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import shutil
import warnings
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import RagError
from ..settings import Settings
from .converted import ConvertedEmbedder
from .late import pool, token_ranges
from .model_files import CHECK_TEXTS, build_torch_module, normalise, pad

log = logging.getLogger(__name__)

# Bump when the converted graph changes, so stale cached conversions are not reused.
CONVERT_VERSION = 1
# Pad question widths up to a multiple of this: fewer static shapes to compile.
SHAPE_STEP = 16
# Bulk batches (length-sorted) pad to a multiple of this: sentences average ~27
# word pieces, where 16 wasted a fifth of the work on padding (8: 10% less CPU for
# sentence units, measured on 3,279 MultiHop-RAG sentences; 4 gained nothing more).
BULK_STEP = 8
# Upper bound on texts per batch, however short they are.
MAX_BATCH_ROWS = 256
# Tokens per batch: this many full-length texts' worth.
MAX_FULL_ROWS = 16
# Question widths compiled ahead by warm_up(): most questions fit in 64 tokens.
WARM_WIDTH = 64
# bf16 keeps cosine >= 0.9999 on the check texts; a broken conversion gives ~0.5.
MIN_COSINE_OV = 0.995


class OpenVinoEmbedder(ConvertedEmbedder):
    """:class:`~rag.embed.base.Embedder` that runs an OpenVINO conversion of the packaged model."""

    BACKENDS = ("openvino",)
    # The cache entry is a folder (model.xml + model.bin) renamed into place whole.
    VERB = "Converting"
    FORMAT = "OpenVINO"
    SUFFIX = ""

    def __init__(self, settings: Settings, *, for_queries: bool = False):
        super().__init__(settings, for_queries=for_queries)
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        # Question path: width -> (compiled static-shape model, pool of its requests).
        self._static: dict[int, tuple[object, queue.SimpleQueue]] = {}
        self._static_broken = False

    # -- conversion ----------------------------------------------------------
    @cached_property
    def recipe(self) -> dict:
        return {
            "version": CONVERT_VERSION,
            "backend": "openvino",
            "pooling": self.files.layout["pooling"],
            "openvino": openvino_version(),
        }

    def model_file(self, entry: Path) -> Path:
        return entry / "model.xml"

    def entry_complete(self, entry: Path) -> bool:
        return (entry / "model.xml").is_file() and (entry / "model.bin").is_file()

    def write_entry(self, tmp: Path) -> None:
        tmp.mkdir(parents=True)
        self._export(tmp / "model.xml")

    # The conversion outputs the pooled embedding only (the token-output variant: both).
    TOKENS = False

    def _export(self, out: Path) -> None:
        import openvino as ov
        import torch

        module = build_torch_module(self.files.model_dir, self.recipe["pooling"], attention="sdpa", tokens=self.TOKENS)
        check_ids, check_mask = pad(self.files.encode(list(CHECK_TEXTS)))
        with torch.no_grad():
            reference = module(torch.from_numpy(check_ids), torch.from_numpy(check_mask))
            reference = (reference[0] if self.TOKENS else reference).numpy()
        ids, mask = pad(self.files.encode(list(CHECK_TEXTS[:2])))
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            model = ov.convert_model(
                module,
                example_input={"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)},
                input=[("input_ids", [-1, -1], ov.Type.i64), ("attention_mask", [-1, -1], ov.Type.i64)],
            )
        model.outputs[0].get_tensor().set_names({"embedding"})
        if self.TOKENS:
            model.outputs[1].get_tensor().set_names({"tokens"})
        ov.save_model(model, str(out), compress_to_fp16=False)
        compiled = self._compile(out, latency=True)
        got = compiled({"input_ids": check_ids, "attention_mask": check_mask})[0]
        cos = float(np.min(np.sum(normalise(got) * reference, axis=1)))
        if not cos >= MIN_COSINE_OV:
            raise RagError(
                f"The OpenVINO conversion of {self.name!r} disagrees with torch (cosine {cos:.4f}). "
                "Use RAG_EMBEDDING_BACKEND=torch."
            )
        log.info("OpenVINO conversion checked: min cosine vs torch %.5f", cos)

    # -- compilation -----------------------------------------------------------
    def _compile(self, path: Path, *, latency: bool, width: int | None = None):
        """Compile the model at ``path``; with ``width``, for inputs of exactly ``[1, width]``."""
        import openvino as ov
        import openvino.properties.hint as hints

        core = ov.Core()
        # Compiled blobs cached next to the model: later starts skip compilation.
        with contextlib.suppress(Exception):
            core.set_property({"CACHE_DIR": str(Path(path).parent / "cache")})
        if latency:
            config = {
                hints.performance_mode: hints.PerformanceMode.LATENCY,
                "INFERENCE_NUM_THREADS": self.threads,
                "NUM_STREAMS": 1,
            }
        else:
            streams = max(1, self.threads)
            config = {
                hints.performance_mode: hints.PerformanceMode.THROUGHPUT,
                "INFERENCE_NUM_THREADS": self.threads,
                "NUM_STREAMS": streams,
            }
        if self.threads < (os.cpu_count() or 1):
            # Fewer threads than cores means other embedders share the machine (Ray
            # actors of one thread each): OpenVINO would pin each one's threads to the
            # same first cores, so two actors on two cores ran at half speed each.
            config["ENABLE_CPU_PINNING"] = False
        try:
            if width is None:
                return core.compile_model(str(path), "CPU", config)
            model = core.read_model(str(path))
            model.reshape({"input_ids": [1, width], "attention_mask": [1, width]})
            return core.compile_model(model, "CPU", config)
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises plain RuntimeErrors
            if width is not None:
                raise RagError(f"OpenVINO cannot compile {path} for {width} tokens ({exc}).") from exc
            raise RagError(f"OpenVINO cannot load {path} ({exc}). Delete its folder to convert again.") from exc

    @cached_property
    def session(self):
        """The low-latency compilation (queries, small batches)."""
        with self.lock:
            path = self.model_path
            try:
                return self._compile(path, latency=True)
            except RagError:
                log.warning("Cached OpenVINO model %s does not load; converting again.", path)
                shutil.rmtree(path.parent, ignore_errors=True)
                self.forget_model_path()
                return self._compile(self.model_path, latency=True)

    @cached_property
    def _bulk(self):
        """The throughput compilation: one stream per core, one thread each."""
        self.session  # converts (or repairs) the cached model first
        with self.lock:
            return self._compile(self.model_path, latency=False)

    def run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return infer(self.session, self._requests, ids, mask)

    def _static_model(self, width: int):
        """The question model compiled for inputs of exactly ``[1, width]`` tokens."""
        got = self._static.get(width)
        if got is not None:
            return got
        self.session  # converts (or repairs) the cached model first
        with self.lock:
            got = self._static.get(width)
            if got is None:
                compiled = self._compile(self.model_path, latency=True, width=width)
                got = self._static[width] = (compiled, queue.SimpleQueue())
        return got

    def embed_query(self, text: str) -> np.ndarray:
        arr, mask = pad(self.files.encode([text]), step=SHAPE_STEP)
        if not self._static_broken:
            try:
                compiled, pool = self._static_model(arr.shape[1])
            except RagError as exc:  # a model that will not take a static shape: the dynamic one
                log.warning("%s Questions use the dynamic-shape model.", exc)
                self._static_broken = True
            else:
                return normalise(infer(compiled, pool, arr, mask))[0]
        return normalise(self.run(arr, mask))[0]

    def warm_up(self) -> None:
        """Compile the question widths that chat questions use (up to 64 tokens) now,
        not on a user's first question of each length (~0.2-0.5 s each)."""
        self.embed_query("warm up")
        if not self._static_broken:
            for width in range(2 * SHAPE_STEP, WARM_WIDTH + 1, SHAPE_STEP):
                try:
                    self._static_model(width)
                except RagError:
                    break

    def embed(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encoded = self.files.encode(list(texts))
        batch = max(1, int(self.settings.embedding_batch_size))
        if len(encoded) <= batch:
            ids, mask = pad(encoded, step=SHAPE_STEP)
            return normalise(self.run(ids, mask))
        out = np.empty((len(encoded), self.dim), dtype=np.float32)

        def done(request, idx) -> None:
            out[idx] = request.get_output_tensor(0).data

        self._bulk_run(self._bulk, encoded, done, show_progress)
        return normalise(out)

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray], list[tuple[int, int]]]:
        """Vectors of ``texts`` and of their character ``spans`` from one pass (late chunking).

        Runs the token-output conversion of the model (cached per user like the
        other): the passage vector is its pooled output, each span's the normalised
        mean of its tokens' outputs (see :mod:`rag.embed.late`). Returns the span
        vectors per text and the (text, span) pairs no token covered.
        """
        encoded = self.files.encode_with_offsets(list(texts))
        ranges = [token_ranges(off, sp) for (_, off), sp in zip(encoded, spans)]
        missing = [(i, j) for i, r in enumerate(ranges) for j in range(len(r)) if r[j, 1] <= r[j, 0]]
        out = np.empty((len(encoded), self.dim), dtype=np.float32)
        span_out: list[np.ndarray] = [np.zeros((0, self.dim), np.float32)] * len(encoded)

        def done(request, idx) -> None:
            pooled = request.get_output_tensor(0).data
            hidden = request.get_output_tensor(1).data
            for row, i in enumerate(idx):
                out[i] = pooled[row]
                span_out[i] = pool(hidden[row], ranges[i])

        if encoded:
            self._bulk_run(self._tokens._bulk, [ids for ids, _ in encoded], done, False)
        return normalise(out), span_out, missing

    @cached_property
    def _tokens(self) -> "OpenVinoTokenEmbedder":
        return OpenVinoTokenEmbedder(self.settings)

    def _bulk_run(self, compiled, encoded: list[list[int]], done, show_progress: bool) -> None:
        """Run ``compiled`` over ``encoded`` in length-sorted batches on parallel
        streams; ``done(request, indices)`` receives each finished batch."""
        import openvino as ov

        batch = max(1, int(self.settings.embedding_batch_size))
        lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
        order = np.argsort(-lengths, kind="stable")
        bar = None
        if show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(encoded), desc="Embedding", unit="text")

        def finished(request, idx) -> None:
            done(request, idx)
            if bar is not None:
                bar.update(len(idx))

        jobs = ov.AsyncInferQueue(compiled, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        jobs.set_callback(finished)
        # Batches hold about `batch` full-length texts' worth of tokens: short texts
        # (sentence units) go many to a batch, so per-call overhead stays small.
        # Measured (eval.bench embed): 16 full-length texts a batch beat 32 by ~15%
        # with two streams; smaller batches keep both streams fed.
        budget = min(batch, MAX_FULL_ROWS) * max(self.max_seq_length, BULK_STEP)
        try:
            s = 0
            while s < len(order):
                width = -(-int(lengths[order[s]]) // BULK_STEP) * BULK_STEP
                rows = max(1, min(budget // width, MAX_BATCH_ROWS))
                idx = order[s : s + rows]
                s += rows
                ids, mask = pad([encoded[i] for i in idx], step=BULK_STEP)
                jobs.start_async({"input_ids": ids, "attention_mask": mask}, idx)
            jobs.wait_all()
        finally:
            if bar is not None:
                bar.close()


class OpenVinoTokenEmbedder(OpenVinoEmbedder):
    """The conversion with token outputs too, for :meth:`OpenVinoEmbedder.embed_with_spans`.

    A cache entry of its own (``...-openvino-tokens-...``): the question path keeps
    the smaller pooled-only model, and checkouts that do not know this variant
    never mistake its entry for a stale one of theirs.
    """

    VARIANT = "-tokens"
    TOKENS = True

    @cached_property
    def recipe(self) -> dict:
        return {**super().recipe, "outputs": ["embedding", "tokens"]}


def infer(compiled, pool: queue.SimpleQueue, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Run ``compiled`` on a request borrowed from ``pool``: an InferRequest is not
    thread-safe, so each caller takes its own and returns it afterwards."""
    try:
        req = pool.get_nowait()
    except queue.Empty:
        req = compiled.create_infer_request()
    try:
        req.infer({"input_ids": ids, "attention_mask": mask})
        return np.array(req.get_output_tensor(0).data, dtype=np.float32, copy=True)
    finally:
        pool.put(req)


def openvino_version() -> str:
    try:
        import openvino as ov

        return ov.get_version().split("-")[0]
    except Exception:  # noqa: BLE001 - only a cache-key ingredient
        return "unknown"
