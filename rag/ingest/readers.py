"""Reading article files into cleaned :class:`Article` records.

Formats: ``.txt``/``.md`` (pages saved as text, cleaned of site boilerplate),
``.html``/``.htm`` (main text extracted with trafilatura), ``.json`` (an object
or a list of objects) and ``.jsonl`` (one object a line). Every problem with an
input is reported per file (or per record) with the reason; nothing here raises
for bad input.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import first_line
from ..settings import Settings
from ..types import Article, FileResult
from .cleaning import clean_body, clean_text
from .dates import find_dateline
from .metadata import headline_from_text, page_metadata, plausible_author
from .urls import normalize_url, same_site

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = {".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl"}

# Field names seen in the wild for each attribute of a JSON article record.
BODY_KEYS = ("body", "text", "content", "article", "maintext")
TITLE_KEYS = ("title", "headline", "name")
SOURCE_KEYS = ("source", "site_name", "sitename", "publisher", "outlet")
URL_KEYS = ("url", "link", "href")
DATE_KEYS = ("published_at", "publishedAt", "published", "date", "pubDate", "date_publish")
AUTHOR_KEYS = ("author", "authors", "byline")

# Too short to be an article after cleaning: a title or a stray caption.
MIN_TEXT_CHARS = 40


@dataclass
class LoadResult:
    """Articles read from one file, and per-file/record problems."""

    path: str
    articles: list[Article] = field(default_factory=list)
    problems: list[FileResult] = field(default_factory=list)


def iter_input_files(paths: Iterable[str | Path]) -> Iterator[tuple[Path, FileResult | None]]:
    """Expand folders; yield ``(path, None)`` for each file to read, ``(path, result)``
    for a path that is not read: rejected (named directly but unusable) or skipped
    (inside a folder: hidden, unsupported type, or a link that leads nowhere), with
    the reason, so that nothing is left out without saying so."""
    for raw in paths:
        path = Path(raw).expanduser()
        problem = _path_problem(path)
        if problem:
            yield path, FileResult(str(path), "rejected", problem)
        elif path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path)
                if any(part.startswith(".") for part in rel.parts):
                    if child.is_file() or child.is_symlink():
                        yield child, FileResult(str(child), "skipped", "hidden file")
                    continue
                if child.is_dir() and not child.is_symlink():
                    continue
                why = _path_problem(child)
                if why:
                    yield child, FileResult(str(child), "skipped", why)
                elif child.is_dir():
                    yield child, FileResult(str(child), "skipped", "a link to a folder (not followed)")
                elif child.suffix.lower() not in SUPPORTED_SUFFIXES:
                    yield child, FileResult(str(child), "skipped", f"unsupported file type {child.suffix or '(none)'!r}")
                else:
                    yield child, None
        elif path.suffix.lower() in SUPPORTED_SUFFIXES:
            yield path, None
        else:
            yield path, FileResult(str(path), "rejected", (
                f"unsupported file type {path.suffix or '(none)'!r}; "
                f"use one of {', '.join(sorted(SUPPORTED_SUFFIXES))}"
            ))


def _path_problem(path: Path) -> str | None:
    """Why a path cannot be read (missing, a link loop or dangling link, not a regular file), or None."""
    try:
        st = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop"
        if path.is_symlink():
            return "a symbolic link to nothing"
        if exc.errno == errno.EACCES:
            return "permission denied"
        return "no such file or folder"
    if stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
        return None
    return "not a regular file (a device, pipe or socket)"


def article_id_for(title: str, text: str, url: str | None = None) -> str:
    """Stable content hash: the same cleaned article always gets the same id.

    The URL is part of it when there is one, so that two sites publishing the same
    wire story word for word are two articles (grouped as copies), not one.
    """
    h = hashlib.sha256()
    h.update(_norm_for_hash(title).encode("utf-8"))
    h.update(b"\x00")
    h.update(_norm_for_hash(text).encode("utf-8"))
    if url:
        h.update(b"\x00")
        h.update(url.strip().encode("utf-8"))
    return h.hexdigest()[:16]


def text_hash(title: str, text: str) -> str:
    """Hash of an article's content alone (title and text): tells a changed version from the same one."""
    return article_id_for(title, text)


def _norm_for_hash(s: str) -> str:
    return " ".join(unicodedata.normalize("NFC", s).split())


def decode_bytes(data: bytes) -> str:
    """UTF-8 first (with or without BOM), then the best charset guess.

    Raises ValueError for content that is not text.
    """
    if not data.strip():
        raise ValueError("empty file")
    head = data[:8192]
    if b"\x00" in head and not (head.startswith(b"\xff\xfe") or head.startswith(b"\xfe\xff")):
        raise ValueError("binary file (contains NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
        encoding = None
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        best = from_bytes(data).best()
        if best is None:
            raise ValueError("not valid UTF-8 and no text encoding fits (binary file?)") from None
        text, encoding = str(best), best.encoding
    # Control characters are valid UTF-8, and charset-normalizer decodes nearly
    # anything: what is mostly control characters is binary data, not text.
    sample = text[:8192]
    ctrl = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t")
    if ctrl > 0.05 * len(sample):
        raise ValueError("binary file (mostly control characters), not text")
    if encoding:
        log.info("decoded as %s (not UTF-8)", encoding)
    return text


def normalise_date(value: Any) -> str | None:
    """ISO 8601 when the value parses; None when absent; else the value as given."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(float(value)).isoformat()
        except (OverflowError, OSError, ValueError):
            return str(value)
    s = str(value).strip()
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).isoformat()
    except ValueError:
        pass
    try:
        from dateutil import parser as dateparser

        return dateparser.parse(s).isoformat()
    except (ValueError, OverflowError, TypeError):
        return s


def load_file(path: Path, settings: Settings) -> LoadResult:
    """Read one file. Never raises for bad content: problems are in the result."""
    res = LoadResult(str(path))
    try:
        size = path.stat().st_size
        if size == 0:
            raise ValueError("empty file")
        if size > settings.max_file_bytes:
            raise ValueError(
                f"file is {size / 1048576:.1f} MB, above the {settings.max_file_mb:g} MB limit "
                "(raise it with RAG_MAX_FILE_MB)"
            )
        text = decode_bytes(path.read_bytes())
    except (OSError, ValueError) as exc:
        res.problems.append(FileResult(str(path), "rejected", str(exc)))
        return res

    suffix = path.suffix.lower()
    try:
        if suffix in (".json", ".jsonl"):
            _load_json_records(text, path, res, jsonl=suffix == ".jsonl")
        elif suffix in (".html", ".htm"):
            res.articles.append(_from_html(text, path))
        else:
            res.articles.append(_from_text(text, path, markdown=suffix in (".md", ".markdown")))
    except Exception as exc:  # noqa: BLE001 - one bad file must never cost the others
        res.problems.append(FileResult(str(path), "rejected", unreadable_reason(exc)))
    return res


def unreadable_reason(exc: BaseException) -> str:
    """Why a file or record could not be read, in words (the traceback goes to the debug log)."""
    if isinstance(exc, ValueError) and not isinstance(exc, UnicodeError):
        return str(exc)
    log.debug("reading failed", exc_info=exc)
    if isinstance(exc, RecursionError):
        return "nested too deeply to read (thousands of levels of brackets or tags)"
    if isinstance(exc, MemoryError):
        return "too large to read into memory"
    if isinstance(exc, UnicodeError):
        return f"not decodable as text ({exc})"
    return f"could not be read ({type(exc).__name__}: {first_line(exc)})"


def _load_json_records(text: str, path: Path, res: LoadResult, *, jsonl: bool) -> None:
    records: list[tuple[str, Any]] = []
    if jsonl:
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append((f"line {lineno}", json.loads(line)))
            except json.JSONDecodeError as exc:
                res.problems.append(FileResult(
                    f"{path} (line {lineno})", "rejected",
                    f"invalid JSON at column {exc.colno}: {exc.msg}",
                ))
            except Exception as exc:  # noqa: BLE001 - RecursionError, MemoryError: this line only
                res.problems.append(FileResult(f"{path} (line {lineno})", "rejected", unreadable_reason(exc)))
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        if isinstance(data, dict) and not any(k in data for k in BODY_KEYS):
            # A wrapper object such as {"articles": [...]}.
            lists = [v for v in data.values() if isinstance(v, list)]
            data = lists[0] if len(lists) == 1 else data
        items = data if isinstance(data, list) else [data]
        records = [(f"record {i}", item) for i, item in enumerate(items)]
    if not records and not res.problems:
        raise ValueError("no records in file")
    for where, record in records:
        try:
            res.articles.append(_from_record(record, f"{path} ({where})"))
        except Exception as exc:  # noqa: BLE001 - one bad record must never cost the others
            res.problems.append(FileResult(f"{path} ({where})", "rejected", unreadable_reason(exc)))


def _first(record: dict, keys: tuple[str, ...]) -> Any:
    for k in keys:
        v = record.get(k)
        if v not in (None, "", []):
            return v
    return None


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return ", ".join(str(v) for v in value if v) or None
    if isinstance(value, dict):
        return _as_text(value.get("name") or value.get("title"))
    return str(value).strip() or None


def _from_record(record: Any, origin: str) -> Article:
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    body = _first(record, BODY_KEYS)
    if not isinstance(body, str) or not body.strip():
        raise ValueError(f"no article text: expected one of the fields {', '.join(BODY_KEYS)}")
    text = clean_body(body)
    title = _as_text(_first(record, TITLE_KEYS)) or headline_from_text(text)
    published = normalise_date(_first(record, DATE_KEYS))
    source = _as_text(_first(record, SOURCE_KEYS))
    dateline = find_dateline(body) if not (published and source) else None
    return _make_article(
        title=title,
        text=text,
        source=source or (dateline.source if dateline else None),
        url=_as_text(_first(record, URL_KEYS)),
        published_at=published or (dateline.published_at if dateline else None),
        date_source="json" if published else "dateline" if dateline else None,
        author=_as_text(_first(record, AUTHOR_KEYS)),
        origin=origin,
    )


def _from_html(html: str, path: Path) -> Article:
    return article_from_html(html, origin=str(path))


def article_from_html(html: str, *, origin: str, url: str | None = None, **provenance: Any) -> Article:
    """An article from a web page: main text, title, date, site name, author and
    canonical URL (trafilatura, checked). ``url``: where the page was fetched from;
    its canonical URL is only believed when it is on the same site. ``provenance``
    (``fetched_at``, ``feed_item_id``) is kept with the article."""
    import trafilatura

    doc = trafilatura.bare_extraction(
        html, url=url, with_metadata=True, include_comments=False, include_tables=False, favor_precision=True,
        # No "extensive" search: it takes a copyright year or "since 2015" in an
        # author bio for the publication date (January 1st of that year).
        date_extraction_params={"extensive_search": False, "original_date": True},
    )
    if doc is None or not (doc.text or "").strip():
        raise ValueError("no article text found in the HTML")
    text = doc.text.strip()
    title = (doc.title or "").strip()
    # trafilatura repeats the headline as the first line of the text.
    first, _, rest = text.partition("\n")
    if title and first.strip() == title and rest.strip():
        text = rest.strip()
    meta = page_metadata(html, url)
    # No date in the metadata: a dateline in the text, or a byline / "Published" line
    # in the page around it (which trafilatura leaves out of the text).
    dateline = None if doc.date else (find_dateline(text) or find_dateline("\n".join(meta["head_lines"]), head_lines=40))
    text = clean_body(text)
    canonical = meta["canonical_url"]
    if url is not None:
        if canonical and not same_site(canonical, url):
            # A syndicated copy points at the original on another site: it is that
            # site's article, not this one's (and a page must not claim another's).
            log.info("%s: ignoring a canonical URL on another site (%s)", url, canonical)
            canonical = None
        canonical = normalize_url(canonical or url)
    return _make_article(
        title=title or headline_from_text(text),
        text=text,
        source=(doc.sitename or doc.hostname or None),
        url=canonical or doc.url or None,
        published_at=normalise_date(doc.date) or (dateline.published_at if dateline else None),
        date_source="metadata" if doc.date else "dateline" if dateline else None,
        author=plausible_author(doc.author) or meta["author"],
        origin=origin,
        canonical_url=canonical,
        **provenance,
    )


_MD_HEADING = re.compile(r"^\s{0,3}#\s+(.+?)\s*#*\s*$")


def _from_text(raw: str, path: Path, *, markdown: bool) -> Article:
    title = None
    if markdown:
        lines = raw.splitlines()
        for i, line in enumerate(lines):
            if line.strip():
                m = _MD_HEADING.match(line)
                if m:
                    title = m.group(1).strip()
                    raw = "\n".join(lines[i + 1 :])
                break
    cleaned = clean_text(raw, filename=path.name)
    # Reference for a year-less dateline ("Oct 17"): when the file was last written.
    try:
        reference = datetime.fromtimestamp(path.stat().st_mtime)
    except OSError:
        reference = None
    dateline = find_dateline(raw, reference)
    return _make_article(
        title=title or cleaned.title or headline_from_text(cleaned.text) or path.stem,
        text=cleaned.text,
        source=cleaned.source or (dateline.source if dateline else None),
        url=None,
        published_at=dateline.published_at if dateline else None,
        date_source="dateline" if dateline else None,
        author=None,
        origin=str(path),
    )


def with_changes(article: Article, **changes: Any) -> Article:
    """``article`` with some metadata changed; its id follows its title and URL."""
    from dataclasses import replace

    new = replace(article, **changes)
    return replace(new, article_id=article_id_for(new.title, new.text, new.url))


def ingest_date() -> str:
    """Today as the stand-in publication date of an article that gives none (UTC)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _make_article(*, title: str, text: str, origin: str, **meta: Any) -> Article:
    text = text.strip()
    if len(text) < MIN_TEXT_CHARS:
        raise ValueError(
            "no article text left after removing boilerplate"
            if text
            else "no article text"
        )
    if sum(ch.isalpha() for ch in text) < MIN_TEXT_CHARS // 2:
        raise ValueError("no article text: no words, only symbols, digits or control characters")
    title = " ".join(title.split()) if title else headline_from_text(text)
    if not meta.get("published_at"):
        meta.update(published_at=ingest_date(), date_source="ingest")
    return Article(
        article_id=article_id_for(title, text, meta.get("url")),
        title=title,
        text=text,
        origin=origin,
        **meta,
    )
