"""ONNX Runtime backend for :class:`~rag.embeddings.Embedder` (``embedding_backend``
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

Exports are cached in ``<index_dir>/.models/`` (or ``RAG_MODEL_CACHE_DIR``) under a name that hashes the model
files (sizes and mtimes), the backend and the export recipe; they are written to a
temporary file, checked against the torch model, then moved into place with
``os.replace``, so a crash never leaves a half-written model behind.

Inference sorts the texts by token count and batches neighbours together, so a
batch is padded only to its own longest text; the original order is restored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import threading
import warnings
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np

from .embeddings import Embedder, resolve_model_path
from .errors import RagError
from .settings import Settings

log = logging.getLogger(__name__)

# Bump when the exported graph changes, so stale cached exports are not reused.
EXPORT_VERSION = 1
OPSET = 17
BACKENDS = ("onnx", "onnx-int8")
# Minimum cosine between the exported model and torch on the check sentences: this
# catches a broken export (cosines ~0.5), not quantisation noise (int8: >= 0.96 on
# the 3-token "ok", ~0.994 typical).
MIN_COSINE = {"onnx": 0.999, "onnx-int8": 0.9}
_CHECK_TEXTS = [
    "Who met the Ukrainian president at the White House on Friday?",
    "Shares fell sharply after the company reported lower quarterly earnings than analysts had expected.",
    "ok",
    # Longer than max_seq_length: checks truncation and long padded batches.
    " ".join(["The central bank raised interest rates again to curb inflation."] * 40),
]
_EXPORT_LOCK = threading.Lock()
_SUPPORTED_MODULES = {"Transformer", "Pooling", "Normalize"}


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


class OnnxEmbedder(Embedder):
    """:class:`Embedder` whose ``embed`` runs an exported ONNX graph.

    The tokenizer, ``count_tokens`` and ``dim`` behave exactly as the torch
    backend's; the torch model is loaded only to export (once per model and
    backend, then cached next to the index).
    """

    SERVES: tuple[str, ...] = BACKENDS

    def __init__(self, settings: Settings, *, for_queries: bool = False):
        # Deliberately not Embedder.__init__: that imports torch only to set its
        # thread count, which this backend never needs after the export.
        self.settings = settings
        self.for_queries = for_queries
        self.name = settings.embedding_model
        self.path = resolve_model_path(self.name)
        backend = settings.embedding_backend
        if backend not in self.SERVES:
            raise RagError(f"{type(self).__name__} serves backends {self.SERVES}, not {backend!r}.")
        self.backend = backend
        self.threads = settings.embedding_threads or os.cpu_count() or 1
        self._lock = threading.Lock()

    # -- model files -------------------------------------------------------
    @cached_property
    def model_dir(self) -> Path:
        """The model's local folder (packaged, a user folder, or the HF cache)."""
        p = Path(self.path)
        if p.is_dir():
            return p
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(self.path, local_files_only=True))
        except Exception as exc:  # noqa: BLE001 - any failure means "not available offline"
            raise RagError(
                f"Cannot find embedding model {self.name!r} on disk ({exc}). Offline, only the "
                "packaged model or a local folder works: set RAG_EMBEDDING_MODEL."
            ) from exc

    def _read_json(self, rel: str) -> dict | list | None:
        f = self.model_dir / rel
        if not f.is_file():
            return None
        try:
            return json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    @cached_property
    def _layout(self) -> dict:
        """What the sentence-transformers pipeline does: pooling, lower-casing, length."""
        modules = self._read_json("modules.json") or [
            {"type": "sentence_transformers.models.Transformer", "path": ""},
            {"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"},
        ]
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        unsupported = [k for k in kinds if k not in _SUPPORTED_MODULES]
        if unsupported or "Transformer" not in kinds[:1]:
            raise RagError(
                f"The ONNX backend supports Transformer + Pooling (+ Normalize) models; "
                f"{self.name!r} has {kinds}. Use RAG_EMBEDDING_BACKEND=torch."
            )
        pooling = "mean"
        for m, kind in zip(modules, kinds):
            if kind == "Pooling":
                cfg = self._read_json(os.path.join(m.get("path", ""), "config.json")) or {}
                modes = [k for k, v in cfg.items() if k.startswith("pooling_mode") and v]
                if modes == ["pooling_mode_cls_token"]:
                    pooling = "cls"
                elif modes not in ([], ["pooling_mode_mean_tokens"]):
                    raise RagError(
                        f"The ONNX backend supports mean or CLS pooling; {self.name!r} uses "
                        f"{modes}. Use RAG_EMBEDDING_BACKEND=torch."
                    )
        st_cfg = self._read_json("sentence_bert_config.json") or {}
        cfg = self._read_json("config.json") or {}
        max_len = st_cfg.get("max_seq_length")
        if not max_len:
            max_len = min(
                int(getattr(self.tokenizer, "model_max_length", 512) or 512),
                int(cfg.get("max_position_embeddings", 512)),
            )
        dim = cfg.get("hidden_size") or cfg.get("dim") or cfg.get("d_model")
        return {
            "pooling": pooling,
            "lowercase": bool(st_cfg.get("do_lower_case", False)),
            "max_seq_length": int(max_len),
            "dim": int(dim) if dim else None,
        }

    @cached_property
    def tokenizer(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(str(self.model_dir))
        except (OSError, ValueError) as exc:
            raise RagError(f"Cannot load the tokenizer of {self.name!r}: {exc}") from exc

    @property
    def max_seq_length(self) -> int:
        return self._layout["max_seq_length"]

    @cached_property
    def dim(self) -> int:
        if self._layout["dim"]:
            return self._layout["dim"]
        return int(self._run(np.array([[0]], dtype=np.int64), np.ones((1, 1), np.int64)).shape[1])

    @cached_property
    def _fast_tokenizer(self):
        """A private ``tokenizers.Tokenizer`` with truncation set once.

        Calling the HF tokenizer with ``truncation=`` mutates shared state, which
        fails under concurrent use ("Already borrowed"); this copy is never mutated
        after construction. ``None`` when the tokenizer is not a fast one.
        """
        from tokenizers import Tokenizer

        file = self.model_dir / "tokenizer.json"
        if file.is_file():
            # Straight from the file: the query path then never imports transformers
            # (and through it torch), which is most of a cold start.
            try:
                tok = Tokenizer.from_file(str(file))
            except Exception:  # noqa: BLE001 - fall back to the HF tokenizer below
                tok = None
        else:
            tok = None
        if tok is None:
            backend = getattr(self.tokenizer, "backend_tokenizer", None)
            if backend is None:
                return None
            tok = Tokenizer.from_str(backend.to_str())
        tok.no_padding()
        tok.enable_truncation(max_length=self.max_seq_length)
        return tok

    def _encode(self, texts: list[str]) -> list[list[int]]:
        if self._layout["lowercase"]:
            texts = [t.lower() for t in texts]
        fast = self._fast_tokenizer
        if fast is not None:
            return [e.ids for e in fast.encode_batch(texts, add_special_tokens=True)]
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_seq_length, verbose=False)
        return list(enc["input_ids"])

    # -- export ------------------------------------------------------------
    @cached_property
    def _recipe(self) -> dict:
        recipe = {
            "version": EXPORT_VERSION,
            "opset": OPSET,
            "backend": self.backend,
            "pooling": self._layout["pooling"],
        }
        if self.backend == "onnx-int8":
            recipe.update(weights="s8", per_channel=True, weight_bits=8 if has_vnni() else 7)
        return recipe

    def _cache_key(self) -> str:
        h = hashlib.sha256()
        h.update(json.dumps({"model": self.name, **self._recipe}, sort_keys=True).encode())
        for f in sorted(self.model_dir.rglob("*")):
            if f.is_file() and not f.name.startswith(".") and f.suffix.lower() != ".md":
                st = f.stat()
                h.update(f"{f.relative_to(self.model_dir).as_posix()}:{st.st_size}:{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]

    # What differs between cached model formats; the caching itself is shared.
    EXPORT_VERB = "Exporting"
    FORMAT = "ONNX"
    SUFFIX = ".onnx"  # a single file; a subclass may cache a folder instead

    def _model_file(self, entry: Path) -> Path:
        """The file to load inside a cache entry (the entry itself for ONNX)."""
        return entry

    def _entry_complete(self, entry: Path) -> bool:
        return entry.is_file()

    def _write_entry(self, tmp: Path) -> None:
        self._export(tmp)

    @cached_property
    def onnx_path(self) -> Path:
        """The exported model file, exported now if not cached yet."""
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name).strip("._")[-80:] or "model"
        cache = self.settings.models_dir
        prefix = f"{safe}-{self.backend}-"
        dst = cache / f"{prefix}{self._cache_key()}{self.SUFFIX}"
        if self._entry_complete(dst):
            return self._model_file(dst)
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RagError(f"Cannot create the model cache {cache}: {exc}") from exc
        log.info("%s %s to %s (%s), once: %s", self.EXPORT_VERB, self.name, self.FORMAT, self.backend, dst)
        tmp = cache / f".{dst.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            with _EXPORT_LOCK:  # the exporter patch below is process-global
                if self._entry_complete(dst):  # another embedder in this process just exported it
                    return self._model_file(dst)
                _remove(tmp)
                self._write_entry(tmp)
                _remove(dst)  # a damaged entry (a folder is not replaced by os.replace)
                os.replace(tmp, dst)  # the whole entry appears at once
        except RagError:
            raise
        except Exception as exc:  # noqa: BLE001 - exporter failures come in many types
            raise RagError(
                f"{self.EXPORT_VERB} {self.name!r} to {self.FORMAT} failed ({type(exc).__name__}: {exc}). "
                "Use RAG_EMBEDDING_BACKEND=torch."
            ) from exc
        finally:
            _remove(tmp)
        # Older exports of the same model and backend are stale now.
        # Exactly this backend's names: "x-onnx-*" must not catch "x-onnx-int8-*".
        stale = re.compile(re.escape(prefix) + r"[0-9a-f]{16}" + re.escape(self.SUFFIX))
        for old in cache.glob(f"{prefix}*"):
            if old != dst and stale.fullmatch(old.name):
                _remove(old)
        return self._model_file(dst)

    def _export(self, out: Path) -> None:
        import torch

        recipe = self._recipe
        module = _build_torch_module(self.model_dir, recipe["pooling"])
        check_ids, check_mask = _pad(self._encode(list(_CHECK_TEXTS)))
        with torch.no_grad():
            reference = module(torch.from_numpy(check_ids), torch.from_numpy(check_mask)).numpy()
        if self.backend == "onnx-int8":
            _quantise_linears(module, bits=recipe["weight_bits"], per_channel=recipe["per_channel"])
        ids, mask = _pad(self._encode(list(_CHECK_TEXTS[:2])))  # a padded trace example
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
        cos = float(np.min(np.sum(_normalise(got) * reference, axis=1)))
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
        with self._lock:  # one export per embedder even if two threads ask at once
            path = self.onnx_path
            try:
                return self._make_session(path)
            except RagError:
                # A damaged cached file (disk trouble, a hand edit): export again, once.
                log.warning("Cached ONNX model %s does not load; exporting again.", path)
                with contextlib.suppress(OSError):
                    path.unlink()
                self.__dict__.pop("onnx_path", None)
                return self._make_session(self.onnx_path)

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]

    def embed(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encoded = self._encode(list(texts))
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
            ids, mask = _pad([encoded[i] for i in idx])
            out[idx] = self._run(ids, mask)
        return _normalise(out)

    def embed_query(self, text: str) -> np.ndarray:
        ids = self._encode([text])[0]
        arr = np.asarray([ids], dtype=np.int64)
        return _normalise(self._run(arr, np.ones_like(arr)))[0]


# -- helpers ------------------------------------------------------------------
def _remove(path: Path) -> None:
    """Delete a file or folder if it is there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _pad(seqs: Sequence[Sequence[int]], pad_id: int = 0, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    width = max(1, max(len(s) for s in seqs))
    width = -(-width // step) * step
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for row, s in enumerate(seqs):
        ids[row, : len(s)] = s
        mask[row, : len(s)] = 1
    return ids, mask


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.ascontiguousarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    return v / norms


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


def _build_torch_module(model_dir: Path, pooling: str, attention: str = "eager"):
    """The float torch module to export: encoder + pooling + L2 normalisation.

    ``attention="eager"`` traces into plain MatMul/Softmax ops (what the ONNX
    exporter needs); ``"sdpa"`` keeps PyTorch's fused attention, which OpenVINO's
    converter maps onto its own fused kernel.
    """
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    hf_logging.disable_progress_bar()  # a "Loading weights" bar in the middle of a CLI answer
    try:
        encoder = AutoModel.from_pretrained(str(model_dir), attn_implementation=attention)
    except (OSError, ValueError) as exc:
        raise RagError(f"Cannot load {model_dir} for the ONNX export: {exc}") from exc
    if hasattr(encoder, "pooler"):
        encoder.pooler = None  # the HF pooler head is unused by sentence embeddings
    cls_pooling = pooling == "cls"

    class Pooled(torch.nn.Module):
        def __init__(self, enc):
            super().__init__()
            self.enc = enc

        def forward(self, input_ids, attention_mask):
            hidden = self.enc(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            if cls_pooling:
                pooled = hidden[:, 0]
            else:
                m = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    # eval() on the wrapper too: the exporter restores the wrapper's mode afterwards.
    return Pooled(encoder.eval()).eval()


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
