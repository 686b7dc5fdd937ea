"""One snapshot of the index: the segments a manifest lists, read as a single store.

A snapshot implements :class:`~rag.store.protocol.Store` over all its segments:
passages and sentence units of the live (not tombstoned) articles get dense ids in
segment order, so retrieval never knows segments exist, and an index built in many
ingests numbers its passages exactly as one built in a single ingest from the same
articles in the same order. BM25 uses global statistics (:mod:`.bm25`); exact
vector search is one pass over each segment's vectors; approximate segments (HNSW)
are searched one by one and their candidates merged by score.

Segments are immutable, so an opened segment is shared by every snapshot of this
process that lists it: reloading after an ingest opens only the new segment. A
snapshot holds its segments for as long as it lives, so a reader keeps the view it
opened while merges replace and remove segments on disk.
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..errors import IndexLoadError, RagError
from ..types import Article, Passage
from .bm25 import GlobalBm25
from .checksums import size_problems
from .faiss_index import faiss_single_thread
from .folder import check_index_folder
from .layout import is_legacy, read_pointer
from .manifest import Manifest, SegmentInfo, check_compatible
from .migrate import migrate_legacy
from .protocol import Scope
from .scoped import LocalCandidates, RowFilters
from .segment import PASSAGE_DTYPE, UNIT_DTYPE, Segment

log = logging.getLogger(__name__)

_open_segments: "weakref.WeakValueDictionary[tuple, Segment]" = weakref.WeakValueDictionary()
_open_lock = threading.Lock()


def open_segment(root: Path, info: SegmentInfo) -> Segment:
    """The segment ``info`` names, shared with other snapshots of this process."""
    key = (str(Path(root).resolve()), info.name, json.dumps(info.files, sort_keys=True))
    with _open_lock:
        seg = _open_segments.get(key)
        # Sizes are checked again (a few stats): files damaged since are not served from memory.
        if seg is None or size_problems(seg.folder, info.files):
            seg = Segment(Path(root) / info.name, info)
            _open_segments[key] = seg
        return seg


def open_index(root: Path, *, embedding_model: str | None = None) -> "IndexSnapshot":
    """Open the live manifest's segments, checking they were built with the same model.

    An index in the older one-folder-per-generation format is migrated once.
    """
    root = Path(root)
    check_index_folder(root, create=False)
    for attempt in range(5):
        name = read_pointer(root) if root.is_dir() else None
        if name is None:
            raise IndexLoadError(f"No index at {root}. Build one with `rag ingest PATH...` (or set RAG_INDEX).")
        if is_legacy(name):
            migrate_legacy(root)
            continue
        try:
            manifest = Manifest.load(root / name)
            check_compatible(manifest, root, embedding_model)
            segments = [open_segment(root, info) for info in manifest.segments]
        except IndexLoadError:
            # A commit and its clean-up between reading CURRENT and opening what it
            # named: open the newer manifest instead.
            if attempt < 4 and read_pointer(root) != name:
                continue
            raise
        return IndexSnapshot(root, manifest, segments)
    raise IndexLoadError(f"The index at {root} kept changing while it was being opened; try again.")


class IndexSnapshot:
    """The segments of one manifest, read-only. Immutable and safe to share across threads."""

    def __init__(self, root: Path, manifest: Manifest, segments: list[Segment]):
        self.root = root
        self.manifest = manifest
        self.segments = tuple(segments)
        dim = manifest.dim
        p_parts, u_parts = [], []
        # Per segment: its live passages' and units' local ids (None: all live) and
        # the snapshot id of each of its passages (None: base + local).
        self._live_p: list[np.ndarray | None] = []
        self._live_u: list[np.ndarray | None] = []
        self._pid_of: list[np.ndarray | None] = []
        p_base, u_base = [0], [0]
        self.meta_by_row: dict[int, Article] = {}
        self.row_by_id: dict[str, int] = {}
        self._seg_of_row: dict[int, int] = {}
        for k, (seg, info) in enumerate(zip(self.segments, manifest.segments)):
            deleted = np.array(sorted(info.deleted), dtype=np.int64)
            passages, units = seg.passages, seg.units
            if len(deleted):
                keep_p = ~np.isin(passages["article_row"], deleted)
                keep_u = ~np.isin(units["article_row"], deleted)
                live_p, live_u = np.flatnonzero(keep_p), np.flatnonzero(keep_u)
                new_u = np.cumsum(keep_u) - 1
                passages = passages[keep_p].copy()
                if len(passages):
                    passages["unit_lo"] = new_u[passages["unit_lo"]]
                    passages["unit_hi"] = new_u[passages["unit_hi"] - 1] + 1
                units = units[keep_u]
                pid_of = np.full(len(seg.passages), -1, dtype=np.int64)
                pid_of[live_p] = p_base[-1] + np.arange(len(live_p))
            else:
                live_p = live_u = pid_of = None
            if u_base[-1]:
                passages = passages.copy() if passages is seg.passages else passages
                passages["unit_lo"] += u_base[-1]
                passages["unit_hi"] += u_base[-1]
            p_parts.append(passages)
            u_parts.append(units)
            self._live_p.append(live_p)
            self._live_u.append(live_u)
            self._pid_of.append(pid_of)
            p_base.append(p_base[-1] + len(passages))
            u_base.append(u_base[-1] + len(units))
            dead = set(info.deleted)
            for row, meta in seg.meta_by_row.items():
                if row not in dead:
                    self.meta_by_row[row] = meta
                    self.row_by_id[meta.article_id] = row
                    self._seg_of_row[row] = k
        one = len(p_parts) == 1
        self.passages = p_parts[0] if one else (np.concatenate(p_parts) if p_parts else np.zeros(0, PASSAGE_DTYPE))
        self.units = u_parts[0] if one else (np.concatenate(u_parts) if u_parts else np.zeros(0, UNIT_DTYPE))
        self._p_base = np.array(p_base, dtype=np.int64)
        self._u_base = np.array(u_base, dtype=np.int64)
        self._dim = dim
        self.bm25 = GlobalBm25([(s.postings, int(b), ids) for s, b, ids in zip(self.segments, p_base, self._pid_of)])
        self._all_flat = all(s.is_flat for s in self.segments)
        self._row_filters: RowFilters | None = None  # built by the first filtered search
        self._idf: np.ndarray | None = None

    # -- articles and passages -------------------------------------------------
    def __len__(self) -> int:
        return len(self.passages)

    def articles(self) -> list[Article]:
        """Metadata of every article (``text`` left empty), in ingest order."""
        return list(self.meta_by_row.values())

    def passage_counts(self) -> dict[str, int]:
        rows, counts = np.unique(self.passages["article_row"], return_counts=True)
        return {self.meta_by_row[int(r)].article_id: int(c) for r, c in zip(rows, counts)}

    def article_text(self, row: int) -> str:
        k = self._seg_of_row.get(int(row))
        if k is None:
            raise KeyError(row)
        return self.segments[k].article_text(int(row))

    def article(self, article_id: str) -> Article:
        """The full article, text included."""
        row = self.row_by_id.get(article_id)
        if row is None:
            raise RagError(f"No article with id {article_id!r} in the index (see `rag articles`).")
        meta = self.meta_by_row[row]
        return Article(**{**asdict(meta), "text": self.article_text(row)})

    def passage(self, pid: int) -> Passage:
        rec = self.passages[pid]
        row = int(rec["article_row"])
        start, end = int(rec["start"]), int(rec["end"])
        text = self.article_text(row)[start:end]
        return Passage(int(pid), self.meta_by_row[row].article_id, start, end, text)

    def sources(self) -> list[str]:
        """Lower-cased publishers of the live articles (with repeats), in row order."""
        return [(m.source or "").lower() for m in self.meta_by_row.values() if m.source]

    def unit_text(self, unit: int) -> str:
        u = self.units[unit]
        return self.article_text(int(u["article_row"]))[int(u["start"]) : int(u["end"])]

    def passage_meta(self, pid: int) -> Article:
        return self.meta_by_row[int(self.passages[pid]["article_row"])]

    def passage_units(self, pid: int) -> range:
        rec = self.passages[pid]
        return range(int(rec["unit_lo"]), int(rec["unit_hi"]))

    def _gather(self, ids, bases: np.ndarray, live: list, arrays: list, dtype) -> np.ndarray:
        """Rows ``ids`` (snapshot numbering) of per-segment arrays, in the order given."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(arrays) == 1 and live[0] is None:
            return np.asarray(arrays[0][ids])
        out = np.empty((len(ids), self._dim), dtype=dtype)
        seg = np.searchsorted(bases, ids, side="right") - 1
        for k in np.unique(seg):
            sel = seg == k
            local = ids[sel] - bases[k]
            if live[k] is not None:
                local = live[k][local]
            out[sel] = arrays[k][local]
        return out

    def unit_vectors_f32(self, units) -> np.ndarray:
        """Float32 copies of some units' vectors (stored as float16).

        faiss's fp16 decoder (F16C/AVX-512) is several times faster than numpy's
        float16 cast, the costliest step of scoring a search's sentences
        (``python -m eval.bench query``: ~3 ms of a search on this 2-core machine).
        """
        rows = self._gather(units, self._u_base, self._live_u, [s.unit_vectors for s in self.segments], np.float16)
        if rows.dtype != np.float16 or rows.ndim != 2 or not len(rows):
            return np.asarray(rows, dtype=np.float32)
        import faiss

        sq = faiss.ScalarQuantizer(rows.shape[1], faiss.ScalarQuantizer.QT_fp16)
        with faiss_single_thread():
            return sq.decode(np.ascontiguousarray(rows).view(np.uint8))

    def passage_vectors(self, pids) -> np.ndarray:
        """Float32 passage vectors, in the order of ``pids``."""
        rows = self._gather(pids, self._p_base, self._live_p, [s.vectors for s in self.segments], np.float32)
        return np.asarray(rows, dtype=np.float32)

    # -- candidate search ------------------------------------------------------
    def candidates(self, qvec: np.ndarray | None, tokens: list[str] | None) -> LocalCandidates:
        """Dense and BM25 candidates for one question, per scope (see :mod:`.scoped`)."""
        return LocalCandidates(self, qvec, tokens)

    def scope_mask(self, scope: Scope) -> np.ndarray:
        """Which passages a scope allows (a boolean per passage)."""
        if self._row_filters is None:
            self._row_filters = RowFilters(self.meta_by_row, self.passages["article_row"])
        return self._row_filters.mask(scope, self.row_by_id)

    def any_in(self, scope: Scope) -> bool:
        return bool(self.scope_mask(scope).any())

    def dense_scores(self, qvec: np.ndarray) -> np.ndarray | None:
        """Inner product of the question with every passage, when every segment is exact (flat).

        One pass over the stored vectors serves the main search and every sub-search
        (each a mask over it, as for BM25), where a faiss search per sub-search
        scans them all again: on MultiHop-RAG's 8,802 passages one pass plus two
        masked selections take 0.44 ms against 0.91 ms, on 50,000 4.4 against 10.4.
        Approximate segments (HNSW, IVF) are searched through faiss instead: None.
        """
        if not self._all_flat:
            return None
        q = np.asarray(qvec, dtype=np.float32)
        parts = []
        for seg, live in zip(self.segments, self._live_p):
            scores = np.asarray(seg.vectors) @ q
            parts.append(scores if live is None else scores[live])
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def dense_search(self, qvec: np.ndarray, depth: int, mask: np.ndarray | None) -> tuple[list[int], list[float]]:
        """The ``depth`` nearest passages through faiss, only among ``mask`` when given.

        Each segment is searched for ``depth`` candidates among its live passages;
        the union is ranked by score.
        """
        import faiss

        q = qvec.reshape(1, -1).astype(np.float32)
        found_ids, found_scores = [], []
        for k, seg in enumerate(self.segments):
            base, end = int(self._p_base[k]), int(self._p_base[k + 1])
            live, pid_of = self._live_p[k], self._pid_of[k]
            allowed = None
            if mask is not None:
                sub = np.flatnonzero(mask[base:end])
                if not len(sub):
                    continue
                allowed = sub if live is None else live[sub]
            elif live is not None:
                allowed = live
            d = min(depth, seg.faiss.ntotal if allowed is None else len(allowed))
            if d <= 0:
                continue
            params = None if allowed is None else faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed.astype(np.int64)))
            with faiss_single_thread():
                sc, ids = seg.faiss.search(q, d, params=params)
            ok = ids[0] >= 0
            local = ids[0][ok]
            found_ids.append(base + local if pid_of is None else pid_of[local])
            found_scores.append(sc[0][ok])
        if not found_ids:
            return [], []
        ids = np.concatenate(found_ids)
        scores = np.concatenate(found_scores)
        if len(found_ids) > 1:
            order = np.lexsort((ids, -scores))[:depth]
            ids, scores = ids[order], scores[order]
        return ids.tolist(), scores.tolist()

    def bm25_scores(self, tokens: list[str]) -> np.ndarray | None:
        """BM25 score of every passage for these query tokens (None: no known token)."""
        if not len(self):
            return None
        return self.bm25.scores(tokens)

    def vocabulary(self) -> dict[str, int]:
        """BM25 term -> id (terms stemmed as :func:`rag.text.terms.bm25_tokenize` does)."""
        return self.bm25.term_id

    def term_idf(self) -> np.ndarray:
        """BM25 IDF per vocabulary term id (global document frequencies)."""
        if self._idf is None:
            self._idf = self.bm25.idf()
        return self._idf

    def idf_of(self, terms: list[str]) -> dict[str, float]:
        """BM25 IDF of those terms the index knows."""
        idf, ids = self.term_idf(), self.bm25.term_id
        return {t: float(idf[ids[t]]) for t in terms if t in ids}

    def outgrown(self) -> bool:
        return False  # memory-mapped segments: nothing grows with use

    def close(self) -> None:
        """Let go of the segments (they close when no snapshot holds them any more)."""
        self.segments = ()
