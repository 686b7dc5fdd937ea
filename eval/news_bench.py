"""Measurements for news sources: date coverage, and the time of a feed refresh.

    python -m eval.news_bench dates   [--corpus corpus.json] [--seeds DIR] [--work DIR]
    python -m eval.news_bench refresh [--corpus corpus.json] [--items 200] [--host-delay 1.0] [--work DIR]
    python -m eval.news_bench periods RESULTS.json    (after `rag eval` on eval/questions/timeaware.jsonl)

``dates`` counts the articles that get a real publication date (not the ingest date)
from the seed files and from the MultiHop-RAG corpus written out as files the way a
reader would have them (see :func:`write_as_user_files`). Run it with another
checkout on ``PYTHONPATH`` for the "before" figure: it uses only what both have.

``refresh`` serves a 200-item RSS feed of corpus articles from a local HTTP server
(ETag / Last-Modified, like a real CMS), subscribes a fresh index to it and times a
first refresh (everything new) and a second one (nothing changed).

``periods`` reads a ``rag eval`` results file of a time-aware question set and gives,
per configuration, the share of the top-10 retrieved passages published inside the
period each question means (resolved from its ``now``), how many were published
after that ``now`` (possible only when replaying a past day), and the abstentions on
questions about a period with no article.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import shutil
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

EVAL_DIR = Path(__file__).resolve().parent
DEFAULT_CORPUS = EVAL_DIR.parent.parent / "shared" / "benchmarks" / "multihop-rag" / "corpus.json"
DEFAULT_SEEDS = EVAL_DIR.parent / "seeds"

# How a reader ends up with an article file, in turn (record i gets style i % 6).
STYLES = (
    "html-meta",  # a page saved from the browser: <meta property="article:published_time">
    "html-byline",  # a page whose only date is in its byline ("By X | November 27, 2023")
    "txt-dateline",  # a page saved as text: an outlet line "Mashable — 27 November 2023"
    "txt-published",  # a page saved as text: "Published: Nov 27, 2023 8:45 AM"
    "md-note",  # a Markdown note: "# Title", then the body (no date)
    "txt-body",  # the article text alone, copied out of the page (no date)
)


def write_as_user_files(corpus: list[dict], folder: Path) -> dict[str, str]:
    """Each corpus record as a file (file name -> style)."""
    folder.mkdir(parents=True, exist_ok=True)
    styles = {}
    for i, a in enumerate(corpus):
        style = STYLES[i % len(STYLES)]
        day = datetime.fromisoformat(a["published_at"])
        title, src, body = a["title"], a["source"], a["body"]
        author = a.get("author") if a.get("author") not in (None, "None") else None
        paras = [p for p in body.split("\n") if p.strip()]
        if style.startswith("html"):
            head = f"<title>{html.escape(title)}</title><meta property=\"og:site_name\" content=\"{html.escape(src)}\">"
            byline = f"<p class='byline'>By {html.escape(author or src)}</p>"
            if style == "html-meta":
                head += f'<meta property="article:published_time" content="{a["published_at"]}">'
            else:
                byline = f"<p class='byline'>By {html.escape(author or src)} | {day:%B} {day.day}, {day.year}</p>"
            text = (f"<!DOCTYPE html><html><head><meta charset='utf-8'>{head}</head><body><nav>Home News Sport Menu</nav>"
                    f"<article><h1>{html.escape(title)}</h1>{byline}"
                    + "".join(f"<p>{html.escape(p)}</p>" for p in paras)
                    + f"</article><footer>© {day.year} {html.escape(src)}</footer></body></html>")
            name = f"{i:03d}.html"
        elif style == "txt-dateline":
            text = "\n\n".join(["Menu", title, f"{src} — {day.day} {day:%B %Y}", *paras, "Share this article"])
            name = f"{i:03d}.txt"
        elif style == "txt-published":
            text = "\n\n".join([title, f"Published: {day:%b} {day.day}, {day.year} {day:%I:%M %p}", *paras])
            name = f"{i:03d}.txt"
        elif style == "md-note":
            text = f"# {title}\n\n" + "\n\n".join(paras)
            name = f"{i:03d}.md"
        else:
            text = "\n\n".join(paras)
            name = f"{i:03d}.txt"
        (folder / name).write_text(text, encoding="utf-8")
        styles[name] = style
    return styles


def _real_date(article) -> bool:
    # Works with code from before date_source existed too (then any date is real).
    return bool(article.published_at) and getattr(article, "date_source", None) != "ingest"


def date_coverage(corpus_path: Path, seeds: Path, work: Path) -> dict:
    from rag.ingest.readers import load_file
    from rag.settings import Settings

    settings = Settings()
    out: dict = {}
    seed_arts = [x for p in sorted(seeds.glob("*.txt")) for x in load_file(p, settings).articles]
    out["seeds"] = {"articles": len(seed_arts), "real_date": sum(map(_real_date, seed_arts)),
                    "dated": sum(bool(a.published_at) for a in seed_arts)}
    corpus = json.loads(corpus_path.read_text(encoding="utf-8"))
    folder = work / "multihop-files"
    shutil.rmtree(folder, ignore_errors=True)
    styles = write_as_user_files(corpus, folder)
    per: Counter = Counter()
    real: Counter = Counter()
    correct: Counter = Counter()
    for i, (name, style) in enumerate(sorted(styles.items())):
        arts = load_file(folder / name, settings).articles
        per[style] += 1
        if arts and _real_date(arts[0]):
            real[style] += 1
            correct[style] += arts[0].published_at[:10] == corpus[int(name[:3])]["published_at"][:10]
    out["multihop_files"] = {s: {"files": per[s], "real_date": real[s], "right_day": correct[s]} for s in STYLES}
    out["multihop_files"]["all"] = {"files": sum(per.values()), "real_date": sum(real.values()),
                                    "right_day": sum(correct.values())}
    return out


# ------------------------------------------------------------------------------ refresh


class _FeedServer:
    """A 200-item RSS feed and its pages, with ETag / Last-Modified and 304s."""

    def __init__(self, corpus: list[dict], items: int):
        self.pages: dict[str, bytes] = {}
        self.requests = 0
        entries = []
        srv = self
        for i, a in enumerate(corpus[:items]):
            path = f"/article/{i}"
            paras = "".join(f"<p>{html.escape(p)}</p>" for p in a["body"].split("\n") if p.strip())
            self.pages[path] = (
                f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(a['title'])}</title>"
                f"<meta property='article:published_time' content='{a['published_at']}'>"
                f"<meta property='og:site_name' content='{html.escape(a['source'])}'></head><body>"
                f"<nav>Home News Menu</nav><article><h1>{html.escape(a['title'])}</h1>{paras}</article>"
                f"<footer>© 2023</footer></body></html>").encode("utf-8")
            day = datetime.fromisoformat(a["published_at"])
            entries.append(f"<item><title>{html.escape(a['title'])}</title><link>{{base}}{path}</link>"
                           f"<guid isPermaLink='false'>item-{i}</guid><pubDate>{format_datetime(day)}</pubDate></item>")
        self._feed_template = ("<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Bench feed</title>"
                               "<link>http://bench.invalid/</link><description>x</description>" + "".join(entries)
                               + "</channel></rss>")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                srv.requests += 1
                body = srv.pages.get(self.path)
                ctype = "text/html; charset=utf-8"
                if self.path == "/feed.xml":
                    body, ctype = srv.feed, "application/rss+xml"
                elif self.path == "/robots.txt":
                    body, ctype = b"User-agent: *\nAllow: /\n", "text/plain"
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", "Mon, 27 Nov 2023 08:00:00 GMT")
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.feed = self._feed_template.replace("{base}", self.url).encode("utf-8")
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def refresh_timing(corpus_path: Path, items: int, host_delay: float, work: Path, backend: str | None) -> dict:
    from rag.engine import Engine
    from rag.settings import Settings

    corpus = json.loads(corpus_path.read_text(encoding="utf-8"))
    server = _FeedServer(corpus, items)
    index = work / "refresh-index"
    shutil.rmtree(index, ignore_errors=True)
    updates = {"index_dir": index, "fetch_allow_private": True, "fetch_host_delay_s": host_delay}
    if backend:
        updates["embedding_backend"] = backend
    engine = Engine(Settings().model_copy(update=updates))
    engine.embedder.embed(["warm up"])  # model loading is not part of a refresh
    try:
        engine.add_feed(f"{server.url}/feed.xml")
        out = {"items": items, "host_delay_s": host_delay}
        for run in ("first", "no_change"):
            before = server.requests
            t = time.perf_counter()
            report = engine.refresh_feeds()
            f = report.feeds[0]
            out[run] = {"seconds": round(time.perf_counter() - t, 2), "status": f.status, "new": f.new_items,
                        "updated": f.updated_items, "problems": len(f.item_problems), "requests": server.requests - before}
        # A refresh where the feed changed but its items did not (a server without 304s for the feed).
        server.feed = server.feed.replace(b"<title>Bench feed</title>", b"<title>Bench feed (edited)</title>")
        before, t = server.requests, time.perf_counter()
        f = engine.refresh_feeds().feeds[0]
        out["feed_changed_items_not"] = {"seconds": round(time.perf_counter() - t, 2), "status": f.status, "new": f.new_items,
                                         "unchanged": f.unchanged_items, "requests": server.requests - before}
        out["articles"] = len(engine.articles())
        return out
    finally:
        server.stop()


def period_report(results_path: Path) -> dict:
    from rag.retrieve.timeframe import find_period, parse_now

    results = json.loads(results_path.read_text(encoding="utf-8"))
    out = {}
    for name, cfg in results["configs"].items():
        inside = total = 0
        after_now = 0
        abstained_empty = empty = 0
        for rec in cfg["records"]:
            now = parse_now(rec.get("now"))
            if now is None:
                continue
            period = find_period(rec["question"], now)
            if period is None:
                continue
            if not rec["answerable"]:
                empty += 1
                abstained_empty += bool(rec["abstained"])
                continue
            days = [datetime.fromisoformat(r["published_at"]) for r in rec["retrieved"][:10] if r.get("published_at")]
            total += len(days)
            inside += sum((period.start is None or d.date() >= period.start)
                          and (period.end is None or d.date() <= period.end) for d in days)
            after_now += sum((d if d.tzinfo else d.astimezone()) > now for d in days)
        out[name] = {"in_period_share": round(inside / total, 3) if total else None, "passages": total,
                     "published_after_now": after_now,
                     "empty_period_abstained": f"{abstained_empty}/{empty}"}
    return out


def main(argv: list[str] | None = None) -> int:
    from rag.runtime import configure_logging, configure_process

    configure_process()
    p = argparse.ArgumentParser(prog="python -m eval.news_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["dates", "refresh", "periods"])
    p.add_argument("results", nargs="?", help="periods: a results.json of rag eval")
    p.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    p.add_argument("--seeds", default=str(DEFAULT_SEEDS))
    p.add_argument("--items", type=int, default=200)
    p.add_argument("--host-delay", type=float, default=None, help="seconds between requests to one host (default: the setting)")
    p.add_argument("--embedding-backend", default=None)
    p.add_argument("--work", default="/tmp/news-bench")
    args = p.parse_args(argv)
    configure_logging(quiet=True)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.what == "periods":
        if not args.results:
            p.error("periods needs a results.json")
        result = period_report(Path(args.results))
    elif args.what == "dates":
        result = date_coverage(Path(args.corpus), Path(args.seeds), work)
    else:
        from rag.settings import Settings

        delay = args.host_delay if args.host_delay is not None else Settings().fetch_host_delay_s
        result = refresh_timing(Path(args.corpus), args.items, delay, work, args.embedding_backend)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
