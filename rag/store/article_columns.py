"""The optional article columns: provenance of web articles, date source, wire-copy group.

They were added after format 1 was released, so they are nullable and optional:
every new segment has them, and the article store of an index migrated from format
1 (linked, not rewritten) lacks them: its values read as NULL. See
docs/news-sources.md.
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


def present_columns(db: sqlite3.Connection, schema: str = "main") -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA {schema}.table_info(articles)")}


def select_list(db: sqlite3.Connection, schema: str = "main") -> str:
    """``col, ...`` for a SELECT: the optional columns, NULL for those the table lacks
    (``schema``: an attached database's name)."""
    have = present_columns(db, schema)
    return ", ".join(name if name in have else f"NULL AS {name}" for name in OPTIONAL_COLUMNS)


def values(article: Article) -> tuple:
    return tuple(getattr(article, name) for name in OPTIONAL_COLUMNS)
