"""URLs of web articles: which are allowed, their normal form, and which site they are on."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

ALLOWED_SCHEMES = ("http", "https")
# Campaign parameters: the same page shared through a newsletter or a feed.
_TRACKING_PREFIXES = ("utm_", "mc_", "fbclid", "gclid", "ocid", "cmpid")


def is_web_url(value: str) -> bool:
    """Something the user meant as a URL (any scheme), rather than a file path."""
    head = value.split("/", 1)[0].lower()
    return "://" in value and head.endswith(":") and head[:-1].isalpha()


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be fetched (scheme, no host), or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port out of range
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        return f"only http and https URLs are fetched, not {parts.scheme or 'a bare path'}:"
    if not parts.hostname:
        return "the URL has no host"
    return None


def normalize_url(url: str) -> str:
    """One spelling per page: lower-case scheme and host, no default port, no fragment,
    no campaign parameters."""
    p = urlsplit(url.strip())
    scheme = p.scheme.lower()
    host = (p.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = p.port
    netloc = host if port is None or (scheme, port) in (("http", 80), ("https", 443)) else f"{host}:{port}"
    query = urlencode([(k, v) for k, v in parse_qsl(p.query, keep_blank_values=True)
                       if not k.lower().startswith(_TRACKING_PREFIXES)])
    return urlunsplit((scheme, netloc, p.path or "/", query, ""))


def site_of(url: str | None) -> str | None:
    """The site a URL belongs to: its registered domain ("bbc.co.uk" for
    "www.bbc.co.uk"), or host:port for an address or a single-label host."""
    if not url:
        return None
    import courlan

    try:
        p = urlsplit(url)
        domain = courlan.extract_domain(url)
        return domain or (f"{p.hostname}:{p.port}" if p.port else p.hostname)
    except ValueError:
        return None


def same_site(a: str | None, b: str | None) -> bool:
    return bool(a and b) and site_of(a) == site_of(b)
