"""``rag``: the command line face of the engine.

Subcommands that belong to another face (``rag serve``: the browser app; ``rag
eval``: the evaluation) are plugged in through the ``article_rag.commands`` entry
points, so this package imports no other face.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from importlib.metadata import entry_points
from pathlib import Path

from rag.errors import RagError
from rag.runtime import configure_logging, configure_process, run_command

log = logging.getLogger("rag")

COMMANDS_GROUP = "article_rag.commands"


class PluginHelpers:
    """What a plugged-in subcommand may use of this CLI (passed in, never imported)."""

    @staticmethod
    def engine(args):
        return _engine(args)

    @staticmethod
    def add_llm_flags(parser) -> None:
        add_llm_flags(parser)

    @staticmethod
    def answer_settings(args, engine):
        return answer_settings(args, engine)

    @staticmethod
    def print_report(report) -> None:
        print_report(report)


def _settings(args):
    from rag.settings import Settings

    overrides = {}
    if getattr(args, "index", None):
        overrides["index_dir"] = Path(args.index)
    for name in ("embedding_backend", "index_type"):
        if getattr(args, name, None):
            overrides[name] = getattr(args, name)
    settings = Settings()
    return settings.model_copy(update=overrides) if overrides else settings


def _engine(args):
    from rag.engine import Engine

    return Engine(_settings(args))


def print_report(report) -> None:
    for r in report.results:
        path = shown(r.path)
        if r.status == "added":
            print(f"added      {r.article_id}  {r.title}  ({r.passages} passages)  [{path}]")
        elif r.status == "updated":
            print(f"updated    {r.article_id}  {r.title}  ({r.reason})  [{path}]")
        elif r.status == "duplicate":
            print(f"unchanged  {r.article_id}  {r.title}  (already in the index)  [{path}]")
        elif r.status == "skipped":
            print(f"skipped    {path}: {r.reason}")
        else:
            print(f"rejected   {path}: {r.reason}")
    print(report.summary())


def shown(path: str) -> str:
    """A path on one line: control characters in a file name (a newline) are escaped."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in path)


def cmd_ingest(args) -> int:
    from rag.ingest.urls import is_web_url
    from rag.types import IngestReport

    engine = _engine(args)
    urls = [p for p in args.paths if is_web_url(p)]
    paths = [p for p in args.paths if not is_web_url(p)]
    report = IngestReport()
    if paths and args.ray is not None:
        report.results += engine.ingest_ray(paths, address=args.ray or None, workers=args.ray_workers,
                                            show_progress=not args.quiet).results
    elif paths:
        report.results += engine.ingest(paths, show_progress=not args.quiet).results
    if urls:
        report.results += engine.ingest_urls(urls, show_progress=not args.quiet).results
    print_report(report)
    print_merges(engine)
    # Non-zero only when nothing could be ingested at all.
    return 0 if (report.added or report.updated or report.duplicates) else 1


def cmd_migrate(args) -> int:
    from rag.store.transfer import migrate

    report = migrate(_settings(args), args.to, show_progress=not args.quiet)
    print(report.summary())
    return 0


def cmd_search(args) -> int:
    from rag.retrieve.filters import Filters, parse_date_arg

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
        print(json.dumps([{**a.meta(), "passages": n,
                           "also_published_by": [c.to_dict() for c in engine.also_published_by(a.article_id)]}
                          for a, n in rows], ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("The index is empty.")
    for a, n in rows:
        meta = " · ".join(x for x in (a.source, shown_date(a.published_at, a.date_source)) if x)
        copies = engine.also_published_by(a.article_id)
        also = ("  also published by " + ", ".join(c.source or c.url or c.article_id for c in copies)) if copies else ""
        print(f"{a.article_id}  {a.title}" + (f"  ({meta})" if meta else "") + f"  {n} passages{also}")
    print(f"{len(rows)} articles")
    return 0


def shown_date(published_at: str | None, date_source: str | None) -> str:
    """The day, marked when it is only the day the article was added."""
    day = (published_at or "")[:10]
    return f"{day} (ingest date)" if day and date_source == "ingest" else day


def cmd_feeds(args) -> int:
    from rag.ingest.feeds import format_every

    engine = _engine(args)
    if args.feeds_command == "add":
        f = engine.add_feed(args.url, args.every)
        print(f"added feed {f.url}" + (f"  “{f.title}”" if f.title else "") + f"  ({f.kind}, every {format_every(f.every_s)});"
              " `rag feeds refresh` fetches its articles")
        return 0
    if args.feeds_command == "remove":
        engine.remove_feed(args.url)
        print(f"removed feed {args.url} (its articles stay in the index)")
        return 0
    if args.feeds_command == "list":
        feeds = engine.feeds()
        if args.json:
            print(json.dumps([f.to_dict() for f in feeds], ensure_ascii=False, indent=2))
            return 0
        if not feeds:
            print("No feeds. Add one with `rag feeds add URL`.")
        for f in feeds:
            last = (f.last_refresh or "never")[:16].replace("T", " ")
            print(f"{f.url}  {f.title or ''}  every {format_every(f.every_s)}  last refresh {last}: "
                  f"{f.last_new_items} new, {f.last_updated_items} updated  ({f.items_seen} items seen)")
            if f.last_error:
                print(f"    last error: {f.last_error}")
        return 0
    urls = None if args.all or not args.urls else args.urls
    report = engine.refresh_feeds(urls, show_progress=not args.quiet)
    for r in report.feeds:
        if r.status == "error":
            print(f"error         {r.url}: {r.error}")
        else:
            print(f"{r.status:<13} {r.url}: {r.new_items} new, {r.updated_items} updated, {r.unchanged_items} unchanged")
        for p in r.item_problems:
            print(f"    item failed  {shown(p.url)}: {p.reason}")
    print(report.summary() if report.feeds else "No feeds to refresh. Add one with `rag feeds add URL`.")
    return 1 if report.feeds and len(report.failed) == len(report.feeds) else 0


def cmd_remove(args) -> int:
    engine = _engine(args)
    for a in engine.remove(args.article_ids):
        print(f"removed {a.article_id}  {a.title}")
    print_merges(engine)
    return 0


def print_merges(engine) -> None:
    """Let the background merges a write started finish (the process is about to exit)."""
    for m in engine.wait_for_merges():
        log.info("merged %d segments into %s (%d passages) in %.1fs", len(m.merged), m.into, m.passages, m.seconds)


def cmd_check(args) -> int:
    """Verify the index byte for byte; exit 1 when something is damaged."""
    from rag.store.check import check_index

    report = check_index(_settings(args).index_dir, repair=args.repair)
    if args.json:
        print(json.dumps({
            "index": str(report.root), "ok": report.ok, "articles": report.articles, "passages": report.passages,
            "repaired": report.repaired,
            "findings": [{"kind": f.kind, "where": f.where, "problem": f.problem, "fix": f.fix} for f in report.findings],
        }, ensure_ascii=False, indent=2))
    else:
        for name in report.repaired:
            print(f"removed  {name}")
        for f in report.findings:
            print(f.line())
        print(report.summary())
    return 0 if report.ok else 1


def ensure_seed_index(engine, *, show_progress: bool = True) -> None:
    """First run: build the index of the bundled seed articles."""
    report = engine.ensure_seed_index(show_progress=show_progress)
    if report is not None:
        print_report(report)


def cmd_app(args) -> int:
    """Terminal search over the index (builds the seed index on first run)."""
    engine = _engine(args)
    ensure_seed_index(engine)
    print(f"{len(engine.articles())} articles indexed in {engine.index_location}. Type a question (empty line to quit).")
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


def answer_settings(args, engine):
    overrides = {}
    if getattr(args, "llm", None):
        overrides["answer_mode"] = args.llm
    for flag, field in (("local_model", "local_model"), ("llm_model_path", "llm_model_path"), ("llm_base_url", "llm_base_url"), ("llm_model", "llm_model")):
        if getattr(args, flag, None):
            overrides[field] = getattr(args, flag)
    if getattr(args, "k", None):
        overrides["top_k"] = args.k
    if getattr(args, "mode", None):
        overrides["retrieval_mode"] = args.mode
    return engine.settings.model_copy(update=overrides)


def _print_answer(answer, *, stream_text: bool = False) -> None:
    if answer.query and answer.query != answer.question:
        print(f"(asked as: {answer.query})")
    # The answer text itself leads with the short answer ("Budapest — ...") or, when
    # the sources disagree, with the comparison ("The sources differ: BBC: ... [1] · ...").
    if not stream_text:
        print(answer.answer)
    if answer.period:
        print(f"(articles from {answer.period})" if not answer.period.startswith("the most recent")
              else f"({answer.period}, newest first)")
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


def _run_question(engine, chain, question, history, settings, *, as_json: bool, now=None):
    from rag.chain import DoneEvent, TextEvent, stream

    streaming = settings.answer_mode != "extractive" and not as_json
    answer = None
    for event in stream(engine, question, history, settings, chain, now=now):
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
    from rag.chain import build_chain

    from rag.retrieve.timeframe import parse_now

    engine = _engine(args)
    settings = answer_settings(args, engine)
    _run_question(engine, build_chain(engine), args.question, [], settings, as_json=args.json, now=parse_now(args.now))
    return 0


def cmd_chat(args) -> int:
    from rag.chain import build_chain
    from rag.retrieve.timeframe import parse_now
    from rag.types import Turn

    engine = _engine(args)
    ensure_seed_index(engine)
    settings = answer_settings(args, engine)
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
            answer = _run_question(engine, chain, q, history, settings, as_json=False, now=parse_now(args.now))
        except RagError as exc:
            print(f"error: {exc}")
            continue
        history.append(Turn.of(q, answer))
    return 0


def add_llm_flags(p) -> None:
    p.add_argument("--llm", choices=["extractive", "local", "llamacpp", "openai"],
                   help="answerer (default extractive; local: the packaged Qwen model reads the best sentences)")
    p.add_argument("--local-model", dest="local_model", choices=["qwen2.5-0.5b", "qwen2.5-1.5b"],
                   help="packaged model for --llm local (default qwen2.5-0.5b)")
    p.add_argument("--llm-model-path", dest="llm_model_path", help="GGUF file for --llm llamacpp")
    p.add_argument("--llm-base-url", dest="llm_base_url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1")
    p.add_argument("--llm-model", dest="llm_model", help="model name on the server")
    p.add_argument("-k", type=int, default=None, help="passages to retrieve")
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default=None)


def add_now_flag(p) -> None:
    p.add_argument("--now", metavar="TIME", help="answer as if asked at this time (YYYY-MM-DD[THH:MM]): "
                   "'last week', 'yesterday' ... are resolved against it (default: the clock)")


def common_flags() -> argparse.ArgumentParser:
    """The flags every subcommand takes (a parent parser)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--index", metavar="DIR", help="index folder (default $RAG_INDEX, else the per-user data folder)")
    common.add_argument("-v", "--verbose", action="store_true", help="log more")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = common_flags()
    p = argparse.ArgumentParser(prog="rag", description="Ask questions about your news articles, with citations.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("ingest", parents=[common], help="add article files, folders or web pages (URLs) to the index")
    s.add_argument("paths", nargs="+", metavar="PATH|URL")
    s.add_argument("--embedding-backend", choices=["torch", "onnx", "onnx-int8", "openvino"])
    s.add_argument("--index-type", choices=["auto", "flat", "hnsw", "ivf"])
    s.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="read, chunk and embed on a Ray cluster (ADDRESS or $RAY_ADDRESS; none: a local one)")
    s.add_argument("--ray-workers", type=int, default=None, metavar="N",
                   help="embedding actors, one model each (default: the cluster's CPUs)")
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("migrate", parents=[common], help="copy the index to the other store (no re-embedding)")
    s.add_argument("--to", required=True, choices=["milvus", "local"],
                   help="milvus: from the --index folder to RAG_MILVUS_URI; local: the other way")
    s.set_defaults(func=cmd_migrate)

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

    s = sub.add_parser("feeds", help="RSS/Atom feeds and news sitemaps: add, list, remove, refresh")
    fs = s.add_subparsers(dest="feeds_command", required=True)
    f = fs.add_parser("add", parents=[common], help="subscribe to a feed (checked by fetching it once)")
    f.add_argument("url", metavar="URL")
    f.add_argument("--every", metavar="INTERVAL", help="refresh interval, e.g. 30m, 2h, 1d (default 30m)")
    f = fs.add_parser("list", parents=[common], help="the feeds, their last refresh, new items and last error")
    f.add_argument("--json", action="store_true")
    f = fs.add_parser("remove", parents=[common], help="unsubscribe (the articles stay)")
    f.add_argument("url", metavar="URL")
    f = fs.add_parser("refresh", parents=[common], help="fetch new and changed items now")
    f.add_argument("urls", nargs="*", metavar="URL", help="only these feeds (default: all)")
    f.add_argument("--all", action="store_true", help="every feed (the default)")
    s.set_defaults(func=cmd_feeds)

    s = sub.add_parser("articles", parents=[common], help="list indexed articles")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_articles)

    s = sub.add_parser("remove", parents=[common], help="remove articles by id")
    s.add_argument("article_ids", nargs="+", metavar="ARTICLE_ID")
    s.set_defaults(func=cmd_remove)

    s = sub.add_parser("check", parents=[common], help="verify the index (checksums, SQLite, counts); --repair removes leftovers")
    s.add_argument("--repair", action="store_true", help="remove leftovers of interrupted writes")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("ask", parents=[common], help="answer a question with cited sources")
    s.add_argument("question")
    s.add_argument("--json", action="store_true", help="print the typed answer as JSON")
    add_llm_flags(s)
    add_now_flag(s)
    s.set_defaults(func=cmd_ask)

    s = sub.add_parser("chat", parents=[common], help="a conversation in the terminal")
    add_llm_flags(s)
    add_now_flag(s)
    s.set_defaults(func=cmd_chat)

    s = sub.add_parser("app", parents=[common], help="terminal search (indexes seeds/ on first run)")
    s.set_defaults(func=cmd_app)

    # Subcommands of the other faces (serve, eval), registered by entry points.
    for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        ep.load()(sub, common, PluginHelpers)
    return p


def main(argv: list[str] | None = None) -> int:
    configure_process()
    args = build_parser().parse_args(argv)
    configure_logging(verbose=getattr(args, "verbose", False), quiet=getattr(args, "quiet", False))
    return run_command(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
