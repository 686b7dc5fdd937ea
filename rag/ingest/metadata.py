"""Article metadata that has to be judged or made: a headline for an untitled text,
whether an "author" is a name, a page's canonical URL and author fallbacks."""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import urljoin, urlsplit

from .dates import WIRE_DATELINE

log = logging.getLogger(__name__)

# Headline length: news headlines run 6-14 words; a title longer than this is a sentence.
HEADLINE_MAX_WORDS = 12
HEADLINE_MAX_CHARS = 90

_SENTENCE_END = re.compile(r"[.!?](?=[\"'”’)\]]*(?:\s+[\"'“‘(\[]?[A-Z0-9]|\s*$))")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr gen sen rep gov lt col capt sgt prof no vs inc corp co ltd dept est approx".split()
)


def _first_sentence_end(text: str) -> int:
    """Where the first sentence ends: a full stop that is not an abbreviation ("U.S.", "Mr.")."""
    for m in _SENTENCE_END.finditer(text):
        before = re.search(r"(\S+)$", text[: m.start()])
        word = before.group(1).lower().lstrip("(\"'“‘") if before else ""
        if text[m.start()] == "." and (word in _ABBREVIATIONS or re.fullmatch(r"(?:[a-z]\.)*[a-z]", word)):
            continue
        return m.start()
    return len(text)


# Where the main clause of a lede usually ends.
_CLAUSE_BREAK = re.compile(
    r"\s+[–—]\s+|;\s+|:\s+|,\s+(?=(?:after|as|amid|with|while|which|who|when|where|saying|according|"
    r"despite|following|before|but|although|though|because|since|in a|in an|in the|including|"
    r"officials|the (?:agency|company|ministry|government)\b)\b"
    # attribution: ", aides said", ", the Treasury said"
    r"|(?:the\s+)?[\w’'-]+(?:\s+[\w’'-]+)?\s+(?:said|says|told|reported|announced)\b)"
)
# "United States President Donald Trump" -> "Donald Trump": headlines drop titles.
_ROLE_BEFORE_NAME = re.compile(
    r"\b(?:(?:[A-Z][\w.’'-]*|the)\s+){0,2}(?:President|Prime Minister|Chancellor|Foreign Minister|"
    r"Defen[cs]e Minister|Minister|Secretary of State|Secretary|Senator|Governor|Mayor|"
    r"Chief Executive|CEO|King|Queen|Pope)\s+(?=[A-Z][\w’'-]+\s+[A-Z])"
)
_TRAILING_WEAK = frozenset(
    "a an the and or but of to for in on at by with from as is are was were be been being has have had "
    "that which who whom whose this these those its their his her our your my into over after before "
    "than then so if while will would can could may might should must do does did not".split()
)


def headline_from_text(text: str) -> str:
    """A headline-length title for an article that has none: the main clause of its
    first sentence, shortened to at most ``HEADLINE_MAX_WORDS`` words ("…" when cut).

    Never the whole lede: a 40-word first sentence shown as a title reads as text.
    """
    first = next((p.strip() for p in text.strip().split("\n") if p.strip()), "")
    if not first:
        return ""
    m = WIRE_DATELINE.match(first)
    if m:
        first = first[m.end():].strip()
    sentence = first[: _first_sentence_end(first)]
    sentence = re.sub(r"\[\d{1,3}\]|\s*\([^()]{0,80}\)", "", sentence)
    clause = _CLAUSE_BREAK.split(sentence, maxsplit=1)[0]
    if len(clause.split()) >= 4:
        sentence = clause
    sentence = _ROLE_BEFORE_NAME.sub("", sentence)
    sentence = " ".join(sentence.split()).strip(" ,;:–—-")
    words = sentence.split()
    cut = False
    while len(words) > HEADLINE_MAX_WORDS or len(" ".join(words)) > HEADLINE_MAX_CHARS:
        words.pop()
        cut = True
    if cut:
        # Cut mid-phrase ("after a long"): end before the phrase instead.
        tail = [i for i in range(max(5, len(words) - 3), len(words)) if words[i].lower().strip(",;:") in _TRAILING_WEAK]
        if tail and not words[tail[-1] - 1].endswith(","):
            words = words[: tail[-1]]
        while len(words) > 3 and words[-1].lower().strip(",;:") in _TRAILING_WEAK:
            words.pop()
    title = " ".join(words).rstrip(",;:–—-")
    if title and title[0].islower():
        title = title[0].upper() + title[1:]
    return title + ("…" if cut else "")


# Name particles written in lower case ("Ludwig van Beethoven", "Ana de Armas").
_PARTICLES = frozenset("van von de da del della der den di du dos das la le bin bint al el ibn y zu".split())


def plausible_author(value: str | None) -> str | None:
    """``value`` when every name in it looks like a person's or a desk's name, else None.

    Author boxes get scraped as "the author" ("Lars Holm has covered energy; Climate"):
    a name has 1-5 words, each capitalised (or a particle), with no digits or verbs.
    """
    if not value:
        return None
    text = re.sub(r"^\s*(?:by|written by|words by)\s+", "", " ".join(str(value).split()), flags=re.I)
    parts = [p.strip() for p in re.split(r"\s*(?:;|,|\||&|\band\b)\s*", text) if p.strip()]
    if not parts or len(parts) > 8:
        return None
    for part in parts:
        words = part.split()
        if not 1 <= len(words) <= 5 or re.search(r"\d|@|https?:|[.!?]$", part):
            return None
        if any(not (w[0].isupper() or w.lower() in _PARTICLES) for w in words):
            return None
    return ", ".join(parts)


def page_metadata(html: str, base_url: str | None) -> dict[str, str | None]:
    """What trafilatura does not give reliably: the canonical URL (absolute, resolved
    against the page's URL) and author candidates from meta tags, JSON-LD and bylines."""
    import lxml.html

    out: dict = {"canonical_url": None, "author": None, "head_lines": []}
    try:
        tree = lxml.html.fromstring(html)
    except (ValueError, lxml.etree.ParserError) as exc:
        log.debug("page metadata not parsed: %s", exc)
        return out
    for href in tree.xpath('//link[@rel="canonical"]/@href') + tree.xpath('//meta[@property="og:url"]/@content'):
        href = href.strip()
        if href:
            full = urljoin(base_url, href) if base_url else href
            if urlsplit(full).scheme in ("http", "https"):
                out["canonical_url"] = full
                break
    candidates: list[str] = []
    candidates += tree.xpath('//meta[@name="author"]/@content') + tree.xpath('//meta[@property="article:author"]/@content')
    for script in tree.xpath('//script[@type="application/ld+json"]/text()'):
        candidates += _jsonld_authors(script)
    candidates += [" ".join(e.text_content().split()) for e in tree.xpath('//*[@rel="author"]')]
    candidates += [" ".join(e.text_content().split()) for e in tree.xpath(
        '//*[contains(concat(" ", normalize-space(@class), " "), " byline ")]')]
    for c in candidates:
        if name := plausible_author(c):
            out["author"] = name
            break
    out["head_lines"] = _visible_lines(tree)
    return out


_BLOCKS = {"p", "div", "span", "time", "li", "h1", "h2", "h3", "h4", "header", "address", "small", "em", "strong", "a"}


def _visible_lines(tree, limit: int = 60) -> list[str]:
    """Short visible text lines from the top of the page, in order: where bylines and
    "Published ..." lines sit when the page has no date metadata."""
    lines: list[str] = []
    body = tree.find("body") if tree.tag != "body" else tree
    for el in (body if body is not None else tree).iter():
        if not isinstance(el.tag, str) or el.tag in ("script", "style", "noscript"):
            continue
        if el.tag in _BLOCKS and el.text and el.text.strip():
            own = " ".join(" ".join(el.itertext()).split()) if el.tag in ("p", "time", "address") else " ".join(el.text.split())
            if own and len(own) <= 250 and (not lines or lines[-1] != own):
                lines.append(own)
        if len(lines) >= limit:
            break
    return lines


def _jsonld_authors(script: str) -> list[str]:
    try:
        data = json.loads(script)
    except (ValueError, RecursionError):
        return []
    found: list[str] = []

    def walk(node, depth: int = 0) -> None:
        if depth > 6:
            return
        if isinstance(node, list):
            for x in node:
                walk(x, depth + 1)
        elif isinstance(node, dict):
            author = node.get("author")
            for a in author if isinstance(author, list) else [author]:
                if isinstance(a, dict) and isinstance(a.get("name"), str):
                    found.append(a["name"])
                elif isinstance(a, str):
                    found.append(a)
            if "@graph" in node:
                walk(node["@graph"], depth + 1)

    walk(data)
    return found
