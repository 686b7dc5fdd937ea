"""The feed list and what each feed's items were last time: ``feeds.sqlite`` in the index folder.

Kept beside the index segments (not inside one): subscribing to a feed is not an
index change, and the list survives restarts and re-ingests. Each refresh records,
per item, a fingerprint of its feed entry and the page's ETag / Last-Modified, so
the next refresh fetches only new or changed items, conditionally.

The file's name is fixed: nothing a feed or a page says becomes a path, so no
feed can make the app write outside the index folder.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from ..errors import RagError
from ..store.folder import check_index_folder
from ..types import FeedStatus

CATALOG_FILE = "feeds.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds (
    url TEXT PRIMARY KEY, every_s INTEGER NOT NULL, title TEXT, kind TEXT, added_at TEXT NOT NULL,
    last_refresh TEXT, last_new INTEGER NOT NULL DEFAULT 0, last_updated INTEGER NOT NULL DEFAULT 0,
    last_error TEXT, etag TEXT, last_modified TEXT
);
CREATE TABLE IF NOT EXISTS items (
    feed_url TEXT NOT NULL, item_key TEXT NOT NULL, link TEXT, fingerprint TEXT NOT NULL,
    article_id TEXT, etag TEXT, last_modified TEXT, seen_at TEXT NOT NULL,
    PRIMARY KEY (feed_url, item_key)
);
"""


@dataclass(frozen=True)
class ItemState:
    key: str  # the item's id (guid) or link
    link: str | None
    fingerprint: str  # hash of what the feed says about it (title, dates, summary)
    article_id: str | None  # the article it became
    etag: str | None = None  # the page's validators, for a conditional GET
    last_modified: str | None = None


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).replace(microsecond=0).isoformat()


class FeedCatalog:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.path = self.root / CATALOG_FILE

    @contextmanager
    def _db(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection; ``write``: create the folder and file when missing (else _Empty)."""
        if write:
            check_index_folder(self.root, create=True)
        elif not self.path.exists():
            raise _Empty
        try:
            db = sqlite3.connect(self.path, timeout=30)
        except sqlite3.Error as exc:
            raise RagError(f"Cannot open the feed list {self.path} ({exc}).") from exc
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            with db:
                yield db
        except sqlite3.DatabaseError as exc:
            raise RagError(f"The feed list {self.path} is unreadable ({exc}). Delete it and add the feeds again.") from exc
        finally:
            db.close()

    # -- feeds -------------------------------------------------------------------------
    def feeds(self, now: datetime | None = None) -> list[FeedStatus]:
        try:
            with self._db() as db:
                rows = db.execute(
                    "SELECT f.url, every_s, title, kind, added_at, last_refresh, last_new, last_updated, "
                    "last_error, (SELECT COUNT(*) FROM items i WHERE i.feed_url = f.url) "
                    "FROM feeds f ORDER BY f.rowid"
                ).fetchall()
        except _Empty:
            return []
        return [self._status(r, now) for r in rows]

    def get(self, url: str) -> FeedStatus | None:
        return next((f for f in self.feeds() if f.url == url), None)

    @staticmethod
    def _status(r, now: datetime | None) -> FeedStatus:
        url, every, title, kind, added, last, new, upd, err, n_items = r
        due = None
        if last:
            due = _iso(datetime.fromisoformat(last) + timedelta(seconds=every))
        return FeedStatus(url, every, title, kind, added, last, new, upd, err, due or _iso(now or datetime.now(timezone.utc)),
                          n_items)

    def add(self, url: str, every_s: int, *, title: str | None = None, kind: str | None = None) -> FeedStatus:
        """Subscribe (or change the interval of a feed already subscribed)."""
        with self._db(write=True) as db:
            db.execute(
                "INSERT INTO feeds (url, every_s, title, kind, added_at) VALUES (?,?,?,?,?) "
                "ON CONFLICT(url) DO UPDATE SET every_s = excluded.every_s, "
                "title = COALESCE(excluded.title, title), kind = COALESCE(excluded.kind, kind)",
                (url, every_s, title, kind, _iso(datetime.now(timezone.utc))),
            )
        return self.get(url)  # type: ignore[return-value]

    def remove(self, url: str) -> bool:
        try:
            with self._db() as db:  # no feed list yet: nothing to remove (and no folder made)
                gone = db.execute("DELETE FROM feeds WHERE url = ?", (url,)).rowcount
                db.execute("DELETE FROM items WHERE feed_url = ?", (url,))
        except _Empty:
            return False
        return bool(gone)

    def due(self, now: datetime) -> list[str]:
        """Feeds never refreshed, or whose interval has passed since the last refresh."""
        return [f.url for f in self.feeds(now) if f.last_refresh is None or datetime.fromisoformat(f.next_due) <= now]

    def validators(self, url: str) -> tuple[str | None, str | None]:
        with self._db() as db:
            row = db.execute("SELECT etag, last_modified FROM feeds WHERE url = ?", (url,)).fetchone()
        return (row[0], row[1]) if row else (None, None)

    # -- items -------------------------------------------------------------------------
    def items(self, url: str) -> dict[str, ItemState]:
        try:
            with self._db() as db:
                rows = db.execute(
                    "SELECT item_key, link, fingerprint, article_id, etag, last_modified FROM items WHERE feed_url = ?",
                    (url,),
                ).fetchall()
        except _Empty:
            return {}
        return {r[0]: ItemState(*r) for r in rows}

    def record_refresh(self, url: str, *, when: datetime, new: int, updated: int, error: str | None,
                       items: list[ItemState], etag: str | None = None, last_modified: str | None = None,
                       title: str | None = None, kind: str | None = None, keep_validators: bool = False) -> None:
        """One refresh of one feed: its outcome, validators and the items it settled.

        ``keep_validators``: the feed was not fetched fully (an error, or 304), so the
        stored ETag / Last-Modified stay as they are.
        """
        with self._db(write=True) as db:
            if keep_validators:
                db.execute(
                    "UPDATE feeds SET last_refresh = ?, last_new = ?, last_updated = ?, last_error = ? WHERE url = ?",
                    (_iso(when), new, updated, error, url),
                )
            else:
                db.execute(
                    "UPDATE feeds SET last_refresh = ?, last_new = ?, last_updated = ?, last_error = ?, etag = ?, "
                    "last_modified = ?, title = COALESCE(?, title), kind = COALESCE(?, kind) WHERE url = ?",
                    (_iso(when), new, updated, error, etag, last_modified, title, kind, url),
                )
            db.executemany(
                "INSERT OR REPLACE INTO items (feed_url, item_key, link, fingerprint, article_id, etag, "
                "last_modified, seen_at) VALUES (?,?,?,?,?,?,?,?)",
                [(url, i.key, i.link, i.fingerprint, i.article_id, i.etag, i.last_modified, _iso(when)) for i in items],
            )


class _Empty(Exception):
    """No feed list yet (nothing to read)."""
