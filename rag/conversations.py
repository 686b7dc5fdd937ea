"""Saved conversations: a small SQLite store keyed by owner.

Every face that keeps conversations (the browser app today, the HTTP API later)
uses this store, so a conversation started in one can be listed by the other.
Nothing here is per process or per user in memory: each call opens its own
connection (SQLite connections are cheap, and one per call is safe from any
thread), and every query is restricted to the ``owner`` it is given, so one
owner can never read, rename or delete another's conversation, even by guessing
its id.

Where: by default ``conversations.sqlite3`` in the index folder
(:func:`default_path`), because the saved answers cite that index's articles by
id: another index (``--index``) has its own conversations, whose citations resolve
there. The file uses SQLite's write-ahead log, so listing or reopening
conversations in one browser never waits for another browser's write.

The owner is an opaque string chosen by the face: ``user:<login>`` when the app
runs with a login, ``anon:<random id kept in the browser>`` otherwise.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

from .errors import RagError
from .settings import Settings
from .types import Answer, Turn

log = logging.getLogger(__name__)

FILE_NAME = "conversations.sqlite3"
TITLE_MAX = 120  # characters of a conversation's name
MAX_OWNER = 200
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id          TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    title       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_by_owner ON conversations (owner, updated_at);
CREATE TABLE IF NOT EXISTS exchanges (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id  TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    question         TEXT NOT NULL,
    status           TEXT NOT NULL,  -- 'answered' | 'stopped'
    answer           TEXT,           -- Answer.to_dict() as JSON, when answered
    partial          TEXT,           -- what had streamed when the answer was stopped
    filters          TEXT,           -- the search filters used, as JSON
    created_at       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS exchanges_by_conversation ON exchanges (conversation_id, id);
"""


class ConversationError(RagError):
    """A conversation that does not exist (for this owner), or a store that cannot be used."""


@dataclass(frozen=True)
class ConversationInfo:
    conversation_id: str
    title: str
    created_at: str  # ISO 8601, UTC
    updated_at: str
    exchanges: int = 0


@dataclass(frozen=True)
class Exchange:
    """One question of a conversation and what came back."""

    exchange_id: int
    question: str
    status: str  # "answered" | "stopped" (the user stopped the answer while it was written)
    answer: Answer | None = None  # when answered
    partial: str | None = None  # when stopped: the text written so far (its markers unchecked)
    filters: dict[str, Any] | None = None  # the search filters the question was asked with
    created_at: str = ""

    def turn(self) -> Turn | None:
        """The exchange as conversation history for a follow-up (None when it has no answer)."""
        if self.answer is None:
            return None
        return Turn.of(self.question, self.answer)


def default_path(settings: Settings) -> Path:
    """``settings.conversations_db``, or ``conversations.sqlite3`` in the index folder."""
    return Path(settings.conversations_db) if settings.conversations_db else Path(settings.index_dir) / FILE_NAME


def history(exchanges: Sequence[Exchange]) -> list[Turn]:
    """The answered exchanges as the chain's conversation history."""
    return [t for t in (e.turn() for e in exchanges) if t is not None]


def title_from_question(question: str) -> str:
    """A conversation's first name: its first question on one line, shortened."""
    line = " ".join(question.split())
    return line if len(line) <= 80 else line[:79].rstrip() + "…"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _check_owner(owner: str) -> str:
    if not owner or not isinstance(owner, str) or len(owner) > MAX_OWNER:
        raise ConversationError("No owner for the conversations (log in, or allow this page to keep an id).")
    return owner


class ConversationStore:
    """Conversations in one SQLite file; every method is scoped to an owner."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._ready = False
        self._init_lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Settings) -> "ConversationStore":
        return cls(default_path(settings))

    # -- plumbing ------------------------------------------------------------------
    def _setup(self) -> None:
        with self._init_lock:
            if self._ready:
                return
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=10)
                try:
                    db.execute("PRAGMA journal_mode=WAL")
                    version = db.execute("PRAGMA user_version").fetchone()[0]
                    if version > SCHEMA_VERSION:
                        raise ConversationError(
                            f"{self.path} was written by a newer version of article-rag (schema {version})."
                        )
                    db.executescript(_SCHEMA)
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    db.commit()
                finally:
                    db.close()
            except (OSError, sqlite3.Error) as exc:
                raise ConversationError(f"The conversations file {self.path} cannot be used ({exc}).") from exc
            self._ready = True

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection for one call, committed when the block ends without an error."""
        self._setup()
        try:
            db = sqlite3.connect(self.path, timeout=10)
        except sqlite3.Error as exc:
            raise ConversationError(f"The conversations file {self.path} cannot be opened ({exc}).") from exc
        try:
            db.execute("PRAGMA foreign_keys = ON")
            with db:  # a transaction: commit on success, roll back on an error
                yield db
        except sqlite3.Error as exc:
            raise ConversationError(f"The conversations file {self.path} could not be read or written ({exc}).") from exc
        finally:
            db.close()

    @staticmethod
    def _owned(db: sqlite3.Connection, owner: str, conversation_id: str) -> ConversationInfo:
        row = db.execute(
            "SELECT c.id, c.title, c.created_at, c.updated_at, "
            "(SELECT COUNT(*) FROM exchanges e WHERE e.conversation_id = c.id) "
            "FROM conversations c WHERE c.id = ? AND c.owner = ?",
            (conversation_id, owner),
        ).fetchone()
        if row is None:
            raise ConversationError("That conversation does not exist (it may have been deleted).")
        return ConversationInfo(*row)

    # -- conversations -------------------------------------------------------------
    def conversations(self, owner: str, limit: int = 200) -> list[ConversationInfo]:
        """The owner's conversations, the most recently used first."""
        _check_owner(owner)
        with self._db() as db:
            rows = db.execute(
                "SELECT c.id, c.title, c.created_at, c.updated_at, "
                "(SELECT COUNT(*) FROM exchanges e WHERE e.conversation_id = c.id) "
                "FROM conversations c WHERE c.owner = ? ORDER BY c.updated_at DESC, c.rowid DESC LIMIT ?",
                (owner, limit),
            ).fetchall()
        return [ConversationInfo(*r) for r in rows]

    def get(self, owner: str, conversation_id: str) -> ConversationInfo:
        _check_owner(owner)
        with self._db() as db:
            return self._owned(db, owner, conversation_id)

    def create(self, owner: str, title: str) -> ConversationInfo:
        _check_owner(owner)
        title = " ".join((title or "").split())[:TITLE_MAX] or "New conversation"
        now = _now()
        cid = secrets.token_urlsafe(9)
        with self._db() as db:
            db.execute(
                "INSERT INTO conversations (id, owner, title, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                (cid, owner, title, now, now),
            )
        return ConversationInfo(cid, title, now, now, 0)

    def rename(self, owner: str, conversation_id: str, title: str) -> ConversationInfo:
        _check_owner(owner)
        title = " ".join((title or "").split())
        if not title:
            raise ConversationError("A conversation's name cannot be empty.")
        title = title[:TITLE_MAX]
        with self._db() as db:
            self._owned(db, owner, conversation_id)
            db.execute("UPDATE conversations SET title = ? WHERE id = ? AND owner = ?", (title, conversation_id, owner))
            return self._owned(db, owner, conversation_id)

    def delete(self, owner: str, conversation_id: str) -> None:
        _check_owner(owner)
        with self._db() as db:
            self._owned(db, owner, conversation_id)
            db.execute("DELETE FROM conversations WHERE id = ? AND owner = ?", (conversation_id, owner))

    # -- exchanges -----------------------------------------------------------------
    _SELECT_EXCHANGES = ("SELECT id, question, status, answer, partial, filters, created_at FROM exchanges "
                         "WHERE conversation_id = ? ORDER BY id")

    def exchanges(self, owner: str, conversation_id: str) -> list[Exchange]:
        """The conversation's exchanges, oldest first."""
        _check_owner(owner)
        with self._db() as db:
            self._owned(db, owner, conversation_id)
            rows = db.execute(self._SELECT_EXCHANGES, (conversation_id,)).fetchall()
        return [self._exchange(r) for r in rows]

    def add_exchange(
        self,
        owner: str,
        conversation_id: str,
        question: str,
        answer: Answer | None = None,
        *,
        partial: str | None = None,
        filters: dict[str, Any] | None = None,
    ) -> Exchange:
        """Append an answered exchange (``answer``) or a stopped one (``partial``)."""
        _check_owner(owner)
        status = "answered" if answer is not None else "stopped"
        now = _now()
        answer_json = json.dumps(answer.to_dict(), ensure_ascii=False) if answer is not None else None
        filters_json = json.dumps(filters, ensure_ascii=False) if filters else None
        with self._db() as db:
            self._owned(db, owner, conversation_id)
            cur = db.execute(
                "INSERT INTO exchanges (conversation_id, question, status, answer, partial, filters, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, question, status, answer_json, partial, filters_json, now),
            )
            db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id))
        return Exchange(int(cur.lastrowid), question, status, answer, partial, filters or None, now)

    def delete_last_exchange(self, owner: str, conversation_id: str) -> Exchange | None:
        """Remove and return the newest exchange (to regenerate it or edit its question)."""
        _check_owner(owner)
        with self._db() as db:
            self._owned(db, owner, conversation_id)
            row = db.execute(self._SELECT_EXCHANGES + " DESC LIMIT 1", (conversation_id,)).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM exchanges WHERE id = ?", (row[0],))
        return self._exchange(row)

    @staticmethod
    def _exchange(row: tuple) -> Exchange:
        eid, question, status, answer_json, partial, filters_json, created = row
        answer = None
        if answer_json:
            try:
                answer = Answer.from_dict(json.loads(answer_json))
            except (ValueError, TypeError, KeyError) as exc:
                # A record written by another version: keep the question, say what was lost.
                log.warning("exchange %s: stored answer unreadable (%s)", eid, exc)
                status, partial = "stopped", "(This answer could not be read back.)"
        filters = json.loads(filters_json) if filters_json else None
        return Exchange(int(eid), question, status, answer, partial, filters, created)
