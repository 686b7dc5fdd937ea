"""ONNX Runtime backend for :class:`~rag.embed.base.Embedder` (``embedding_backend``
``"onnx"`` or ``"onnx-int8"``).

The sentence-transformers model is exported once, locally, with
``torch.onnx.export`` (the TorchScript exporter): transformer, mean (or CLS)
pooling and L2 normalisation all sit inside the graph, with dynamic batch and
sequence axes. Nothing is downloaded.

``onnx-int8`` quantises every ``nn.Linear`` of the encoder before export: weights
become int8 per output channel (symmetric), activations are quantised
dynamically to uint8 at run time (``DynamicQuantizeLinear`` + ``MatMulInteger``,
which ONNX Runtime fuses into ``DynamicQuantizeMatMul``: u8 x s8, the fast path
on CPUs with VNNI). This is what ``onnxruntime.quantization.quantize_dynamic``
would produce, done in torch because that tool needs the ``onnx`` package, which
is not a dependency. On x86 CPUs without VNNI the weights keep 7 bits so the
AVX2 u8 x s8 kernel cannot saturate.

Exports are cached once per user (see :mod:`rag.embed.converted`) and checked
against the torch model before they are trusted.

Inference sorts the texts by token count and batches neighbours together, so a
batch is padded only to its own longest text; the original order is restored.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import warnings
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import RagError
from .converted import ConvertedEmbedder
from .model_files import CHECK_TEXTS, build_torch_module, normalise, pad

log = logging.getLogger(__name__)

# Bump when the exported graph changes, so stale cached exports are not reused.
EXPORT_VERSION = 1
OPSET = 17
BACKENDS = ("onnx", "onnx-int8")
# Minimum cosine between the exported model and torch on the check sentences: this
# catches a broken export (cosines ~0.5), not quantisation noise (int8: >= 0.96 on
# the 3-token "ok", ~0.994 typical).
MIN_COSINE = {"onnx": 0.999, "onnx-int8": 0.9}


def has_vnni() -> bool:
    """Whether u8 x s8 integer dot products are safe from int16 saturation here.

    x86 CPUs without VNNI run ONNX Runtime's u8 x s8 kernels on AVX2
    ``vpmaddubsw``, which saturates with full 8-bit weights; other
    architectures have no such issue.
    """
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return True
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False  # unknown x86: be safe
    flags: set[str] = set()
    for line in info.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
            break
    return bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})


class OnnxEmbedder(ConvertedEmbedder):
    """:class:`~rag.embed.base.Embedder` whose ``embed`` runs an exported ONNX graph.

    The tokenizer, ``count_tokens`` and ``dim`` behave exactly as the torch
    backend's; the torch model is loaded only to export (once per model and
    backend, then cached).
    """

    BACKENDS = BACKENDS
    VERB = "Exporting"
    FORMAT = "ONNX"
    SUFFIX = ".onnx"

    # -- export ------------------------------------------------------------
    @cached_property
    def recipe(self) -> dict:
        recipe = {
            "version": EXPORT_VERSION,
            "opset": OPSET,
            "backend": self.backend,
            "pooling": self.files.layout["pooling"],
        }
        if self.backend == "onnx-int8":
            recipe.update(weights="s8", per_channel=True, weight_bits=8 if has_vnni() else 7)
        return recipe

    def write_entry(self, tmp: Path) -> None:
        self._export(tmp)

    def _export(self, out: Path) -> None:
        import torch

        recipe = self.recipe
        module = build_torch_module(self.files.model_dir, recipe["pooling"])
        check_ids, check_mask = pad(self.files.encode(list(CHECK_TEXTS)))
        with torch.no_grad():
            reference = module(torch.from_numpy(check_ids), torch.from_numpy(check_mask)).numpy()
        if self.backend == "onnx-int8":
            _quantise_linears(module, bits=recipe["weight_bits"], per_channel=recipe["per_channel"])
        ids, mask = pad(self.files.encode(list(CHECK_TEXTS[:2])))  # a padded trace example
        with _exporter_without_onnx_package(), warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (torch.from_numpy(ids), torch.from_numpy(mask)),
                str(out),
                input_names=["input_ids", "attention_mask"],
                output_names=["embedding"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "sequence"},
                    "attention_mask": {0: "batch", 1: "sequence"},
                    "embedding": {0: "batch"},
                },
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
                external_data=False,
            )
        # Check the export against the float torch model before trusting it.
        got = self._make_session(out).run(None, {"input_ids": check_ids, "attention_mask": check_mask})[0]
        cos = float(np.min(np.sum(normalise(got) * reference, axis=1)))
        if not cos >= MIN_COSINE[self.backend]:
            raise RagError(
                f"The ONNX export of {self.name!r} disagrees with torch (cosine {cos:.4f}). "
                "Use RAG_EMBEDDING_BACKEND=torch."
            )
        log.info("ONNX export checked: min cosine vs torch %.5f", cos)

    # -- inference ---------------------------------------------------------
    def _make_session(self, path: Path):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        if self.for_queries:
            # ORT's pool threads spin for a while after each run; between two
            # questions that only steals the cores from the FAISS, BM25 and numpy
            # work of the same search (measured: search p50 47.7 -> 32.6 ms with
            # int8 questions on a busy 2-core machine; the embedding itself ~10%
            # slower).
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            raise RagError(f"ONNX Runtime cannot load {path} ({exc}). Delete it to re-export.") from exc

    @cached_property
    def session(self):
        with self.lock:  # one export per embedder even if two threads ask at once
            path = self.model_path
            try:
                return self._make_session(path)
            except RagError:
                # A damaged cached file (disk trouble, a hand edit): export again, once.
                log.warning("Cached ONNX model %s does not load; exporting again.", path)
                with contextlib.suppress(OSError):
                    path.unlink()
                self.forget_model_path()
                return self._make_session(self.model_path)

    def run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]

    def embed(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encoded = self.files.encode(list(texts))
        lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
        # Longest first: the first batch shows the peak memory at once, and each
        # batch is padded only to its own longest text.
        order = np.argsort(-lengths, kind="stable")
        batch = max(1, int(self.settings.embedding_batch_size))
        out = np.empty((len(encoded), self.dim), dtype=np.float32)
        starts = range(0, len(order), batch)
        if show_progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="Embedding", unit="batch")
        for s in starts:
            idx = order[s : s + batch]
            ids, mask = pad([encoded[i] for i in idx])
            out[idx] = self.run(ids, mask)
        return normalise(out)

    def embed_query(self, text: str) -> np.ndarray:
        ids = self.files.encode([text])[0]
        arr = np.asarray([ids], dtype=np.int64)
        return normalise(self.run(arr, np.ones_like(arr)))[0]


# -- helpers ------------------------------------------------------------------
@contextlib.contextmanager
def _exporter_without_onnx_package():
    """Let the TorchScript exporter run without the ``onnx`` package installed.

    It imports ``onnx`` only to splice onnx-script functions into the model, and
    this graph has none; so when ``onnx`` is missing, skip that step.
    """
    try:
        import onnx  # noqa: F401
    except ImportError:
        try:
            from torch.onnx._internal.torchscript_exporter import onnx_proto_utils as opu
        except ImportError:
            opu = None
    else:
        opu = None  # onnx is there: nothing to work around
    original = getattr(opu, "_add_onnxscript_fn", None)
    if original is None:
        yield
        return
    opu._add_onnxscript_fn = lambda model_bytes, custom_opsets: model_bytes
    try:
        yield
    finally:
        opu._add_onnxscript_fn = original


def _quantise_linears(model, *, bits: int, per_channel: bool) -> None:
    """Replace each ``nn.Linear`` of ``model`` with a dynamic u8 x s8 matmul.

    Weights: symmetric int8 (per output channel with ``per_channel``); activations
    are quantised per tensor at run time by ``DynamicQuantizeLinear``. (Tried and
    dropped: per-tensor weights, cosine ~0.94; uint8 weights, as accurate but ~1.6x
    slower; SmoothQuant-style rescaling of outlier input channels, no better;
    keeping the FFN input projection in float, +0.002 cosine for ~25% speed.)
    """
    import torch

    qmax = 2 ** (bits - 1) - 1

    class DynQuantMatMul(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, wq, scale, zero, bias):  # eager: the dequantised float result
            return x @ (wq.to(x.dtype) * scale) + bias

        @staticmethod
        def symbolic(g, x, wq, scale, zero, bias):
            # The pattern quantize_dynamic emits; ORT fuses it to DynamicQuantizeMatMul.
            xq, x_scale, x_zero = g.op("DynamicQuantizeLinear", x, outputs=3)
            acc = g.op("MatMulInteger", xq, wq, x_zero, zero)
            accf = g.op("Cast", acc, to_i=1)  # TensorProto.FLOAT
            return g.op("Add", g.op("Mul", accf, g.op("Mul", x_scale, scale)), bias)

    class QuantLinear(torch.nn.Module):
        def __init__(self, lin: torch.nn.Linear):
            super().__init__()
            w = lin.weight.detach().t().contiguous().float()  # [in, out]
            amax = w.abs().amax(0) if per_channel else w.abs().max().expand(w.shape[1])
            scale = (amax / qmax).clamp(min=1e-12)
            wq = torch.round(w / scale).clamp(-qmax, qmax).to(torch.int8)
            bias = lin.bias.detach().float() if lin.bias is not None else torch.zeros(w.shape[1])
            if not per_channel:
                scale = scale[:1].reshape(())
            self.register_buffer("wq", wq)
            self.register_buffer("scale", scale.float())
            self.register_buffer("zero", torch.zeros(scale.shape, dtype=torch.int8))
            self.register_buffer("bias", bias.clone())

        def forward(self, x):
            return DynQuantMatMul.apply(x, self.wq, self.scale, self.zero, self.bias)

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.Linear):
                setattr(parent, name, QuantLinear(child))
