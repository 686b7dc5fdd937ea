"""``rag``: the command line face of the engine."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .errors import RagError

log = logging.getLogger("rag")

SEEDS_DIR = Path(__file__).resolve().parent.parent / "seeds"


def _settings(args):
    from .settings import Settings

    overrides = {}
    if getattr(args, "index", None):
        overrides["index_dir"] = Path(args.index)
    for name in ("embedding_backend", "index_type"):
        if getattr(args, name, None):
            overrides[name] = getattr(args, name)
    settings = Settings()
    return settings.model_copy(update=overrides) if overrides else settings


def _engine(args):
    from .engine import Engine

    return Engine(_settings(args))


def _print_report(report) -> None:
    for r in report.results:
        if r.status == "added":
            print(f"added      {r.article_id}  {r.title}  ({r.passages} passages)  [{r.path}]")
        elif r.status == "duplicate":
            print(f"unchanged  {r.article_id}  {r.title}  (already in the index)  [{r.path}]")
        else:
            print(f"rejected   {r.path}: {r.reason}")
    print(
        f"{len(report.added)} added, {len(report.duplicates)} already present, "
        f"{len(report.rejected)} rejected"
    )


def cmd_ingest(args) -> int:
    engine = _engine(args)
    report = engine.ingest(args.paths, show_progress=not args.quiet)
    _print_report(report)
    # Non-zero only when nothing could be ingested at all.
    return 0 if (report.added or report.duplicates) else 1


def cmd_search(args) -> int:
    from .retrieval import Filters, parse_date_arg

    engine = _engine(args)
    filters = Filters(
        article_ids=frozenset(args.article) if args.article else None,
        sources=frozenset(args.source) if args.source else None,
        date_from=parse_date_arg(args.since),
        date_to=parse_date_arg(args.until),
    )
    result = engine.search(args.question, k=args.k, mode=args.mode, filters=filters, mmr=args.mmr or None)
    if args.json:
        print(json.dumps([h.to_dict() for h in result.hits], ensure_ascii=False, indent=2))
        return 0
    if not result.hits:
        print("No passages found.")
        return 0
    for h in result.hits:
        a = h.article
        meta = " · ".join(x for x in (a.source, (a.published_at or "")[:10]) if x)
        print(f"[{h.rank}] {a.title}" + (f"  ({meta})" if meta else "") + f"  score {h.score:.4f}")
        print("    " + " ".join(h.passage.text.split())[:600])
        print()
    log.info("search took %.1f ms", result.timings.total_ms)
    return 0


def cmd_articles(args) -> int:
    engine = _engine(args)
    rows = engine.articles()
    if args.json:
        print(json.dumps([{**a.meta(), "passages": n} for a, n in rows], ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("The index is empty.")
    for a, n in rows:
        meta = " · ".join(x for x in (a.source, (a.published_at or "")[:10]) if x)
        print(f"{a.article_id}  {a.title}" + (f"  ({meta})" if meta else "") + f"  {n} passages")
    print(f"{len(rows)} articles")
    return 0


def cmd_remove(args) -> int:
    engine = _engine(args)
    for a in engine.remove(args.article_ids):
        print(f"removed {a.article_id}  {a.title}")
    return 0


def ensure_seed_index(engine, *, show_progress: bool = True) -> None:
    """First run: build the index of the bundled seed articles."""
    if not engine.has_index():
        log.info("no index at %s yet: indexing the seed articles in %s", engine.index_dir, SEEDS_DIR)
        report = engine.ingest([SEEDS_DIR], show_progress=show_progress)
        _print_report(report)


def cmd_app(args) -> int:
    """Terminal search over the index (builds the seed index on first run)."""
    engine = _engine(args)
    ensure_seed_index(engine)
    print(f"{len(engine.articles())} articles indexed in {engine.index_dir}. Type a question (empty line to quit).")
    while True:
        try:
            q = input("? ").strip()
        except EOFError:
            break
        if not q:
            break
        try:
            for h in engine.search(q, k=5).hits:
                print(f"[{h.rank}] {h.article.title} ({h.article.source or 'unknown source'})")
                print("    " + " ".join(h.passage.text.split())[:400])
        except RagError as exc:
            print(f"error: {exc}")
    return 0


def cmd_serve(args) -> int:
    """The browser app (indexes seeds/ in the background on first run)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from ui.app import main as serve

    engine = _engine(args)
    engine.settings = _answer_settings(args, engine)  # defaults of each browser session's settings
    try:
        serve(args.host, args.port, args.auth or os.environ.get("RAG_AUTH") or None, engine=engine)
    except OSError as exc:
        raise RagError(f"cannot serve on {args.host}:{args.port}: {exc}") from exc
    return 0


def _answer_settings(args, engine):
    overrides = {}
    if getattr(args, "llm", None):
        overrides["answer_mode"] = args.llm
    for flag, field in (("llm_model_path", "llm_model_path"), ("llm_base_url", "llm_base_url"), ("llm_model", "llm_model")):
        if getattr(args, flag, None):
            overrides[field] = getattr(args, flag)
    if getattr(args, "k", None):
        overrides["top_k"] = args.k
    if getattr(args, "mode", None):
        overrides["retrieval_mode"] = args.mode
    return engine.settings.model_copy(update=overrides)


def _print_answer(answer, *, stream_text: bool = False) -> None:
    if not stream_text:
        print(answer.answer)
    if answer.flagged:
        print("(warning: the model's answer cites none of the passages; treat it as unsupported)")
    if answer.citations:
        print()
        for c in answer.citations:
            meta = " · ".join(x for x in (c.source, (c.published_at or "")[:10]) if x)
            print(f"[{c.n}] {c.title}" + (f" ({meta})" if meta else ""))
            print(f"    “{' '.join(c.quote.split())}”")
            if c.url:
                print(f"    {c.url}")
    elif answer.abstained and answer.related:
        print("\nClosest passages:")
        for r in answer.related[:3]:
            print(f"  - {r.title} ({r.source or 'unknown source'}): {' '.join(r.text.split())[:200]}…")


def _run_question(engine, chain, question, history, settings, *, as_json: bool):
    from .chain import DoneEvent, TextEvent, stream

    streaming = settings.answer_mode != "extractive" and not as_json
    answer = None
    for event in stream(engine, question, history, settings, chain):
        if streaming and isinstance(event, TextEvent):
            print(event.text, end="", flush=True)
        elif isinstance(event, DoneEvent):
            answer = event.answer
    if as_json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
    else:
        if streaming:
            print("\n\n" + answer.answer)  # the checked answer: invalid markers removed
        _print_answer(answer)
    return answer


def cmd_ask(args) -> int:
    from .chain import build_chain

    engine = _engine(args)
    settings = _answer_settings(args, engine)
    _run_question(engine, build_chain(engine), args.question, [], settings, as_json=args.json)
    return 0


def cmd_chat(args) -> int:
    from .chain import build_chain
    from .models import Turn

    engine = _engine(args)
    ensure_seed_index(engine)
    settings = _answer_settings(args, engine)
    chain = build_chain(engine)
    history: list[Turn] = []
    print("Ask about your articles. Empty line or Ctrl-D to quit; /new starts a new conversation.")
    while True:
        try:
            q = input("\nyou> ").strip()
        except EOFError:
            break
        if not q:
            break
        if q == "/new":
            history.clear()
            print("(new conversation)")
            continue
        try:
            answer = _run_question(engine, chain, q, history, settings, as_json=False)
        except RagError as exc:
            print(f"error: {exc}")
            continue
        history.append(Turn(q, answer.answer, answer.query))
    return 0


def cmd_eval(args) -> int:
    from eval.run import run_from_args

    return run_from_args(args)


def _add_llm_flags(p) -> None:
    p.add_argument("--llm", choices=["extractive", "llamacpp", "openai"], help="answerer (default extractive)")
    p.add_argument("--llm-model-path", dest="llm_model_path", help="GGUF file for --llm llamacpp")
    p.add_argument("--llm-base-url", dest="llm_base_url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1")
    p.add_argument("--llm-model", dest="llm_model", help="model name on the server")
    p.add_argument("-k", type=int, default=None, help="passages to retrieve")
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default=None)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--index", metavar="DIR", help="index folder (default ./index or $RAG_INDEX)")
    common.add_argument("-v", "--verbose", action="store_true", help="log more")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    p = argparse.ArgumentParser(prog="rag", description="Ask questions about your news articles, with citations.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("ingest", parents=[common], help="add article files or folders to the index")
    s.add_argument("paths", nargs="+", metavar="PATH")
    s.add_argument("--embedding-backend", choices=["torch", "onnx", "onnx-int8", "openvino"])
    s.add_argument("--index-type", choices=["auto", "flat", "hnsw", "ivf"])
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("search", parents=[common], help="show the best passages for a question")
    s.add_argument("question")
    s.add_argument("-k", type=int, default=10, help="number of passages (default 10)")
    s.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default=None)
    s.add_argument("--mmr", action="store_true", help="diversify results (maximal marginal relevance)")
    s.add_argument("--source", action="append", help="only this source (repeatable)")
    s.add_argument("--article", action="append", help="only this article id (repeatable)")
    s.add_argument("--since", metavar="YYYY-MM-DD")
    s.add_argument("--until", metavar="YYYY-MM-DD")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_search)

    s = sub.add_parser("articles", parents=[common], help="list indexed articles")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_articles)

    s = sub.add_parser("remove", parents=[common], help="remove articles by id")
    s.add_argument("article_ids", nargs="+", metavar="ARTICLE_ID")
    s.set_defaults(func=cmd_remove)

    s = sub.add_parser("ask", parents=[common], help="answer a question with cited sources")
    s.add_argument("question")
    s.add_argument("--json", action="store_true", help="print the typed answer as JSON")
    _add_llm_flags(s)
    s.set_defaults(func=cmd_ask)

    s = sub.add_parser("chat", parents=[common], help="a conversation in the terminal")
    _add_llm_flags(s)
    s.set_defaults(func=cmd_chat)

    s = sub.add_parser("app", parents=[common], help="terminal search (indexes seeds/ on first run)")
    s.set_defaults(func=cmd_app)

    s = sub.add_parser("serve", parents=[common], help="the browser app (indexes seeds/ on first run)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others warn without --auth)")
    s.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    s.add_argument("--auth", metavar="USER:PASSWORD", help="require this login (or $RAG_AUTH)")
    _add_llm_flags(s)
    s.set_defaults(func=cmd_serve)

    from eval.run import add_arguments as add_eval_arguments

    s = sub.add_parser("eval", help="evaluate configurations on a question set (writes a report)")
    add_eval_arguments(s)
    s.set_defaults(func=cmd_eval)
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # OpenMP threads spin while waiting: llama.cpp's made generation ~5x slower on
    # a shared 2-core box, and faiss's (after each search) slow the embedding model
    # of the next query (search p50 35 -> 19 ms, MultiHop-RAG). Must be set before
    # faiss or llama_cpp is imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "sentence_transformers", "faiss", "bm25s", "urllib3", "trafilatura", "htmldate"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
