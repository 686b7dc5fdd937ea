"""Real HTTP news sites on 127.0.0.1 for the web, feed and wire-copy tests.

Each :class:`Site` is a threaded ``http.server`` with its own port (two ports: two
"sites"), serving article pages wrapped in real-looking boilerplate (navigation,
cookie banner, share buttons, related links, an author-bio box, a footer), RSS,
Atom and news sitemaps, redirects, 404/500, a slow and an oversized response and
malformed XML. Pages answer conditional GETs (ETag, Last-Modified) with 304 and
every request is logged, so a test can check what a refresh actually fetched.
"""

from __future__ import annotations

import hashlib
import html
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Stories (invented), each a few paragraphs of wire-style copy.
STORIES = {
    "harbour": (
        "Harbour bridge reopens after six-month repair",
        [
            "The Kestrel Harbour bridge reopened to traffic on Tuesday after a six-month repair that cost "
            "the regional authority 48 million euros, officials said.",
            "Engineers replaced 212 corroded cable anchors and resurfaced the entire 1.4-kilometre deck, "
            "work that had been delayed twice by winter storms.",
            "Mayor Ines Carvalho told reporters the bridge carries about 61,000 vehicles a day and that its "
            "closure had added up to forty minutes to commutes across the estuary.",
            "A second phase, repainting the steel towers, will begin in the spring and is expected to close "
            "one lane at night for about three months.",
            "The authority said tolls would stay at 2.10 euros for cars until at least the end of next year.",
        ],
    ),
    "windfarm": (
        "Offshore wind farm wins approval despite fishing objections",
        [
            "Regulators approved the 900-megawatt Brisa Norte offshore wind farm on Monday, rejecting "
            "objections from fishing cooperatives that said the turbines would close traditional grounds.",
            "The developer, Atlantis Renewables, said construction of the 60 turbines would start in 2027 "
            "and that the farm would power roughly 700,000 homes once complete.",
            "Fishing groups said they would appeal, arguing that the environmental study underestimated the "
            "effect on spawning areas for hake and sardine.",
            "The energy ministry said the project was central to its goal of producing 80 percent of the "
            "country's electricity from renewable sources by 2030.",
        ],
    ),
    "rail": (
        "Rail workers announce three-day strike over pay",
        [
            "Rail workers will strike for three days from Thursday after talks over pay collapsed, the "
            "Federation of Rail Unions said on Wednesday.",
            "The union is demanding a 7 percent raise to offset inflation, while the state operator has "
            "offered 3.5 percent spread over two years.",
            "The operator said it would run about a third of its regional services and warned passengers "
            "to expect crowded trains and cancellations.",
            "Commuter associations urged both sides to return to the table, saying the strike would hit "
            "workers who cannot work from home the hardest.",
        ],
    ),
    "ferry": (
        "Ferry operator adds night crossings on the estuary",
        [
            "The estuary ferry operator said on Wednesday it would add night crossings between the two "
            "harbour towns, a service it dropped during the bridge repair.",
            "Crossings will leave every 40 minutes between midnight and 5 a.m. from next month, with fares "
            "unchanged at 3 euros for foot passengers.",
            "The company said demand had stayed high even after the bridge reopened, because many workers "
            "on late shifts had switched to the boat.",
        ],
    ),
}
# The rail story after an edit: the strike was called off.
RAIL_UPDATE = [
    "Rail workers called off a planned three-day strike on Wednesday night after the state operator "
    "improved its pay offer, the Federation of Rail Unions said.",
    "The union accepted a 5.5 percent raise over eighteen months, up from the 3.5 percent over two years "
    "offered earlier in the week.",
    "All regional and long-distance services will run as normal from Thursday, the operator said.",
]

BIO = "Lars Holm has covered energy and transport for the Coastal Ledger since 2015."


def article_page(site_name: str, story: str, *, url: str, date_iso: str | None, author: str | None = "Ana Ribeiro",
                 paragraphs: list[str] | None = None, title: str | None = None, canonical: str | None = None,
                 with_bio: bool = True) -> str:
    """An article page with a site's usual boilerplate around it."""
    head_title, paras = STORIES[story]
    title = title or head_title
    paras = paragraphs or paras
    meta = []
    if date_iso:
        meta.append(f'<meta property="article:published_time" content="{date_iso}">')
    meta.append(f'<meta property="og:site_name" content="{html.escape(site_name)}">')
    meta.append(f'<link rel="canonical" href="{html.escape(canonical or url)}">')
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paras)
    # The author box that a scraper mistakes for the author ("Lars Holm has covered energy; Climate").
    bio_box = (f'<div class="author-box"><span class="author">Lars Holm has covered energy</span>; '
               f'<a href="/topics/climate">Climate</a><p>{html.escape(BIO)}</p></div>') if with_bio else ""
    byline = f'<p class="byline">By {html.escape(author)}</p>' if author else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} | {html.escape(site_name)}</title>
{''.join(meta)}</head>
<body>
<div class="cookie-banner">We use cookies to improve your experience. <button>Accept all cookies</button></div>
<header><nav><a href="/">Home</a> <a href="/news">News</a> <a href="/business">Business</a>
<a href="/sport">Sport</a> <a href="/subscribe">Subscribe</a> Menu Search</nav></header>
<main><article>
<h1>{html.escape(title)}</h1>
{byline}
<div class="share">Share on Facebook Share on X Email</div>
{body}
<p>Read more: Port authority plans new ferry terminal</p>
{bio_box}
</article>
<aside><h3>Related stories</h3><ul><li><a href="/news/a">Storm closes coastal road</a></li>
<li><a href="/news/b">Council approves budget</a></li></ul></aside>
</main>
<footer><p>Sign up to our newsletter for the best stories in your inbox.</p>
<p>© 2024 {html.escape(site_name)}. All rights reserved.</p></footer>
</body></html>"""


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    location: str | None = None
    delay_s: float = 0.0  # sleep before answering
    trickle_s: float = 0.0  # then send the body in pieces with this pause between them
    conditional: bool = True  # answer If-None-Match / If-Modified-Since with 304
    huge_bytes: int = 0  # stream this many bytes (an oversized response)
    modified: float = field(default_factory=lambda: time.time() - 3600)

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha1(self.body).hexdigest()[:16] + '"'


class Site:
    def __init__(self, name: str):
        self.name = name
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802 - http.server's name
                site.requests.append((self.path, dict(self.headers)))
                route = site.routes.get(self.path.split("?", 1)[0])
                try:
                    self._answer(route)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _answer(self, route: Route | None):
                if route is None:
                    return self._send(404, b"not found", "text/plain")
                if route.delay_s:
                    time.sleep(route.delay_s)
                if route.location:
                    self.send_response(route.status or 301)
                    self.send_header("Location", route.location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if route.status != 200:
                    return self._send(route.status, b"error", "text/plain")
                if route.conditional:
                    if self.headers.get("If-None-Match") == route.etag:
                        self.send_response(304)
                        self.send_header("ETag", route.etag)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return None
                if route.huge_bytes:
                    self.send_response(200)
                    self.send_header("Content-Type", route.content_type)
                    self.end_headers()  # no Content-Length: the size is only known by reading
                    chunk = b"<p>" + b"x" * 65530 + b"</p>"
                    sent = 0
                    while sent < route.huge_bytes:
                        self.wfile.write(chunk)
                        sent += len(chunk)
                    self.close_connection = True
                    return None
                self.send_response(200)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(route.body)))
                if route.conditional:
                    self.send_header("ETag", route.etag)
                    self.send_header("Last-Modified", formatdate(route.modified, usegmt=True))
                self.end_headers()
                if route.trickle_s:
                    for i in range(0, len(route.body), 64):
                        self.wfile.write(route.body[i : i + 64])
                        self.wfile.flush()
                        time.sleep(route.trickle_s)
                else:
                    self.wfile.write(route.body)
                return None

            def _send(self, status: int, body: bytes, ctype: str):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # a client hanging up on the huge page
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "Site":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def page(self, path: str, body: str, **kw) -> None:
        self.routes[path] = Route(body.encode("utf-8"), **kw)

    def hits(self, path: str) -> list[dict[str, str]]:
        """Headers of each request for ``path``, in order."""
        return [h for p, h in self.requests if p.split("?", 1)[0] == path]


def rss(title: str, items: list[dict]) -> str:
    """RSS 2.0; each item: title, link, guid, pubDate (RFC 822), description."""
    parts = []
    for it in items:
        fields = []
        for k, v in it.items():
            if v is None:
                continue
            # A guid that is not a URL says so, as real feeds do.
            attr = ' isPermaLink="false"' if k == "guid" and not str(v).startswith("http") else ""
            fields.append(f"<{k}{attr}>{html.escape(str(v))}</{k}>")
        parts.append("<item>" + "".join(fields) + "</item>")
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{html.escape(title)}</title>'
            f"<link>http://example.invalid/</link><description>news</description>{''.join(parts)}</channel></rss>")


def atom(title: str, entries: list[dict]) -> str:
    """Atom 1.0; each entry: id, title, link, updated, published, summary."""
    parts = []
    for e in entries:
        parts.append(
            f"<entry><id>{html.escape(e['id'])}</id><title>{html.escape(e['title'])}</title>"
            f'<link href="{html.escape(e["link"])}"/><updated>{e["updated"]}</updated>'
            + (f"<published>{e['published']}</published>" if e.get("published") else "")
            + f"<summary>{html.escape(e.get('summary', ''))}</summary></entry>"
        )
    return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>{html.escape(title)}</title><id>urn:test:{html.escape(title)}</id>"
            f"<updated>2025-10-17T12:00:00Z</updated>{''.join(parts)}</feed>")


def news_sitemap(publication: str, urls: list[tuple[str, str, str]]) -> str:
    """A Google news sitemap: (loc, publication_date, title) per URL."""
    body = "".join(
        f"<url><loc>{html.escape(loc)}</loc><news:news><news:publication><news:name>{html.escape(publication)}"
        f"</news:name><news:language>en</news:language></news:publication>"
        f"<news:publication_date>{date}</news:publication_date><news:title>{html.escape(title)}</news:title>"
        f"</news:news></url>"
        for loc, date, title in urls
    )
    return ('<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            f'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">{body}</urlset>')


def news_desk(site: Site) -> Site:
    """Site pages the face tests share: the harbour story (dated by its metadata), the
    rail story (undated page) and an RSS feed of the rail story (dated by the feed)."""
    A = site.url
    site.page("/news/harbour", article_page(site.name, "harbour", url=f"{A}/news/harbour",
                                            date_iso="2025-10-14T09:30:00Z"))
    site.page("/news/rail", article_page(site.name, "rail", url=f"{A}/news/rail", date_iso=None, with_bio=False))
    site.page("/feeds/rail.xml", rss(f"{site.name} - Transport", [
        {"title": STORIES["rail"][0], "link": f"{A}/news/rail", "guid": "cl-1003",
         "pubDate": "Wed, 15 Oct 2025 18:00:00 GMT"}]), content_type="application/rss+xml")
    return site
