"""The optional article columns: provenance of web articles, date source, wire-copy group.

They were added after format 1 was released, so they are nullable and optional:
a generation written before them opens (the values read as NULL), and the next
write adds the missing columns to its copy of the table. See docs/news-sources.md.
"""

from __future__ import annotations

import sqlite3

from ..types import Article

# Column name == Article field name; all TEXT, NULL when unknown.
OPTIONAL_COLUMNS = (
    "date_source",
    "canonical_url",
    "feed_item_id",
    "fetched_at",
    "previous_hash",
    "previous_at",
    "group_id",
)


def present_columns(db: sqlite3.Connection) -> set[str]:
    return {row[1] for row in db.execute("PRAGMA table_info(articles)")}


def ensure_columns(db: sqlite3.Connection) -> None:
    """Add the optional columns a table written by an older version lacks."""
    have = present_columns(db)
    for name in OPTIONAL_COLUMNS:
        if name not in have:
            db.execute(f"ALTER TABLE articles ADD COLUMN {name} TEXT")


def select_list(db: sqlite3.Connection) -> str:
    """``col, ...`` for a SELECT: the optional columns, NULL for those the table lacks."""
    have = present_columns(db)
    return ", ".join(name if name in have else f"NULL AS {name}" for name in OPTIONAL_COLUMNS)


def values(article: Article) -> tuple:
    return tuple(getattr(article, name) for name in OPTIONAL_COLUMNS)
