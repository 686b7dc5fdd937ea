"""Wire copies: the same story published by several outlets, lightly edited.

An agency story (AP, Reuters, AFP) appears on many sites, each wrapping it in its
own boilerplate, headline and a few edits. At ingest each new article is compared
with the indexed ones: MinHash signatures of its word 5-gram shingles (datasketch)
find candidates through locality-sensitive hashing, and each candidate is then
checked exactly: the share of the shorter text's shingles that the other contains
(containment). Copies above ``Settings.wire_containment``, published within
``Settings.wire_window_days`` of each other, join one group. Different stories on
the same event share words, not runs of five words in a row, so they stay apart;
and an outlet's own articles are never copies of each other (an outlet reuses its
paragraphs across a live blog and its recap: related, not syndicated).
docs/news-sources.md has the measurements (and the embedding alternative, which
grouped same-topic stories).

Signatures are cached in ``wire-signatures.sqlite`` in the index folder, keyed by
article id (a content hash), so an ingest does not re-hash the whole collection.
The cache only speeds things up: losing it loses nothing.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..types import Article
from .urls import same_site

log = logging.getLogger(__name__)

SHINGLE_WORDS = 5
NUM_PERM = 128
SEED = 1
SCHEME = "affine32"  # datasketch >= 2: 32-bit hash values, collision-free permutations
_SIG_DTYPE = np.uint32
# LSH finds pairs whose Jaccard similarity is about this or more; containment 0.5
# between texts of similar length is Jaccard 0.33, so candidates are found below it.
LSH_THRESHOLD = 0.2
CACHE_FILE = "wire-signatures.sqlite"  # rows of NUM_PERM uint32 (affine32)
_WORD = re.compile(r"\w+")


def shingles(text: str, k: int = SHINGLE_WORDS) -> set[str]:
    """Runs of ``k`` consecutive words (lower-cased, punctuation ignored)."""
    words = _WORD.findall(text.lower())
    if len(words) < k:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + k]) for i in range(len(words) - k + 1)}


def signature(shingle_set: set[str]) -> np.ndarray:
    from datasketch import MinHash

    m = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME)
    m.update_batch([s.encode("utf-8") for s in shingle_set])
    return np.asarray(m.hashvalues, dtype=_SIG_DTYPE)


def _same_outlet(a: Article, b: Article) -> bool:
    """Copies are other outlets' (an outlet reusing its own paragraphs in two articles,
    a live blog and its recap, is not syndication)."""
    if a.source and b.source and a.source.casefold() == b.source.casefold():
        return True
    return same_site(a.url, b.url)


def containment(a: set[str], b: set[str]) -> float:
    """Share of the smaller set found in the other: 1.0 when one text is a cut of the other."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


class SignatureCache:
    """Signatures by article id, in a small SQLite file beside the index segments."""

    def __init__(self, root: Path):
        self.path = Path(root) / CACHE_FILE

    def load(self, article_ids: Iterable[str]) -> dict[str, np.ndarray]:
        wanted = set(article_ids)
        if not self.path.exists() or not wanted:
            return {}
        try:
            with sqlite3.connect(self.path, timeout=30) as db:
                ids = sorted(wanted)
                rows = []
                for i in range(0, len(ids), 900):  # SQLite's bound-parameter limit
                    part = ids[i : i + 900]
                    rows += db.execute(f"SELECT article_id, sig FROM signatures WHERE article_id IN "
                                       f"({','.join('?' * len(part))})", part).fetchall()
        except sqlite3.Error as exc:
            log.warning("wire signature cache %s unreadable (%s): recomputing", self.path, exc)
            return {}
        out = {}
        for aid, blob in rows:
            if aid in wanted and isinstance(blob, bytes) and len(blob) == NUM_PERM * _SIG_DTYPE().itemsize:
                out[aid] = np.frombuffer(blob, dtype=_SIG_DTYPE)
        return out

    def save(self, sigs: dict[str, np.ndarray]) -> None:
        if not sigs:
            return
        try:
            with sqlite3.connect(self.path, timeout=30) as db:
                db.execute("CREATE TABLE IF NOT EXISTS signatures (article_id TEXT PRIMARY KEY, sig BLOB NOT NULL)")
                db.executemany(
                    "INSERT OR REPLACE INTO signatures VALUES (?, ?)",
                    [(aid, np.ascontiguousarray(s, dtype=_SIG_DTYPE).tobytes()) for aid, s in sigs.items()],
                )
        except sqlite3.Error as exc:
            log.warning("wire signature cache %s not written (%s)", self.path, exc)

    def prune(self, keep: set[str]) -> None:
        """Forget articles no longer indexed."""
        if not self.path.exists():
            return
        try:
            with sqlite3.connect(self.path, timeout=30) as db:
                ids = [r[0] for r in db.execute("SELECT article_id FROM signatures")]
                db.executemany("DELETE FROM signatures WHERE article_id = ?", [(a,) for a in ids if a not in keep])
        except sqlite3.Error as exc:
            log.warning("wire signature cache %s not pruned (%s)", self.path, exc)


@dataclass(frozen=True)
class WireMatch:
    article_id: str  # the indexed (or earlier) article it copies
    group: str  # that article's group key
    containment: float


class WireMatcher:
    """Finds, for each new article, an earlier article it is a copy of.

    ``text_of(article_id)`` gives the text of an article added with :meth:`add`
    (only asked for candidates, to verify them exactly).
    """

    def __init__(self, threshold: float, window_days: float, text_of: Callable[[str], str]):
        from datasketch import MinHashLSH

        self.threshold = threshold
        self.window_days = window_days
        self.text_of = text_of
        self.lsh = MinHashLSH(threshold=LSH_THRESHOLD, num_perm=NUM_PERM)
        self.meta: dict[str, Article] = {}
        self._shingle_cache: dict[str, set[str]] = {}

    def add(self, article: Article, sig: np.ndarray) -> None:
        from datasketch import MinHash

        if article.article_id in self.meta:
            return
        self.meta[article.article_id] = article
        self.lsh.insert(article.article_id, MinHash(num_perm=NUM_PERM, seed=SEED, hashvalues=sig, scheme=SCHEME))

    def remove(self, article_id: str) -> None:
        if article_id in self.meta:
            self.lsh.remove(article_id)
            del self.meta[article_id]

    def match(self, article: Article, sig: np.ndarray, own: set[str] | None = None) -> WireMatch | None:
        """The best earlier copy of ``article`` (None: it is no copy). ``own``: its shingles."""
        from datasketch import MinHash

        candidates = self.lsh.query(MinHash(num_perm=NUM_PERM, seed=SEED, hashvalues=sig, scheme=SCHEME))
        if not candidates:
            return None
        own = own if own is not None else shingles(article.text)
        best: WireMatch | None = None
        for cid in candidates:
            other = self.meta[cid]
            if cid == article.article_id or not self._in_window(article, other) or _same_outlet(article, other):
                continue
            theirs = self._shingle_cache.get(cid)
            if theirs is None:
                theirs = self._shingle_cache[cid] = shingles(self.text_of(cid))
            c = containment(own, theirs)
            if c >= self.threshold and (best is None or c > best.containment):
                best = WireMatch(cid, other.group, c)
        return best

    def _in_window(self, a: Article, b: Article) -> bool:
        return in_window(a, b, self.window_days)


def _when(a: Article):
    """An article's real publication time (None: undated, or dated by its ingest)."""
    from datetime import datetime

    if not a.has_real_date:
        return None
    try:
        return datetime.fromisoformat(a.published_at.replace("Z", "+00:00"))
    except ValueError:
        return None


def in_window(a: Article, b: Article, window_days: float) -> bool:
    """Copies appear within days of each other; a story re-run a year later is news again."""
    da, db = _when(a), _when(b)
    if da is None or db is None:
        return True
    if (da.tzinfo is None) != (db.tzinfo is None):
        da, db = da.replace(tzinfo=None), db.replace(tzinfo=None)
    return abs((da - db).total_seconds()) <= window_days * 86400


def could_copy(indexed: list[Article], fresh: list[Article], window_days: float) -> list[Article]:
    """The indexed articles a fresh one can be a copy of: those dated within the window
    of the fresh ones' span of dates, and the undated (a superset; the matcher checks
    each pair exactly). A feed adding ten of today's articles to an archive of years
    then loads and hashes days of signatures, not the whole archive's."""
    from datetime import timedelta

    times = [_when(a) for a in fresh]
    if any(t is None for t in times):
        return indexed  # an undated fresh article may copy anything
    slack = timedelta(days=window_days, hours=14)  # naive against aware times: any zone
    lo = min(t.replace(tzinfo=None) for t in times) - slack
    hi = max(t.replace(tzinfo=None) for t in times) + slack
    out = []
    for b in indexed:
        tb = _when(b)
        if tb is None or lo <= tb.replace(tzinfo=None) <= hi:
            out.append(b)
    return out
