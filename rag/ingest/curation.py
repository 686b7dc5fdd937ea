"""What an ingest does with articles the index already knows in another form.

* **Updates.** An article with the same canonical URL (or the same feed item id on
  the same site) as an indexed one but other text is its new version: it replaces
  the old one in the same commit (one version indexed) and keeps the previous
  text's hash and time. Same URL and same text: already present.
* **Wire copies.** A near-duplicate of an indexed article from another outlet joins
  that article's group (see :mod:`.wire`).

:func:`plan_ingest` runs under the writer lock, against the manifest the ingest
builds on, so two ingests never decide from different states.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from ..settings import Settings
from ..types import Article, FileResult
from .readers import text_hash
from .urls import normalize_url, site_of
from .wire import SignatureCache, WireMatcher, could_copy, shingles, signature

log = logging.getLogger(__name__)


class Indexed(Protocol):
    """What curation reads of the index it builds on (``rag.store.writer.IndexState``)."""

    def articles(self) -> list[Article]: ...

    def text_of(self, article_id: str) -> str: ...


@dataclass
class IngestPlan:
    articles: list[Article]  # to add, with their update and wire-group fields set
    replaces: dict[str, str] = field(default_factory=dict)  # new article id -> indexed id it replaces
    results: list[FileResult] = field(default_factory=list)  # inputs not added, with the reason


def url_key(a: Article) -> str | None:
    url = a.canonical_url or a.url
    if not url or "://" not in url:
        return None
    try:
        return normalize_url(url)
    except ValueError:
        return None


def item_key(a: Article) -> tuple[str | None, str] | None:
    return (site_of(a.canonical_url or a.url), a.feed_item_id) if a.feed_item_id else None


def plan_ingest(base: Indexed | None, fresh: list[Article], settings: Settings, root: Path) -> IngestPlan:
    """Decide which of ``fresh`` (not yet indexed by id) are updates, repeats or wire copies."""
    plan = IngestPlan([])
    by_url: dict[str, Article] = {}
    by_item: dict[tuple, Article] = {}
    indexed = {a.article_id: a for a in base.articles()} if base is not None else {}
    for a in indexed.values():
        if k := url_key(a):
            by_url[k] = a
        if k := item_key(a):
            by_item[k] = a
    replaced_by: dict[str, str] = {}  # indexed id -> the new id replacing it
    pending: dict[str, Article] = {}  # new id -> article, in input order
    for art in fresh:
        keys = [k for k in (item_key(art), url_key(art)) if k]
        old = next((o for k in keys if (o := (by_item if isinstance(k, tuple) else by_url).get(k))), None)
        if old is not None and old.article_id in pending:
            # The same page twice in one input: the later version wins.
            earlier = pending.pop(old.article_id)
            plan.results.append(FileResult(earlier.origin or "?", "duplicate",
                                           "a later version of the same URL is in the same input",
                                           earlier.article_id, earlier.title))
            prev = _replaced(replaced_by, earlier.article_id)
            old = indexed[prev] if prev else None
        if old is not None and old.article_id in indexed:
            old_text = base.text_of(old.article_id)  # type: ignore[union-attr]
            if text_hash(old.title, old_text) == text_hash(art.title, art.text):
                plan.results.append(FileResult(art.origin or "?", "duplicate",
                                               "already in the index (same URL, same text)",
                                               old.article_id, old.title))
                continue
            replaced_by[old.article_id] = art.article_id
            art = replace(art, previous_hash=text_hash(old.title, old_text),
                          previous_at=old.fetched_at or old.published_at, group_id=old.group)
        pending[art.article_id] = art
        for k in (item_key(art), url_key(art)):
            if k:
                (by_item if isinstance(k, tuple) else by_url)[k] = art
    plan.replaces = {new: old for old, new in replaced_by.items() if new in pending}
    plan.articles = group_wire_copies(list(pending.values()), settings, base=base,
                                      leaving=set(plan.replaces.values()), root=root)
    return plan


def _replaced(replaced_by: dict[str, str], new_id: str) -> str | None:
    """The indexed article that ``new_id`` was going to replace (and no longer will)."""
    for old, new in list(replaced_by.items()):
        if new == new_id:
            del replaced_by[old]
            return old
    return None


def group_wire_copies(articles: list[Article], settings: Settings, *, base: Indexed | None = None,
                      leaving: set[str] = frozenset(), root: Path | None = None) -> list[Article]:
    """``articles`` with ``group_id`` set on each that copies an indexed (``base``, less
    ``leaving``) or earlier one. ``root``: the index folder, for the signature cache."""
    if not articles:
        return articles
    texts: dict[str, str] = {a.article_id: a.text for a in articles}

    def text_of(aid: str) -> str:
        if aid in texts:
            return texts[aid]
        return base.text_of(aid)  # type: ignore[union-attr]

    matcher = WireMatcher(settings.wire_containment, settings.wire_window_days, text_of)
    cache = SignatureCache(root) if root is not None else None
    indexed = [a for a in base.articles() if a.article_id not in leaving] if base is not None else []
    indexed = could_copy(indexed, articles, settings.wire_window_days)
    sigs = cache.load(a.article_id for a in indexed) if cache is not None else {}
    computed = {}
    for a in indexed:
        sig = sigs.get(a.article_id)
        if sig is None:
            sig = computed[a.article_id] = signature(shingles(text_of(a.article_id)))
        matcher.add(a, sig)
    out = []
    for a in articles:
        own = shingles(a.text)
        sig = computed[a.article_id] = signature(own)
        m = matcher.match(a, sig, own)
        if m is not None:
            log.info("%s is a copy of %s (containment %.2f)", a.origin or a.article_id, m.article_id, m.containment)
            a = replace(a, group_id=m.group)
        matcher.add(a, sig)
        out.append(a)
    if cache is not None:
        cache.save(computed)
    return out
