"""Wire-copy groups of one snapshot: which articles are copies of one story.

Ingest sets ``Article.group_id`` on each copy (see ``rag/ingest/wire.py``). Here the
groups become what retrieval and the faces need: one number per article row (the
article-diversity step counts a group as one article) and, per article, the other
outlets that published it ("also published by").
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..store.protocol import Store
from ..types import Article, WireCopy


class WireGroups:
    def __init__(self, store: Store):
        metas = {store.row_by_id[a.article_id]: a for a in store.articles()}
        max_row = max(metas) + 1 if metas else 0
        members: defaultdict[str, list[Article]] = defaultdict(list)
        for row in sorted(metas):
            members[metas[row].group].append(metas[row])
        # A group's number is its first member's row, so an article in no group keeps
        # its own row: without copies, grouping changes nothing.
        first_row = {key: store.row_by_id[arts[0].article_id] for key, arts in members.items()}
        self.index_by_row = np.arange(max_row, dtype=np.int64)
        for row, meta in metas.items():
            self.index_by_row[row] = first_row[meta.group]
        self._members = {key: arts for key, arts in members.items() if len(arts) > 1}
        self._group_of = {a.article_id: key for key, arts in self._members.items() for a in arts}

    def __len__(self) -> int:
        """Groups with more than one copy."""
        return len(self._members)

    def copies(self, article_id: str) -> tuple[WireCopy, ...]:
        """The other copies of ``article_id``'s story (empty when it has none)."""
        key = self._group_of.get(article_id)
        if key is None:
            return ()
        return tuple(
            WireCopy(a.article_id, a.source, a.url, a.title, a.published_at)
            for a in self._members[key]
            if a.article_id != article_id
        )
