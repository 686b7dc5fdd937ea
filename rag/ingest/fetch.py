"""Fetching web pages and feeds safely and politely (httpx).

Safety, for every request and every redirect hop:

* only ``http`` and ``https`` (never ``file://`` or anything else);
* the host name is resolved here and the address is checked before connecting:
  private, loopback, link-local, multicast and reserved addresses are refused unless
  ``Settings.fetch_allow_private``; the connection then goes to exactly that checked
  address (the URL's host travels in the Host header and as the TLS server name), so
  a DNS answer that changes between the check and the connection cannot slip through;
* redirects are followed by hand (at most ``fetch_max_redirects``), each target
  checked again;
* a time limit on the whole fetch (a server trickling bytes is cut off) besides the
  connect/read timeouts, and a size limit on the decoded body (compression bombs).

Politeness: a clear User-Agent, robots.txt (RFC 9309, parsed by protego; a missing
file allows everything, an unreachable one allows nothing), at least
``fetch_host_delay_s`` (or the site's Crawl-delay, up to 30 s) between two requests to
one host, and conditional GET (ETag / Last-Modified) so an unchanged page costs a 304.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urljoin, urlsplit, urlunsplit

from ..errors import RagError
from ..settings import Settings
from .urls import url_problem

log = logging.getLogger(__name__)

ROBOTS_AGENT = "article-rag"  # the token robots.txt groups are matched against
ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309: at least 500 KiB must be parsed
MAX_CRAWL_DELAY_S = 30.0


class FetchError(RagError):
    """A URL could not be fetched; the message is the reason, for the user."""


@dataclass(frozen=True)
class Fetched:
    url: str  # as asked for
    final_url: str  # after redirects
    status: int  # 200, or 304 (not modified: ``content`` is empty)
    content: bytes
    content_type: str | None
    charset: str | None
    etag: str | None
    last_modified: str | None
    fetched_at: str  # ISO 8601 UTC

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def address_problem(ip: str, allow_private: bool) -> str | None:
    """Why connecting to ``ip`` is refused, or None."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.is_multicast or addr.is_unspecified:
        return f"{addr} is not a host address"
    if not allow_private and not addr.is_global:
        kind = ("a loopback" if addr.is_loopback else "a link-local" if addr.is_link_local
                else "a private" if addr.is_private else "a reserved")
        return f"{kind} address ({addr}); set RAG_FETCH_ALLOW_PRIVATE=true to allow it"
    return None


class Fetcher:
    """One client for a batch of fetches; thread-safe (a refresh fetches in parallel)."""

    def __init__(self, settings: Settings):
        import httpx

        self.settings = settings
        self._client = httpx.Client(
            timeout=httpx.Timeout(settings.fetch_timeout_s),
            follow_redirects=False,
            headers={"User-Agent": settings.fetch_user_agent, "Accept-Encoding": "gzip, deflate"},
            limits=httpx.Limits(max_connections=max(4, settings.fetch_concurrency * 2)),
            trust_env=False,  # no proxy from the environment: the checked address is the one connected to
        )
        self._lock = threading.Lock()
        self._next_slot: dict[str, float] = {}
        self._robots: dict[str, object] = {}  # origin -> Protego, or a str: why nothing is allowed
        self._robots_locks: dict[str, threading.Lock] = {}

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- public --------------------------------------------------------------------
    def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
            max_bytes: int | None = None, robots: bool = True) -> Fetched:
        """GET ``url`` (conditionally, when validators are given). Raises FetchError."""
        if problem := url_problem(url):
            raise FetchError(problem)
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        limit = max_bytes or self.settings.fetch_max_bytes
        deadline = time.monotonic() + self.settings.fetch_timeout_s
        current = url
        for _hop in range(self.settings.fetch_max_redirects + 1):
            if robots:
                self._check_robots(current)
            response = self._request(current, headers, limit, deadline)
            if response is None:
                raise FetchError(f"took longer than {self.settings.fetch_timeout_s:g} s")
            status, location, info = response
            if status in (301, 302, 303, 307, 308):
                if not location:
                    raise FetchError(f"HTTP {status} redirect without a Location")
                target = urljoin(current, location)
                if problem := url_problem(target):
                    raise FetchError(f"redirected to {target}: {problem}")
                log.debug("%s redirects to %s", current, target)
                current = target
                continue
            if status == 304:
                return Fetched(url, current, 304, b"", None, None, etag, last_modified, utc_now())
            if status != 200:
                raise FetchError(f"HTTP {status}" + (f" {info['reason']}" if info.get("reason") else ""))
            return Fetched(url, current, 200, info["content"], info["content_type"], info["charset"],
                           info["etag"], info["last_modified"], utc_now())
        raise FetchError(f"more than {self.settings.fetch_max_redirects} redirects")

    # -- internals -------------------------------------------------------------------
    def _resolve(self, host: str, port: int) -> str:
        """The checked address to connect to (the first allowed one)."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchError(f"cannot resolve {host} ({exc})") from None
        problems = []
        for *_rest, sockaddr in infos:
            ip = sockaddr[0]
            problem = address_problem(ip, self.settings.fetch_allow_private)
            if problem is None:
                return ip
            problems.append(problem)
        raise FetchError(f"{host} resolves to {problems[0] if problems else 'no address'}")

    def _wait_turn(self, host_key: str, delay: float) -> None:
        """Space requests to one host by ``delay`` seconds (parallel workers take turns)."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot.get(host_key, 0.0))
            self._next_slot[host_key] = slot + delay
        if slot > now:
            time.sleep(slot - now)

    def _request(self, url: str, extra_headers: dict, limit: int, deadline: float):
        """One hop: ``(status, location, info)``, or None when the deadline passed."""
        import httpx

        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        ip = self._resolve(host, port)
        self._wait_turn(parts.netloc.lower(), self._delay_for(scheme, parts.netloc.lower()))
        ip_host = f"[{ip}]" if ":" in ip else ip
        target = urlunsplit((scheme, f"{ip_host}:{port}", parts.path or "/", parts.query, ""))
        default_port = (scheme, port) in (("http", 80), ("https", 443))
        headers = {"Host": host if default_port else f"{host}:{port}", **extra_headers}
        extensions = {"sni_hostname": host} if scheme == "https" else {}
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        try:
            with self._client.stream("GET", target, headers=headers, extensions=extensions,
                                     timeout=httpx.Timeout(min(self.settings.fetch_timeout_s, remaining))) as r:
                if r.status_code != 200:
                    return r.status_code, r.headers.get("location"), {"reason": r.reason_phrase}
                declared = r.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise FetchError(f"response is {int(declared) / 1048576:.1f} MB, above the "
                                     f"{limit / 1048576:g} MB limit (RAG_FETCH_MAX_MB)")
                chunks, size = [], 0
                for chunk in r.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise FetchError(f"response is larger than the {limit / 1048576:g} MB limit (RAG_FETCH_MAX_MB)")
                    if time.monotonic() > deadline:
                        return None
                    chunks.append(chunk)
                ctype = r.headers.get("content-type")
                return 200, None, {
                    "content": b"".join(chunks),
                    "content_type": ctype.split(";", 1)[0].strip().lower() if ctype else None,
                    "charset": r.charset_encoding,
                    "etag": r.headers.get("etag"),
                    "last_modified": r.headers.get("last-modified"),
                }
        except httpx.TimeoutException:
            raise FetchError(f"timed out after {self.settings.fetch_timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise FetchError(f"connection failed ({type(exc).__name__}: {exc})") from None

    def _delay_for(self, scheme: str, netloc: str) -> float:
        rules = self._robots.get(f"{scheme}://{netloc}")
        delay = self.settings.fetch_host_delay_s
        if rules is not None and not isinstance(rules, str):
            crawl = rules.crawl_delay(ROBOTS_AGENT)
            if crawl:
                delay = max(delay, min(float(crawl), MAX_CRAWL_DELAY_S))
        return delay

    def _check_robots(self, url: str) -> None:
        parts = urlsplit(url)
        origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
        with self._lock:
            lock = self._robots_locks.setdefault(origin, threading.Lock())
        with lock:
            if origin not in self._robots:
                self._robots[origin] = self._load_robots(origin)
        rules = self._robots[origin]
        if isinstance(rules, str):
            raise FetchError(rules)
        if not rules.can_fetch(url, ROBOTS_AGENT):
            raise FetchError(f"robots.txt of {origin} does not allow fetching this page")

    def _load_robots(self, origin: str):
        from protego import Protego

        try:
            got = self.get(f"{origin}/robots.txt", max_bytes=ROBOTS_MAX_BYTES, robots=False)
        except FetchError as exc:
            reason = str(exc)
            status = reason.split()[1] if reason.startswith("HTTP ") else ""
            if status.isdigit() and 400 <= int(status) < 500:
                return Protego.parse("")  # no robots.txt: everything is allowed
            # RFC 9309 2.3.1.4: an unreachable robots.txt means full disallow.
            return f"robots.txt of {origin} could not be read ({reason}), so nothing there is fetched"
        return Protego.parse(got.content.decode("utf-8", errors="replace"))
