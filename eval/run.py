"""End-to-end evaluation: index a corpus, ask a question set, score and report.

    rag eval --corpus PATH... --questions PATH [--index DIR] [--config NAME ...]
             [--out DIR] [--limit N]
    python -m eval ...            (the same command)

For each named configuration (``eval/configs.py``) every question goes through the
real chain (``rag.chain.ask``: rewrite -> retrieve -> answer), follow-up questions
with the history of the previous questions' actual answers. Nothing here retrieves
or answers by itself; the metrics are those of ``eval/metrics.py``.

Indexes are reused: next to each index a small ``eval-fingerprint.json`` records
what it was built from (the corpus files' names, sizes and content hashes, the
index-shaping settings and a hash of the ingest code). A later run with the same
fingerprint reuses the index; a different one rebuilds it, saying why.

Outputs (``--out``, default ``eval/out/<timestamp>``): ``results.json`` (per
configuration a summary, a per-type breakdown and one record per question),
``report.md`` and ``plots/*.png``. See ``eval/README.md``.

Only the standard library is imported at module level, so ``rag --help`` stays fast.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import shlex
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from eval.configs import CONFIGS, DEFAULT_CONFIGS, INDEX_FIELDS, description, overrides_for

log = logging.getLogger("rag.eval")

EVAL_DIR = Path(__file__).resolve().parent
OUT_ROOT = EVAL_DIR / "out"
FINGERPRINT_FILE = "eval-fingerprint.json"
FINGERPRINT_VERSION = 1
# The engine packages whose code decides the *content* of an index (cleaned text,
# passage boundaries, headers, tokens, vectors): a change to any of their modules
# makes an old index stale, so their source is part of the fingerprint. Whole
# packages, so a module moved or added inside them counts too. The storage layout
# is covered by the manifest's format version.
INGEST_PACKAGES = ("ingest", "embed", "text")
RETRIEVAL_DEPTH = 10  # the @10 metrics
MULTIHOP_TYPES = {"comparison_query", "inference_query", "temporal_query", "null_query"}
MULTIHOP_ATTRIBUTION = (
    "MultiHop-RAG: Yixuan Tang and Yi Yang, \"MultiHop-RAG: Benchmarking Retrieval-Augmented "
    "Generation for Multi-Hop Queries\", 2024 (arXiv 2401.15391). Data license: ODC-BY 1.0."
)


# ------------------------------------------------------------------------------ CLI


def add_arguments(p) -> None:
    """The ``rag eval`` / ``python -m eval`` arguments (shared by both entry points)."""
    p.add_argument("--corpus", nargs="+", required=True, metavar="PATH",
                   help="article files/folders, or a JSON corpus (e.g. MultiHop-RAG's corpus.json)")
    p.add_argument("--questions", required=True, metavar="PATH",
                   help="question set: our .jsonl/.csv, or a MultiHop-RAG queries .json")
    p.add_argument("--index", metavar="DIR",
                   help="index folder to reuse or (re)build (default eval/out/index-<fingerprint>)")
    p.add_argument("--config", nargs="+", default=list(DEFAULT_CONFIGS), choices=list(CONFIGS), metavar="NAME",
                   help="configurations to compare (default: default): " + ", ".join(CONFIGS))
    p.add_argument("--out", metavar="DIR", help="output folder (default eval/out/<timestamp>)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N questions")
    p.add_argument("--now", metavar="TIME", help="ask every question at this time (YYYY-MM-DD[THH:MM]) unless "
                   "the question set gives its own `now`; default: the clock")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def run_from_args(args) -> int:
    run = run_eval(
        args.corpus,
        args.questions,
        configs=args.config,
        index=args.index,
        out=args.out,
        limit=args.limit,
        show_progress=not args.quiet,
        argv=command_line(args),
        now=args.now,
    )
    print(run.summary_table)
    print()
    print(f"report:  {run.report_path}")
    print(f"results: {run.results_path}")
    return 0


def command_line(args) -> list[str]:
    """The run as a ``rag eval`` command (for the report's "reproduce" line)."""
    cmd = ["rag", "eval", "--corpus", *map(str, args.corpus), "--questions", str(args.questions)]
    if args.index:
        cmd += ["--index", str(args.index)]
    cmd += ["--config", *args.config]
    if args.out:
        cmd += ["--out", str(args.out)]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    if getattr(args, "now", None):
        cmd += ["--now", str(args.now)]
    return cmd


# ------------------------------------------------------------------------------ API


@dataclass
class EvalRun:
    results: dict[str, Any]
    out_dir: Path
    results_path: Path
    report_path: Path
    plots: list[Path] = field(default_factory=list)
    summary_table: str = ""


def run_eval(
    corpus: Sequence[str | Path],
    questions: str | Path,
    *,
    configs: Sequence[str] = DEFAULT_CONFIGS,
    index: str | Path | None = None,
    out: str | Path | None = None,
    limit: int | None = None,
    show_progress: bool = True,
    base_settings=None,
    embedder=None,
    argv: Sequence[str] | None = None,
    now: str | None = None,
) -> EvalRun:
    """Evaluate ``configs`` on ``questions`` over ``corpus``; write and return the results.

    ``base_settings`` defaults to ``Settings()`` (defaults, ``RAG_*`` variables, .env);
    each configuration's overrides apply on top. ``embedder``: an already loaded
    embedding model for the base settings' model and backend, to share (tests).

    Expected problems (unreadable question set, missing corpus, unknown config) raise
    :class:`rag.errors.RagError` with a one-line message.
    """
    from rag.errors import RagError
    from rag.settings import Settings

    from eval.question_sets import read_question_set
    from eval.report import summary_table, write_report

    started = datetime.now(timezone.utc).astimezone()
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise RagError(f"Unknown configuration(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}.")
    configs = list(dict.fromkeys(configs))
    if limit is not None and limit < 1:
        raise RagError("--limit must be at least 1.")

    qs, rejected_questions = read_question_set(questions)
    if limit is not None:
        qs = qs[:limit]
    files = corpus_files(corpus)
    base = base_settings or Settings()
    out_dir = Path(out) if out else OUT_ROOT / started.strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)

    # One index per distinct fingerprint; configurations that only change retrieval
    # or answering share it.
    base_fp, _ = fingerprint(files, base)
    plans: list[tuple[str, Any, str, dict]] = []
    for name in configs:
        s = base.model_copy(update=overrides_for(name))
        fp, doc = fingerprint(files, s)
        plans.append((name, s, fp, doc))
    index_dirs: dict[str, Path] = {}
    for _, _, fp, _ in plans:
        if fp not in index_dirs:
            index_dirs[fp] = _index_dir_for(fp, base_fp, index)

    embedders: dict[tuple, Any] = {}
    if embedder is not None:
        embedders[(base.embedding_model, base.embedding_backend)] = embedder
    index_info: dict[str, dict] = {}
    config_results: dict[str, dict] = {}
    for name, s, fp, doc in plans:
        s = s.model_copy(update={"index_dir": index_dirs[fp]})
        engine = _engine(s, embedders)
        if fp not in index_info:
            t = time.perf_counter()
            status = ensure_index(engine, corpus, files, fp, doc, show_progress=show_progress)
            m = engine.snapshot.manifest
            index_info[fp] = {
                "dir": str(index_dirs[fp]), "fingerprint": fp, "status": status,
                "seconds": round(time.perf_counter() - t, 1),
                "articles": m.n_articles, "passages": m.n_passages, "index_type": m.index_type,
                **{k: doc["settings"][k] for k in INDEX_FIELDS},
            }
        embedders.setdefault((s.embedding_model, s.embedding_backend, s.query_embedding_backend), engine.query_embedder)
        t = time.perf_counter()
        records = evaluate_config(engine, s, qs, desc=name, show_progress=show_progress, now=now)
        wall = time.perf_counter() - t
        config_results[name] = {
            "description": description(name),
            "overrides": _jsonable(overrides_for(name)),
            "index": str(index_dirs[fp]),
            "fingerprint": fp,
            "seconds": round(wall, 1),
            "summary": summarise(records),
            "by_type": by_type(records),
            "records": records,
        }

    results = {
        "configs": config_results,
        "meta": {**_meta(started, corpus, files, questions, qs, base, index_info, argv, limit),
                 "rejected_questions": rejected_questions},
    }
    results_path = out_dir / "results.json"
    results_path.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    report_path, plots = write_report(results, out_dir)
    return EvalRun(results, out_dir, results_path, report_path, plots, summary_table(results))


def _engine(settings, embedders: dict):
    """An engine for ``settings``, sharing already loaded embedding models."""
    from rag.engine import Engine

    key = (settings.embedding_model, settings.embedding_backend)
    qkey = (*key, settings.query_embedding_backend)
    engine = Engine(settings, embedder=embedders.get(key), query_embedder=embedders.get(qkey))
    embedders.setdefault(key, engine.embedder)
    return engine


def _index_dir_for(fp: str, base_fp: str, index: str | Path | None) -> Path:
    """``--index DIR`` serves the base settings' index; configurations that change the
    index get a sibling ``DIR-<fingerprint>``. Without ``--index``: eval/out/index-<fp>."""
    if index is None:
        return OUT_ROOT / f"index-{fp[:10]}"
    index = Path(index)
    return index if fp == base_fp else index.parent / f"{index.name}-{fp[:10]}"


# --------------------------------------------------------------------- fingerprints


def corpus_files(paths: Sequence[str | Path]) -> list[tuple[Path, str]]:
    """The article files ingest would read, each with a stable name for the fingerprint
    (relative to the folder given, or the file name), in name order."""
    from rag.ingest.readers import iter_input_files
    from rag.errors import RagError

    if not paths:
        raise RagError("No corpus given: pass --corpus with article files or folders.")
    out: list[tuple[Path, str]] = []
    for raw in paths:
        root = Path(raw).expanduser()
        found = 0
        for path, not_read in iter_input_files([root]):
            if not_read is not None:
                if not_read.status == "skipped":
                    continue
                raise RagError(f"--corpus {path}: {not_read.reason}")
            out.append((path, path.relative_to(root).as_posix() if root.is_dir() else path.name))
            found += 1
        if not found:
            raise RagError(f"--corpus {root}: no article files in this folder")
    return sorted(out, key=lambda x: (x[1], str(x[0])))


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_file_hashes: dict[tuple[str, int, int], str] = {}


def _file_entry(path: Path, name: str) -> dict[str, Any]:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _file_hashes:
        _file_hashes[key] = _sha256_file(path)
    return {"name": name, "size": st.st_size, "sha256": _file_hashes[key]}


def fingerprint(files: list[tuple[Path, str]], settings) -> tuple[str, dict[str, Any]]:
    """``(hex digest, document)`` of what an index built from ``files`` with
    ``settings`` holds: file names, sizes and contents; the index-shaping settings;
    the index format; the source of the ingest code."""
    from rag.store.manifest import FORMAT_VERSION

    doc = {
        "version": FINGERPRINT_VERSION,
        "corpus": [_file_entry(p, n) for p, n in files],
        "settings": {k: _jsonable(getattr(settings, k)) for k in INDEX_FIELDS},
        "index_format": FORMAT_VERSION,
        "code": ingest_code_hashes(),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest(), doc


def ingest_code_hashes() -> dict[str, str]:
    """Content hash of every module of the index-shaping packages (see INGEST_PACKAGES)."""
    import rag

    root = Path(rag.__file__).resolve().parent
    out = {}
    for pkg in INGEST_PACKAGES:
        for f in sorted((root / pkg).rglob("*.py")):
            out[f.relative_to(root).as_posix()] = _sha256_file(f)[:16]
    return out


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Why a stored fingerprint no longer matches, in words."""
    why = []
    old_c = {e["name"]: e for e in old.get("corpus", [])}
    new_c = {e["name"]: e for e in new["corpus"]}
    added = sorted(set(new_c) - set(old_c))
    removed = sorted(set(old_c) - set(new_c))
    changed = sorted(n for n in set(old_c) & set(new_c) if old_c[n] != new_c[n])
    for label, names in (("added", added), ("removed", removed), ("changed", changed)):
        if names:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            why.append(f"corpus files {label}: {shown}")
    for k, v in new["settings"].items():
        if old.get("settings", {}).get(k) != v:
            why.append(f"{k} {old.get('settings', {}).get(k)!r} -> {v!r}")
    if old.get("index_format") != new["index_format"]:
        why.append(f"index format {old.get('index_format')} -> {new['index_format']}")
    code = sorted(f for f in set(old.get("code", {})) | set(new["code"]) if old.get("code", {}).get(f) != new["code"].get(f))
    if code:
        why.append("ingest code changed (" + ", ".join(f"rag/{f}" for f in code) + ")")
    if old.get("version") != new["version"]:
        why.append("fingerprint format changed")
    return "; ".join(why) or "the fingerprint differs"


def ensure_index(engine, corpus: Sequence[str | Path], files, fp: str, doc: dict, *, show_progress: bool = True) -> str:
    """Make ``engine.index_dir`` hold exactly ``corpus`` built with ``engine.settings``.

    Returns ``"reused"``, ``"built"``, ``"rebuilt"`` or ``"adopted"`` (an index not made
    by ``rag eval`` that holds exactly the corpus with the same settings). A folder that
    is not ours is never deleted: a mismatch there is an error.
    """
    from rag.errors import IndexLoadError, RagError

    root = engine.index_dir
    fp_file = root / FINGERPRINT_FILE
    status = "built"
    if fp_file.exists():
        try:
            stored = json.loads(fp_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            stored, reason = {}, f"its fingerprint file is unreadable ({exc})"
        else:
            reason = None if stored.get("fingerprint") == fp else _differences(stored, doc)
        if reason is None:
            try:
                if engine.has_index():
                    engine.snapshot  # noqa: B018 - opens it, so damage shows now
                    log.info("reusing the index at %s (fingerprint %s)", root, fp[:10])
                    return "reused"
                reason = "the index itself is missing"
            except IndexLoadError as exc:
                reason = f"it cannot be opened ({exc})"
        log.info("rebuilding the index at %s: %s", root, reason)
        engine.close()
        shutil.rmtree(root)
        status = "rebuilt"
    elif (root.exists() and any(root.iterdir())) or (engine.settings.store != "local" and engine.has_index()):
        if engine.has_index() and _adoptable(engine, corpus):
            log.info("reusing the index at %s: it holds exactly the corpus, built with the same settings", root)
            root.mkdir(parents=True, exist_ok=True)  # a server store's: the folder holds only the fingerprint
            _write_fingerprint(fp_file, fp, doc, engine, corpus, adopted=True)
            return "adopted"
        raise RagError(
            f"{root} is not empty and was not built by `rag eval` from this corpus with these settings; "
            "it is left alone. Pass a new or empty --index folder."
        )
    else:
        log.info("building the index at %s (fingerprint %s)", root, fp[:10])
    t = time.perf_counter()
    report = engine.ingest(list(corpus), show_progress=show_progress)
    if not report.added:
        reasons = "; ".join(f"{r.path}: {r.reason}" for r in report.rejected[:3])
        raise RagError(f"No article could be read from the corpus{(' (' + reasons + ')') if reasons else ''}.")
    if report.rejected:
        log.warning("%d corpus file(s)/record(s) rejected, e.g. %s: %s", len(report.rejected),
                    report.rejected[0].path, report.rejected[0].reason)
    log.info("indexed %d articles in %.0fs", len(report.added), time.perf_counter() - t)
    _write_fingerprint(fp_file, fp, doc, engine, corpus)
    return status


def _adoptable(engine, corpus) -> bool:
    """An existing index made elsewhere holds exactly the corpus articles, chunked and
    embedded with the current settings."""
    from rag.errors import IndexLoadError
    from rag.ingest.readers import iter_input_files, load_file
    from rag.store.manifest import settings_mismatch

    try:
        snap = engine.snapshot
    except IndexLoadError:
        return False
    s = engine.settings
    if settings_mismatch(snap.manifest, s):
        return False
    ids = set()
    for path, not_read in iter_input_files(corpus):
        if not_read is None:
            ids |= {a.article_id for a in load_file(path, s).articles}
    return ids == set(snap.row_by_id)


def _write_fingerprint(fp_file: Path, fp: str, doc: dict, engine, corpus, *, adopted: bool = False) -> None:
    m = engine.snapshot.manifest
    data = {
        "fingerprint": fp,
        **doc,
        "corpus_paths": [str(Path(p).resolve()) for p in corpus],
        "articles": m.n_articles,
        "passages": m.n_passages,
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "adopted": adopted,
    }
    tmp = fp_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    tmp.replace(fp_file)


# ------------------------------------------------------------------------ questions


def evaluate_config(engine, settings, questions, *, desc: str = "questions", show_progress: bool = True,
                    now: str | None = None) -> list[dict]:
    """Ask every question through the chain and score it; one record per question.

    Each is asked at its own ``now``, else at ``now`` (``--now``), else at the clock's.
    """
    from functools import lru_cache

    from tqdm.auto import tqdm

    from rag.chain import ask, build_chain
    from rag.errors import LLMError, RagError
    from rag.retrieve.timeframe import parse_now
    from rag.types import Turn

    default_now = parse_now(now)

    chain = build_chain(engine)

    @lru_cache(maxsize=4096)
    def article_text(article_id: str) -> str | None:
        try:
            return engine.snapshot.article(article_id).text
        except RagError:
            return None

    # One untimed question first: lazy loading (model, tables, caches) would
    # otherwise land in the first question's latency.
    try:
        ask(engine, questions[0].question, [], settings, chain)
    except LLMError:
        raise
    except RagError:
        pass

    histories: dict[str, list] = {}
    records = []
    for q in tqdm(questions, desc=desc, unit="q", disable=not show_progress):
        history = []
        if q.follows is not None:
            history = list(histories.get(q.follows, []))
        try:
            answer = ask(engine, q.question, history, settings, chain, now=parse_now(q.now) or default_now)
        except LLMError:
            raise  # the answerer is unreachable: every question would fail the same way
        except RagError as exc:
            records.append(_record(q, None, article_text, error=str(exc)))
            histories[q.id] = history
            continue
        histories[q.id] = history + [Turn.of(q.question, answer)]
        records.append(_record(q, answer, article_text))
    return records


def plain_answer(text: str) -> str:
    """The answer without its ``[n]`` citation markers."""
    from rag.answer.citations import strip_markers

    return strip_markers(text)


def _record(q, answer, article_text, *, error: str | None = None) -> dict[str, Any]:
    from eval.metrics import (
        answer_correct,
        citation_support,
        citation_valid,
        conflict_shown,
        exact_match,
        hits_at,
        retrieval_metrics,
        token_f1,
    )

    facts = [e.quote for e in q.evidence]
    rec: dict[str, Any] = {
        "id": q.id,
        "question": q.question,
        "now": q.now,
        "type": q.type,
        "answerable": q.answerable,
        "follows": q.follows,
        "gold_answers": list(q.answers),
        "evidence": [e.quote for e in q.evidence],
        "conflicting_values": list(q.conflicting),
        "query": None,
        "retrieved": [],
        "answer": None,
        "abstained": None,
        "conflict": None,
        "flagged": None,
        "citations": [],
        "short_answer": None,
        "conflicting": [],
        "short_em": None,
        "short_f1": None,
        "contains": None,
        "both_shown": None,
        "misled": None,
        "answer_correct": None,
        "token_f1": None,
        "citation_support": None,
        "retrieval": None,
        "timings": {},
        "error": error,
    }
    if answer is None:
        return rec
    texts = [r.text for r in answer.related]
    scored = q.answerable and bool(facts)
    rec["query"] = answer.query
    rec["period"] = answer.period
    rec["retrieved"] = [
        {
            "rank": r.rank,
            "score": round(float(r.score), 6),
            "article_id": r.article_id,
            "title": r.title,
            "source": r.source,
            "published_at": r.published_at,
            "text": r.text,  # whole, so another tool can re-score the run
            "relevant": bool(hits_at([r.text], facts, 1)) if scored else None,
        }
        for r in answer.related
    ]
    text = plain_answer(answer.answer)
    rec.update(answer=answer.answer, abstained=answer.abstained, conflict=answer.conflict, flagged=answer.flagged)
    rec["citations"] = [
        {**c.to_dict(), "valid": (t := article_text(c.article_id)) is not None and citation_valid(c.quote, t)}
        for c in answer.citations
    ]
    rec["short_answer"] = answer.short_answer.__dict__ if answer.short_answer else None
    rec["reader"] = answer.reader
    rec["conflicting"] = [v.__dict__ for v in answer.conflicting]
    rec["confidence"] = None if answer.confidence is None else round(float(answer.confidence), 4)
    rec["multi_article"] = answer.multi_article
    rec["evidence_features"] = {k: round(float(v), 5) for k, v in answer.evidence.items()}
    if q.answerable and q.answers:
        short = answer.short_answer.text if answer.short_answer and not answer.abstained else ""
        rec["short_em"] = exact_match(short, q.answers)
        rec["short_f1"] = round(token_f1(short, q.answers), 4)
        rec["contains"] = False if answer.abstained else answer_correct(text, q.answers)
    if q.conflicting:
        shown = conflict_shown(answer.answer, [c.quote for c in answer.citations], q.answers, q.conflicting)
        rec["both_shown"], rec["misled"] = shown["both_cited"], shown["misled"]
    if q.answerable and q.answers:
        # An abstention is no answer, whatever its wording: with the paper's substring
        # rule "The articles don't say — nothing ..." would otherwise match a gold "No".
        rec["answer_correct"] = False if answer.abstained else answer_correct(text, q.answers)
        rec["token_f1"] = 0.0 if answer.abstained else round(token_f1(text, q.answers), 4)
    if q.answerable and not answer.abstained:
        rec["citation_support"] = citation_support([c.quote for c in answer.citations], q.answers, facts)
    if scored:
        try:
            rec["retrieval"] = retrieval_metrics(texts[:RETRIEVAL_DEPTH], facts)
        except ValueError:  # a quote that is only whitespace: the metric is undefined
            rec["retrieval"] = None
    rec["timings"] = {k: round(float(v), 2) for k, v in answer.timings.items()}
    return rec


# ------------------------------------------------------------------------ summaries


def _mean(values) -> float | None:
    values = [float(v) for v in values if v is not None]
    return sum(values) / len(values) if values else None


def summarise(records: list[dict]) -> dict[str, Any]:
    from eval.metrics import abstention_pr, mean_metrics, percentiles

    ok = [r for r in records if r["error"] is None]
    with_answers = [r for r in ok if r["answer_correct"] is not None]
    answered = [r for r in with_answers if not r["abstained"]]
    retrieval_rows = [r["retrieval"] for r in ok if r["retrieval"] is not None]
    citations = [c for r in ok for c in r["citations"]]
    supported = [r["citation_support"] for r in ok if r["citation_support"] is not None]
    answerable = [r for r in ok if r["answerable"]]
    conflict_rows = [r for r in ok if r.get("both_shown") is not None]

    def lat(key: str) -> dict[str, float | None]:
        p = percentiles([r["timings"][key] for r in ok if key in r["timings"]])
        return {k: (round(v, 2) if v is not None else None) for k, v in p.items()}

    return {
        "counts": {
            "questions": len(records),
            "answerable": sum(1 for r in records if r["answerable"]),
            "unanswerable": sum(1 for r in records if not r["answerable"]),
            "retrieval_scored": len(retrieval_rows),
            "answers_scored": len(with_answers),
            "answered": sum(1 for r in ok if not r["abstained"]),
            "abstained": sum(1 for r in ok if r["abstained"]),
            "citations": len(citations),
            "errors": len(records) - len(ok),
        },
        "retrieval": mean_metrics(retrieval_rows) if retrieval_rows else None,
        "answer": {
            "accuracy": _mean(r["answer_correct"] for r in with_answers),
            "accuracy_answered": _mean(r["answer_correct"] for r in answered),
            "token_f1": _mean(r["token_f1"] for r in with_answers),
            "answered_rate": _mean(not r["abstained"] for r in answerable),
            "short_em": _mean(r["short_em"] for r in with_answers),
            "short_f1": _mean(r["short_f1"] for r in with_answers),
            "short_given": _mean(r["short_answer"] is not None for r in with_answers),
            "contains": _mean(r["contains"] for r in with_answers),
        } if with_answers else None,
        "conflicts": {
            "questions": len(conflict_rows),
            "both_shown_cited": _mean(r["both_shown"] for r in conflict_rows),
            "misled": _mean(r["misled"] for r in conflict_rows),
            "flagged_conflict": _mean(bool(r["conflict"]) for r in conflict_rows),
        } if conflict_rows else None,
        "citation": {
            "valid": _mean(c["valid"] for c in citations),
            "support": _mean(supported),
        },
        "abstention": abstention_pr(ok) if any(not r["answerable"] for r in ok) else None,
        "latency_ms": {"retrieve": lat("retrieve_ms"), "answer": lat("answer_ms"), "total": lat("total_ms")},
    }


def by_type(records: list[dict]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(r["type"] or "(none)", []).append(r)
    out = {}
    for t, rs in groups.items():
        ok = [r for r in rs if r["error"] is None]
        out[t] = {
            "n": len(rs),
            "hits@10": _mean(r["retrieval"]["hits@10"] for r in ok if r["retrieval"]),
            "mrr@10": _mean(r["retrieval"]["mrr@10"] for r in ok if r["retrieval"]),
            "accuracy": _mean(r["answer_correct"] for r in ok if r["answer_correct"] is not None),
            "short_f1": _mean(r["short_f1"] for r in ok if r["short_f1"] is not None),
            "abstained": _mean(r["abstained"] for r in ok),
        }
    return out


# ----------------------------------------------------------------------------- meta


def is_multihop(paths: Sequence[str | Path], questions) -> bool:
    return any("multihop" in str(p).lower().replace("-", "") for p in paths) or any(
        q.type in MULTIHOP_TYPES for q in questions
    )


def _jsonable(v: Any) -> Any:
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


def _meta(started, corpus, files, questions_path, qs, base, index_info, argv, limit) -> dict[str, Any]:
    from collections import Counter

    settings = base.model_dump(mode="json", exclude={"llm_api_key", "index_dir"})
    meta = {
        "date": started.isoformat(timespec="seconds"),
        "finished": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        "command": shlex.join(argv) if argv else None,
        "corpus": {
            "paths": [str(p) for p in corpus],
            "files": len(files),
            "indexes": list(index_info.values()),
        },
        "questions": {
            "path": str(questions_path),
            "n": len(qs),
            "limit": limit,
            "answerable": sum(q.answerable for q in qs),
            "with_evidence": sum(1 for q in qs if q.answerable and q.evidence),
            "follow_ups": sum(1 for q in qs if q.follows),
            "types": dict(Counter(q.type or "(none)" for q in qs)),
        },
        "settings": settings,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if is_multihop([*corpus, questions_path], qs):
        meta["attribution"] = MULTIHOP_ATTRIBUTION
    return meta
