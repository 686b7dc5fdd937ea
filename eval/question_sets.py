"""Load question sets (our JSONL, MultiHop-RAG JSON, simple CSV) into typed records.

Every problem names the file and the line (JSONL, CSV) or 0-based record index (JSON
list) so a hand-written set can be fixed without reading a traceback.
:func:`load_questions` raises :class:`rag.errors.QuestionSetError` at the first one;
:func:`read_question_set` (what ``rag eval`` uses) rejects a bad record on its own —
invalid JSON, nesting too deep to read, wrong fields — with its reason, and keeps the
rest. Problems of the set as a whole (unreadable file, no questions, duplicate ids,
a follow-up of a missing question) always raise.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rag.errors import QuestionSetError

log = logging.getLogger(__name__)

MULTIHOP_NULL_TYPE = "null_query"
_MULTIHOP_KEYS = ("query", "question_type", "evidence_list")
_LOCATOR_KEYS = ("file", "url", "title", "article_id")
_CSV_COLUMNS = ("id", "question", "answer", "answerable", "type", "follows")
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


@dataclass(frozen=True)
class Evidence:
    """A gold passage: a verbatim ``quote`` plus at least one way to find its article."""

    quote: str
    file: str | None = None
    url: str | None = None
    title: str | None = None
    article_id: str | None = None


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]  # acceptable answers; empty for unanswerable questions
    evidence: tuple[Evidence, ...]
    answerable: bool
    type: str | None = None
    follows: str | None = None  # id of the earlier question this one follows up on
    # Values other articles give instead (squad-dev/conflicts): the right answer shows
    # both, each cited; showing only these misleads.
    conflicting: tuple[str, ...] = ()
    now: str | None = None  # when it is asked (ISO 8601), for "last week" and the like


class _Bad(Exception):
    """A record-level problem; the caller adds the file and location."""


def load_questions(path: str | os.PathLike[str]) -> list[Question]:
    """Load a question set, choosing the format from the extension and the content.

    Strict: the first problem raises :class:`QuestionSetError`.
    """
    return _load(Path(path), None)


def read_question_set(path: str | os.PathLike[str]) -> tuple[list[Question], list[str]]:
    """``(questions, rejected)``: each bad record is left out, with ``"<file>: <where>: <reason>"``."""
    rejected: list[str] = []
    questions = _load(Path(path), rejected)
    for problem in rejected:
        log.warning("question rejected: %s", problem)
    return questions, rejected


class _Records:
    """Collects the records of one set; a bad one raises (strict) or is set aside."""

    def __init__(self, p: Path, rejected: list[str] | None):
        self.p = p
        self.rejected = rejected
        self.out: _Located = []

    def bad(self, where: str, reason: str) -> None:
        message = f"{self.p}: {where}: {reason}"
        if self.rejected is None:
            raise QuestionSetError(message)
        self.rejected.append(message)

    def add(self, where: str, make: Callable[[], Question]) -> None:
        try:
            self.out.append((where, make()))
        except _Bad as exc:
            self.bad(where, str(exc))
        except RecursionError:
            self.bad(where, "nested too deeply to read")
        except (TypeError, ValueError, MemoryError) as exc:
            self.bad(where, f"cannot be read ({type(exc).__name__}: {exc})")


def _load(p: Path, rejected: list[str] | None) -> list[Question]:
    ext = p.suffix.lower()
    if ext not in (".jsonl", ".json", ".csv"):
        raise QuestionSetError(f"{p}: unknown extension {ext or '(none)'!r}; use .jsonl, .json or .csv")
    text = _read_text(p)
    if not text.strip():
        raise QuestionSetError(f"{p}: empty file, no questions")

    records = _Records(p, rejected)
    if ext == ".csv":
        _parse_csv(records, text)
    elif text.lstrip().startswith("["):
        # A JSON list, whatever the extension: MultiHop-RAG ships its queries this way.
        _parse_json_list(records, text)
    else:
        if ext == ".json":
            _reject_single_object(p, text)
        _parse_jsonl(records, text)

    if not records.out:
        why = f" (all {len(rejected)} records rejected; first: {rejected[0]})" if rejected else ""
        raise QuestionSetError(f"{p}: no questions{why}")
    return _check_set(p, records.out)


def _read_text(p: Path) -> str:
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark.
        return p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise QuestionSetError(f"{p}: file not found") from None
    except UnicodeDecodeError as exc:
        raise QuestionSetError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise QuestionSetError(f"{p}: cannot read ({exc.strerror})") from None


# ------------------------------------------------------------------------------ formats

# Each parser returns (location, question) pairs; the location ("line 3", "record 7")
# is kept so set-level checks (duplicate ids, dangling follows) can point at lines too.
_Located = list[tuple[str, Question]]


def _parse_jsonl(records: _Records, text: str) -> None:
    # Split on "\n" only: str.splitlines() also breaks at U+2028 and friends, which
    # json.dumps(ensure_ascii=False) leaves raw inside strings.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"line {lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            records.bad(where, f"invalid JSON ({exc.msg} at column {exc.colno})")
            continue
        except RecursionError:
            records.bad(where, "nested too deeply to read")
            continue
        records.add(where, lambda: _from_ours(obj, default_id=f"q{lineno:04d}"))


def _reject_single_object(p: Path, text: str) -> None:
    """A pretty-printed single object in a .json file would otherwise fail as JSONL on
    line 1 with a confusing message; say what shape is expected instead."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return  # not one JSON document: let the JSONL parser report the bad line
    if not isinstance(obj, dict):
        raise QuestionSetError(f"{p}: expected a JSON list of questions, got {_kind(obj)}")
    if "\n" in text.strip():
        raise QuestionSetError(
            f"{p}: expected a JSON list of questions or one JSON object per line, "
            "got one object spread over several lines"
        )


def _parse_json_list(records: _Records, text: str) -> None:
    p = records.p
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise QuestionSetError(
            f"{p}: line {exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno})"
        ) from None
    except RecursionError:
        raise QuestionSetError(f"{p}: nested too deeply to read (thousands of levels of brackets)") from None
    if not isinstance(data, list):
        raise QuestionSetError(f"{p}: expected a JSON list of questions, got {_kind(data)}")
    for index, obj in enumerate(data):
        where = f"record {index}"
        default_id = f"mh{index:04d}"
        if _is_multihop(obj):
            records.add(where, lambda: _from_multihop(obj, default_id))
        else:
            records.add(where, lambda: _from_ours(obj, default_id))


def _is_multihop(obj: Any) -> bool:
    """Records are told apart by content: MultiHop-RAG's keys differ from ours, and its
    `query` may be the very key that is missing, so any of its keys decides."""
    return isinstance(obj, dict) and "question" not in obj and any(k in obj for k in _MULTIHOP_KEYS)


def _parse_csv(records: _Records, text: str) -> None:
    p = records.p
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = _csv_rows(p, reader)
    header = [h.strip().lower() for h in next(rows)]
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise QuestionSetError(f"{p}: line 1: duplicate column(s) {', '.join(map(repr, duplicated))}")
    unknown = [h for h in header if h not in _CSV_COLUMNS]
    if unknown:
        raise QuestionSetError(
            f"{p}: line 1: unknown column(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(_CSV_COLUMNS)}"
        )
    for required in ("question", "answer"):
        if required not in header:
            raise QuestionSetError(f"{p}: line 1: missing column {required!r}")

    end_of_previous = reader.line_num
    for row in rows:
        # Quoted fields can span lines; report the line the record starts on.
        lineno, end_of_previous = end_of_previous + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        where = f"line {lineno}"
        if len(row) != len(header):
            records.bad(where, f"expected {len(header)} fields, got {len(row)}")
            continue
        fields = dict(zip(header, row))
        records.add(where, lambda: _from_csv(fields, default_id=f"q{lineno:04d}"))


def _csv_rows(p: Path, reader: Any) -> Iterator[list[str]]:
    try:
        yield from reader
    except csv.Error as exc:
        raise QuestionSetError(f"{p}: line {reader.line_num}: invalid CSV ({exc})") from None


# ------------------------------------------------------------------------------ records


def _from_ours(obj: Any, default_id: str) -> Question:
    if not isinstance(obj, dict):
        raise _Bad(f"expected a JSON object, got {_kind(obj)}")
    if "answer" in obj and "answers" not in obj:
        raise _Bad("use `answers` (a list of strings), not `answer`")
    question = _text(obj, "question", required=True)
    answers = obj.get("answers", [])
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise _Bad("`answers` must be a list of strings")
    evidence = _evidence(obj.get("evidence", []))
    answers = [a for a in answers if a.strip()]
    conflicting = obj.get("conflicting", [])
    if not isinstance(conflicting, list) or not all(isinstance(a, str) for a in conflicting):
        raise _Bad("`conflicting` must be a list of strings")
    # Without an explicit flag, a question with something to check against is answerable.
    answerable = obj.get("answerable", bool(answers or evidence))
    if not isinstance(answerable, bool):
        raise _Bad("`answerable` must be true or false")
    now = _text(obj, "now")
    if now is not None:
        try:
            datetime.fromisoformat(now.replace("Z", "+00:00"))
        except ValueError:
            raise _Bad(f"`now` must be an ISO 8601 date or time, got {now!r}") from None
    return _question(
        qid=_id(obj.get("id"), default_id),
        question=question,
        answers=answers,
        evidence=evidence,
        answerable=answerable,
        qtype=_text(obj, "type"),
        follows=_text(obj, "follows"),
        conflicting=[a for a in conflicting if a.strip()],
        now=now,
    )


def _evidence(items: Any) -> list[Evidence]:
    if not isinstance(items, list):
        raise _Bad("`evidence` must be a list of objects")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _Bad(f"evidence[{i}] must be an object, got {_kind(item)}")
        quote = item.get("quote")
        if not isinstance(quote, str) or not quote.strip():
            raise _Bad(f"evidence[{i}] needs a non-empty string `quote`")
        locators = {k: item.get(k) for k in _LOCATOR_KEYS}
        if any(v is not None and not isinstance(v, str) for v in locators.values()):
            raise _Bad(f"evidence[{i}]: {', '.join(_LOCATOR_KEYS)} must be strings")
        if not any(locators.values()):
            raise _Bad(f"evidence[{i}] needs one of {', '.join(_LOCATOR_KEYS)} to find its article")
        out.append(Evidence(quote=quote, **locators))
    return out


def _from_multihop(obj: dict[str, Any], default_id: str) -> Question:
    query = _text(obj, "query", required=True)
    qtype = _text(obj, "question_type")
    answer = obj.get("answer")
    if not isinstance(answer, str):
        raise _Bad("`answer` must be a string")
    items = obj.get("evidence_list", [])
    if not isinstance(items, list):
        raise _Bad("`evidence_list` must be a list")
    evidence = []
    for i, item in enumerate(items):
        fact = item.get("fact") if isinstance(item, dict) else None
        if not isinstance(fact, str) or not fact.strip():
            raise _Bad(f"evidence_list[{i}] needs a non-empty string `fact`")
        evidence.append(Evidence(quote=fact, url=_opt_str(item.get("url")), title=_opt_str(item.get("title"))))
    answerable = qtype != MULTIHOP_NULL_TYPE
    return _question(
        qid=_id(obj.get("id"), default_id),
        question=query,
        # Null queries' answer is the placeholder "Insufficient information.", which is
        # an instruction to abstain, not an answer string to look for in the response.
        answers=[answer] if answerable and answer.strip() else [],
        evidence=evidence,
        answerable=answerable,
        qtype=qtype,
        follows=None,
    )


def _from_csv(fields: Mapping[str, str], default_id: str) -> Question:
    question = fields["question"].strip()
    if not question:
        raise _Bad("missing `question`")
    answer = fields["answer"].strip()
    flag = fields.get("answerable", "").strip().lower()
    if not flag:
        answerable = bool(answer)
    elif flag in _TRUE or flag in _FALSE:
        answerable = flag in _TRUE
    else:
        raise _Bad(f"`answerable` must be true or false, got {fields['answerable']!r}")
    return _question(
        qid=fields.get("id", "").strip() or default_id,
        question=question,
        answers=[answer] if answer else [],
        evidence=[],
        answerable=answerable,
        qtype=fields.get("type", "").strip() or None,
        follows=fields.get("follows", "").strip() or None,
    )


def _question(
    *,
    qid: str,
    question: str,
    answers: list[str],
    evidence: list[Evidence],
    answerable: bool,
    qtype: str | None,
    follows: str | None,
    conflicting: list[str] | None = None,
    now: str | None = None,
) -> Question:
    if answerable and not answers and not evidence:
        # Nothing to score against: an answerable question needs an answer or a passage.
        raise _Bad("answerable question has no answers and no evidence")
    return Question(
        id=qid,
        question=question,
        answers=tuple(answers),
        evidence=tuple(evidence),
        answerable=answerable,
        type=qtype,
        follows=follows,
        conflicting=tuple(conflicting or ()),
        now=now,
    )


# ------------------------------------------------------------------------------ helpers


def _check_set(p: Path, located: _Located) -> list[Question]:
    """Set-level rules: unique ids, and `follows` names a question defined earlier (a
    conversation runner asks them in file order)."""
    seen: dict[str, str] = {}
    for where, q in located:
        if q.id in seen:
            raise QuestionSetError(f"{p}: {where}: duplicate id {q.id!r} (first at {seen[q.id]})")
        if q.follows is not None and q.follows not in seen:
            raise QuestionSetError(
                f"{p}: {where}: `follows` refers to {q.follows!r}, not an earlier question id"
            )
        seen[q.id] = where
    return [q for _, q in located]


def _text(obj: Mapping[str, Any], key: str, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise _Bad(f"missing `{key}`")
        return None
    if not isinstance(value, str):
        raise _Bad(f"`{key}` must be a string, got {_kind(value)}")
    if required and not value.strip():
        raise _Bad(f"missing `{key}` (it is empty)")
    return value


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _id(value: Any, default: str) -> str:
    if value is None:
        return default
    # Integers are accepted because hand-written sets often number their questions.
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _Bad(f"`id` must be a string, got {_kind(value)}")
    text = str(value).strip()
    if not text:
        raise _Bad("`id` is empty")
    return text


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)
