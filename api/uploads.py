"""Uploaded files: only the bytes a client sends in the request body are indexed.

Articles added by URL are fetched by the engine (``Engine.ingest_urls``: only http(s),
no private addresses unless allowed); their results are named by the address.

A client names nothing on the server: each file's bytes are written to a fresh
private temporary folder (its name kept only as a base name, for the file type and
the report), ingested from there by the engine, and the folder is deleted. No path
a client sends is ever opened.
"""

from __future__ import annotations

import shutil
import tempfile
import unicodedata
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Sequence

from rag.engine import Engine
from rag.types import FileResult, IngestReport

from .models import FileResultOut, IngestOut

# Long enough for any real file name, short enough for every file system.
MAX_NAME_CHARS = 200


def safe_name(filename: str | None, index: int) -> str:
    """A base name to write the upload under: no folders, no control characters, not empty."""
    raw = (filename or "").replace("\\", "/")
    name = PurePosixPath(raw).name
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if name in ("", ".", ".."):
        name = f"upload-{index + 1}"
    if len(name) > MAX_NAME_CHARS:
        suffix = PurePosixPath(name).suffix[:20]
        name = name[: MAX_NAME_CHARS - len(suffix)] + suffix
    return name


def ingest_uploads(engine: Engine, files: Sequence[tuple[str | None, BinaryIO]]) -> tuple[IngestReport, list[FileResultOut]]:
    """Write ``(filename, stream)`` pairs to a private folder and ingest them (blocking):
    the engine's report and a result per file named as the client named it."""
    with tempfile.TemporaryDirectory(prefix="article-rag-upload-") as tmp:
        shown: dict[str, str] = {}  # written path -> the name the client gave
        paths: list[Path] = []
        for i, (filename, stream) in enumerate(files):
            name = safe_name(filename, i)
            folder = Path(tmp) / str(i)  # one folder per file: two uploads may share a name
            folder.mkdir()
            path = folder / name
            with open(path, "wb") as out:
                shutil.copyfileobj(stream, out, 1 << 20)
            shown[str(path)] = name
            paths.append(path)
        report = engine.ingest(paths, show_progress=False)
    return report, file_results(report, shown)


def file_results(report: IngestReport, shown: dict[str, str]) -> list[FileResultOut]:
    """Each result with its server-side path replaced by the client's file name (a record keeps its suffix)."""

    def client_name(path: str) -> str:
        for written, name in shown.items():
            if path == written or path.startswith(written + " ("):  # "file.jsonl (line 3)"
                return name + path[len(written):]
        return PurePosixPath(path).name

    return [FileResultOut(file=client_name(r.path), **outcome(r)) for r in report.results]


def url_results(report: IngestReport) -> list[FileResultOut]:
    """Each result of :meth:`Engine.ingest_urls`, named by its address."""
    return [FileResultOut(url=r.path, **outcome(r)) for r in report.results]


def outcome(r: FileResult) -> dict:
    return {"status": r.status, "reason": r.reason, "article_id": r.article_id, "title": r.title,
            "passages": r.passages}


def ingest_out(reports: Sequence[tuple[IngestReport, list[FileResultOut]]]) -> IngestOut:
    """One answer for the files and the URLs of a request: counts, summary line, every result."""
    combined = IngestReport([r for report, _ in reports for r in report.results])
    return IngestOut(summary=combined.summary(), added=len(combined.added), updated=len(combined.updated),
                     duplicates=len(combined.duplicates), rejected=len(combined.rejected),
                     results=[out for _, results in reports for out in results])
