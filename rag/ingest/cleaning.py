"""Strip site boilerplate from news pages saved as plain text.

Pages copied out of a browser carry navigation ("Menu", "Search"), adverts,
newsletter and donation appeals, photo captions, reference lists and author bios
around the article. Passages are cited verbatim, so cleaning may only *drop* whole
lines/paragraphs (and a glued wire-credit prefix such as ``"ReutersUkrainian"``);
it never rewrites a sentence.

The method is deliberately generic rather than a list of the lines seen in the
seed files. Each paragraph ("unit") is judged by:

1. **features**: length in words, sentence-final punctuation, stopword density,
   share of capitalised words, URLs/domains, call-to-action (CTA) vocabulary;
2. **known boilerplate patterns**: nav words, "Advertisement", "list of N items",
   newsletter/donation/privacy-policy language, bylines, reference lists, photo
   credits, author bios;
3. **block rules**: a donation appeal opened by "A Message from X:" / "Dear
   readers," runs on while what follows is appeal-like; walking back from the end,
   boilerplate and the bare labels next to it are footer; short labels above the
   headline, and bylines/dates/share buttons between it and the first sentence,
   are header;
4. **repetition**: short labels that occur more than once on a page, starting in
   its header ("Menu", "| Politics"), are chrome.

Rules that could hit real prose (short labels, dates, "Source: X") only fire in
the header/footer zones; inside the body only high-precision patterns apply, so
body headings, lists and short sentences survive.

The headline is the first headline-shaped line at the top (3-22 words, no full
stop, not a button); pages that open straight with body text get ``title=None``
and the caller picks a fallback. The source is voted from how the page names
itself ("Support X!", "A Message from X:", "Welcome to X", "Source: X",
"© X", "WASHINGTON (AP) —") and, more weakly, from "told X"/"statement to the X",
backed by the site's own domain in links; a glued wire credit is the last resort.

:func:`clean_body` is the conservative variant for bodies that were already
extracted (JSON records, trafilatura output): it only drops lines that match the
strictest patterns.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import PurePath

from .dates import is_dateline

log = logging.getLogger(__name__)

__all__ = ["CleanedText", "clean_body", "clean_text"]


@dataclass(frozen=True)
class CleanedText:
    """The article part of a page plus what was found around it."""

    text: str  # paragraphs joined with "\n\n"; kept sentences are verbatim
    title: str | None  # detected headline; None when the page has none (caller falls back)
    source: str | None  # publication named by the page itself, if any
    removed: list[str] = field(default_factory=list)  # dropped lines/paragraphs, in page order


# --------------------------------------------------------------------------- features

_WORD_RE = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*|\d+(?:[.,:]\d+)*")
# Sentence-final punctuation, possibly followed by closing quotes/brackets. A trailing
# colon counts: "Here's what we know:" introduces body text.
_TERMINAL_RE = re.compile(r"[.!?…:][\"'”’»)\]\s]*$")
_URL_RE = re.compile(r"https?://\S+|\bwww\.[\w-]+(?:\.[\w-]+)+|\b[\w-]+\.(?:com|org|net|co\.uk|io)\b", re.I)

# Function words: prose is full of them, menus and labels are not.
_STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers him his how i if in into is it its
    itself just me more most my no nor not now of off on once only or other our ours out over
    own same she should so some such than that the their them then there these they this
    those through to too under until up very was we were what when where which while who whom
    why will with would you your""".split()
)


@dataclass(frozen=True)
class _Features:
    n_words: int
    terminal: bool  # ends like a sentence
    open_end: bool  # ends with a comma/semicolon: a salutation or a sentence going on
    stop_ratio: float  # share of function words
    cap_ratio: float  # share of words starting with a capital
    url_ratio: float  # share of tokens that are URLs/domains
    cta: int  # call-to-action score, see _CTA_SIGNALS
    cta_furniture: bool  # has a signal only page furniture uses ("sign up here", "your inbox")
    cta_opener: bool  # opens with an imperative addressed to the reader

    @property
    def sentence_like(self) -> bool:
        """Prose rather than a label: a punctuated sentence, or a long run of prose."""
        if self.terminal and self.n_words >= 4:
            return True
        return self.n_words >= 15 and self.stop_ratio >= 0.2

    @property
    def label_like(self) -> bool:
        """A short unpunctuated label (nav item, section name, widget title)."""
        return not self.terminal and not self.open_end and self.n_words <= 6


_CTA_OPENER = re.compile(
    r"^(?:sign up|subscribe|register|donate|follow|support|join|click|tap|download|"
    r"read more|share|sign in|log in|get (?:our|the latest|unlimited))\b",
    re.I,
)
# (pattern, weight, furniture). Weights add up; single words such as "newsletter",
# "subscribe" or "you" are weak on purpose, because articles discuss newsletters and
# how-to guides address the reader. "furniture" marks phrases that prose about a
# subject practically never uses ("subscribe here", "your inbox", "privacy policy").
_CTA_SIGNALS: tuple[tuple[re.Pattern[str], int, bool], ...] = tuple(
    (re.compile(p, re.I), w, furniture)
    for p, w, furniture in (
        (_CTA_OPENER.pattern, 2, False),
        # "subscribe here" points at a link; "subscribe now" also occurs in listings.
        (r"\b(?:sign up|subscribe|register|read more|learn more|find out more|donate)\s+"
         r"(?:here|below)\b", 2, True),
        (r"\bclick here\b", 2, True),
        (r"\bour (?:free )?(?:[\w-]+ ){0,2}newsletters?\b", 2, True),
        (r"\bour (?:free )?(?:[\w-]+ ){0,2}(?:podcasts?|app)\b", 1, False),
        (r"\bnewsletters?\b", 1, True),
        (r"\b(?:inbox|mailbox)\b", 1, True),
        (r"\bnever miss\b", 1, True),
        (r"\b(?:daily|weekly|monthly) (?:updates|digest|briefing|emails?)\b", 1, True),
        (r"\bprivacy policy\b|\bterms of (?:use|service)\b", 1, True),
        (r"\bcreate (?:a |your )?(?:free )?account\b", 2, True),
        (r"\bfollow us\b", 2, True),
        (r"\b(?:fund|support) (?:independent |quality |our )?journalism\b", 2, True),
        (r"\b(?:per|a) month\b", 1, False),
        (r"\bwe use cookies\b|\bcookie (?:policy|settings|preferences)\b|\baccept (?:all )?cookies\b", 2, True),
        (r"\bsubscri(?:be|bers?|ption)\b", 1, False),
        (r"\b(?:donat\w*|contribution)\b", 1, False),
        (r"\bsupport (?:us|our|independent)\b", 1, False),
        (r"\b(?:you|your)\b", 1, False),
    )
)


_MAX_CTA_WORDS = 80


def _features(text: str) -> _Features:
    words = _WORD_RE.findall(text)
    alpha = [w for w in words if w[0].isalpha()]
    n = len(words)
    tokens = text.split()
    # CTA rules ignore long paragraphs (prose that mentions newsletters), so skip the work.
    hits = [(w, f) for rx, w, f in _CTA_SIGNALS if rx.search(text)] if n <= _MAX_CTA_WORDS else []
    return _Features(
        n_words=n,
        terminal=bool(_TERMINAL_RE.search(text)),
        open_end=text.rstrip().endswith((",", ";")),
        stop_ratio=sum(w.lower() in _STOPWORDS for w in words) / n if n else 0.0,
        cap_ratio=sum(w[0].isupper() for w in alpha) / len(alpha) if alpha else 0.0,
        url_ratio=len(_URL_RE.findall(text)) / len(tokens) if tokens else 0.0,
        cta=sum(w for w, _ in hits),
        cta_furniture=any(furniture for _, furniture in hits),
        cta_opener=bool(_CTA_OPENER.search(text)),
    )


# ------------------------------------------------------------------ boilerplate patterns


def _line_rx(*alternatives: str, flags: int = re.I) -> re.Pattern[str]:
    """A pattern that must match a whole (whitespace-normalised) line."""
    return re.compile(r"^(?:" + "|".join(alternatives) + r")$", flags)


# Obvious page furniture: safe to drop anywhere, even from already-extracted bodies.
_STRICT_LINE = _line_rx(
    r"advertisements?",
    r"advertisement\s*[-–:]?\s*(?:the )?(?:article|story) continues below(?: this ad| advertisement)?\.?",
    r"advertisement\s*[-–:]?\s*scroll to continue(?: with content)?\.?",
    r"(?:the )?(?:article|story) continues (?:below|after)(?: this)?(?: ad| advertisement)?\.?",
    r"recommended(?: stories| for you| reading| articles| videos)?:?",
    r"list of \d+ items?",
    r"end of list",
    r"(?:skip|jump) to (?:main )?(?:content|navigation|article)",
    r"sign up (?:for|to) (?:our|the) .{0,60}\bnewsletters?\b.{0,40}",
    r"subscribe to (?:our|the) .{0,60}\bnewsletters?\b.{0,40}",
    r"subscribers? agrees? to the privacy policy\.?",
    r"click here to .{0,60}",
    r"(?:for more|to read more|more on|read more)\b.{0,80}\bclick here\s*[.!]?",
    # Links to other articles: "Read more: <headline>", "READ MORE", "See also: ...".
    r"(?:read more|read also|also read|read next|see also|more on this story)\s*(?:[:.…»>|-]\s*.{0,200})?",
)

# Page chrome and end matter: dropped from full pages (clean_text) only.
# UI words are chrome even alone ("Menu"); network names only in a row of them (a
# share bar), since "LinkedIn" alone may head a paragraph about the company.
_UI_WORDS = frozenset(
    """menu search close home share print email e-mail copy link comments save bookmark
    subscribe login log sign up in out register skip to content back top next previous prev
    more newsletter newsletters account profile settings about contact privacy terms cookies
    careers advertise help faq sitemap rss enlarge expand toggle play pause mute unmute
    fullscreen image photo video gallery copied reuse""".split()
)
_SOCIAL_WORDS = frozenset(
    "facebook twitter x whatsapp reddit linkedin pinterest telegram flipboard instagram tiktok youtube "
    "bluesky threads mailto".split()
)
_WIRE_CREDITS = ("Reuters", "AFP", "AP", "Getty Images", "EPA", "EPA-EFE", "Shutterstock", "PA", "Bloomberg")

_BOILERPLATE_LINE = _line_rx(
    r"(?:related|more|latest|top) (?:stories|articles|news|coverage|content|reading|videos)\s*:?",
    r"(?:most (?:read|popular|viewed|shared)|trending(?: now)?|editor'?s picks?)\s*:?",
    r"read (?:more|next|also|the full story)\s*[:.…]?",
    # "Related: <another headline>", "READ MORE: ...": links to other articles.
    r"(?:related(?: articles?| stories| coverage)?|read more|read also|also read|see also|"
    r"more on this story)\s*:\s*.{1,200}",
    r"(?:listen to (?:this|the) (?:article|story)|\d+\s*min(?:ute)?s?\s+read)\b.{0,40}",
    r"(?:leave a|post a|add a|view|show|\d+) comments?(?:\s*\(\d+\))?",
    r"thanks? (?:you )?for reading\b.{0,80}",
    # Short exclamatory appeals: "Support The Moscow Times!", "Join us today!".
    r"(?:support|subscribe to|follow|donate to|join)\s+\S.{0,40}!",
    r"(?:share|share this|share this article|share on \w+)\s*:?",
    r"(?:all|some) rights reserved\.?",
    r"(?:©|\(c\)|copyright\s+(?:©|\(c\)|\d{4})).{0,250}",
    r".{0,60}\bmay not be (?:published|reproduced|redistributed)\b.{0,150}",
    r"this (?:article|story) is more than .{1,20} old",
    r".{0,40}\bback to (?:home|homepage|top)\b.{0,20}",
    r"(?:explore|see|discover) more(?: on (?:these|this) topics?| stories| articles)?\s*:?",
    r"(?:reporting|writing|editing|additional reporting|compiled) by .{2,80}",
    r"(?:" + "|".join(re.escape(c) for c in _WIRE_CREDITS) + r")",
    # Reference lists ("  1. ^ Alaska (www.aljazeera.com)") and their headings.
    r"(?:\d+\.\s*)?\^\s.*",
)
# Bylines: "By admin", "By Jane Doe", "BY JANE DOE and JOHN ROE". Case-sensitive: a
# line like "by the end of" is prose.
_BY_NAME = r"(?:admin|staff|editor|editorial team|[A-Z][\w.'’-]*(?:\s+[A-Z][\w.'’-]*){0,3})"
_DATE_START = re.compile(
    r"^by\s+(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day|january|february|march|april|may|june|july|"
    r"august|september|october|november|december|(?:jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)\.?)\b",
    re.I,
)
_BYLINE = re.compile(
    rf"^(?:By|BY|Written by|Words by)\s+{_BY_NAME}(?:(?:\s*,\s*|\s+and\s+|\s*&\s*){_BY_NAME}){{0,5}}"
    r"(?:\s*[,|]\s*[\w .]{2,40})?$"
)
# First-person journalist bios ("With a wealth of experience ..., I work as a
# freelance writer"). Third-person bios are only trusted in the footer.
_BIO_FIRST_PERSON = re.compile(
    r"^with (?:a wealth of|over|more than|\d+\+? years)\b.{0,60}\bexperience\b"
    r"|\bI (?:work|have worked|currently work) as an? (?:[\w-]+ ){0,3}(?:writer|journalist|editor|reporter)\b",
    re.I,
)
_BIO_THIRD_PERSON = re.compile(
    r"^[A-Z][\w'’-]+(?: [A-Z][\w'’-]+){0,2} (?:is an? (?:[\w-]+ ){0,4}"
    r"(?:writer|journalist|reporter|editor|correspondent|contributor|columnist)\b"
    r"|(?:has|have) (?:covered|reported on|written about|been (?:covering|reporting|writing))\b"
    r"|(?:covers|writes about|reports on) [\w ,&;-]{2,80}(?:for|at) (?:the )?[A-Z])"
)

# Photo captions and credits.
_CREDIT_WORDS = (
    r"via Getty Images|Getty Images|Shutterstock|AP Photo(?:/[\w .'-]+)?|Wikimedia Commons|"
    r"Public domain|CC BY(?:-SA)?(?: \d\.\d)?|(?:Photograph|Photo|Image|Picture|Credit)s?: [^.]{1,60}"
)
_CAPTION_RXS: tuple[re.Pattern[str], ...] = (
    # "... in the White House. Daniel Torok / The White House": sentence + "Name / Org".
    re.compile(
        r"(?:^|[.!?)]\s+)[A-Z][\w'’.-]+(?:\s+[A-Z][\w'’.-]+){0,3}\s*/\s*"
        r"[A-Z][\w'’&.-]*(?:\s+[A-Z][\w'’&.-]*){0,4}$"
    ),
    # Line ending in a credit such as "(Barratts/PA Images via Getty Images)".
    re.compile(r"(?:" + _CREDIT_WORDS + r")\)?$"),
    # Infographic labels: "INTERACTIVE - What are Tomahawk missiles - ...".
    re.compile(r"^(?:INTERACTIVE|INFOGRAPHIC|GRAPHIC|MAP|VIDEO|PHOTOS?|GALLERY|WATCH|LISTEN)\s*[-–:|]\s"),
    # Image file names with a unix-timestamp suffix ("...2025-1759225571").
    re.compile(r"-\d{9,11}$"),
    # A bare parenthesised credit: "(Al Jazeera)", "(Getty Images)".
    re.compile(r"^\((?:[A-Z][\w.'’&/-]*\s?){1,4}\)$"),
)

# Edge-only patterns: plausible as body headings, so only trusted before the first
# sentence of the article or after its last one.
_DATE_WORDS = frozenset(
    """jan january feb february mar march apr april may jun june jul july aug august sep sept
    september oct october nov november dec december mon monday tue tues tuesday wed wednesday
    thu thurs thursday fri friday sat saturday sun sunday am pm a.m p.m gmt utc bst est edt
    cet cest et pt pdt cst cdt mst ist aest published updated posted last modified on at st nd
    rd th ago hour hours minute minutes min mins day days week weeks""".split()
)
_EDGE_LINE = _line_rx(
    r"welcome to \S.{0,40}",
    r"(?:source|via|credit)\s*:\s*\S.{0,40}",
    r"(?:references|sources|footnotes|notes|related|tags|topics)\s*:?",
    r"(?:tags?|topics|filed under|categories)\s*:\s*.{1,200}",
    r"part of\s*/\s*.{1,60}",  # series label above a headline
)
_DONATION_HEAD = _line_rx(
    r"an? (?:message|note|word|letter) from (?:the )?\S.{0,60}:",
    r"dear (?:readers?|friends|subscribers?|supporters?)\s*[,:!]?",
)
_APPEAL_VOCAB = re.compile(
    r"\b(?:we|our|us|you|your|support\w*|donat\w*|contribut\w*|subscri\w*|pay\w*|paiment\w*|"
    r"monthly|annual|remind)\b",
    re.I,
)
_DONATION_ASK = re.compile(r"\b(?:donat\w*|contribut\w*|support (?:us|our|independent)|subscri\w*)\b", re.I)
_SEPARATOR_LINE = re.compile(r"^[|•·›»>\-–—]+\s*\S")  # "| Politics", "• Market Data"
_BREADCRUMB = re.compile(r"^[^|›»>•]{1,30}(?:\s*[|›»>•]\s*[^|›»>•]{1,30}){2,}$")

# A wire/photo credit glued to the first word of a paragraph by copy-paste
# ("ReutersUkrainian President ..."). Only names that cannot start an English word
# followed by a capitalised word ("AP" would eat "APIs").
_GLUED_CREDIT = re.compile(r"^(Reuters|AFP|Getty Images|EPA-EFE|Shutterstock)(?=[A-Z][a-z])")


# Unrendered widget templates ("{{ #verifyErrors }} {{ message }}") are never prose.
_TEMPLATE_TAG = re.compile(r"\{\{[^{}]{0,60}\}\}")


def _norm(line: str) -> str:
    """Collapse all whitespace (NBSP included) so patterns see one canonical line."""
    return " ".join(line.split())


def _strict_reason(text: str, f: _Features | None = None) -> str | None:
    """Reasons that hold anywhere, including already-extracted bodies. ``f`` is
    computed here when not given, and only for short lines that open like an appeal."""
    t = _norm(text)
    if _STRICT_LINE.match(t) or len(_TEMPLATE_TAG.findall(t)) >= 2:
        return "furniture"
    if f is None:
        if len(t.split()) > 50 or not _CTA_OPENER.search(t):
            return None
        f = _features(t)
    # A short paragraph that opens by telling the reader to act and uses furniture
    # phrasing: "Sign up to X's newsletter sent straight to your inbox".
    if f.cta >= 4 and f.cta_opener and f.cta_furniture and f.n_words <= 50:
        return "call-to-action"
    return None


def _nav_row(t: str) -> bool:
    """A row of UI words ("Menu", "Previous Next") or of social networks (share bar)."""
    words = [w.strip(":.") for w in t.lower().replace("|", " ").split()]
    if not words or len(words) > 8:
        return False
    if all(w in _UI_WORDS for w in words):
        return True
    return len(words) >= 2 and all(w in _UI_WORDS or w in _SOCIAL_WORDS for w in words)


def _body_reason(text: str, f: _Features) -> str | None:
    """Reasons precise enough to apply inside the article body of a full page."""
    reason = _strict_reason(text, f)
    if reason:
        return reason
    t = _norm(text)
    # Reader-addressed appeals ("Our weekly newsletter contains ... in your mailbox").
    # Long paragraphs are prose that merely mentions these words.
    if f.cta >= 3 and f.cta_furniture:
        return "call-to-action"
    # A byline has no full stop; "By Friday, officials had left." is a sentence.
    if _BOILERPLATE_LINE.match(t) or (_BYLINE.match(t) and not f.terminal and not _DATE_START.match(t)):
        return "boilerplate"
    if _BIO_FIRST_PERSON.search(t):
        return "author-bio"
    # "Sleepers | Busts | Projections": a row of links. Rows with numbers are tables.
    if _nav_row(t) or (f.n_words <= 8 and _BREADCRUMB.match(t) and "|" in t and not re.search(r"\d", t)):
        return "navigation"
    if f.url_ratio >= 0.5 and f.n_words <= 12:
        return "link-list"
    # Captions are a sentence or two; a long paragraph ending in a credit is body text
    # with a caption glued on, and body text must not be lost.
    if f.n_words <= 50 and any(rx.search(t) for rx in _CAPTION_RXS):
        return "caption"
    return None


def _edge_reason(text: str, f: _Features) -> str | None:
    """Extra reasons trusted only in the header/footer zones."""
    t = _norm(text)
    if _EDGE_LINE.match(t) or _BIO_THIRD_PERSON.match(t):
        return "edge-boilerplate"
    if is_dateline(t):
        return "dateline"  # "Reef Daily Wire — 3 March 2025", "Published: 17 Oct 2025"
    if f.n_words <= 6 and (_SEPARATOR_LINE.match(t) or _BREADCRUMB.match(t)):
        return "navigation"
    words = [w.lower().rstrip(".") for w in _WORD_RE.findall(t)]
    if words and f.n_words <= 10 and all(w in _DATE_WORDS or w[0].isdigit() for w in words):
        return "dateline"
    # Short appeals ("Subscribe to our podcast here") are footer; a sentence about a
    # newsletter at the end of an article needs the body rule's stronger evidence.
    if f.cta >= 2 and f.cta_furniture and f.n_words <= 8:
        return "call-to-action"
    return None


# ------------------------------------------------------------------------- units


@dataclass
class _Unit:
    text: str  # verbatim, each line stripped
    reason: str | None = None  # why it was dropped; None while kept


def _normalise(raw: str) -> str:
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u2028", "\n").replace("\u2029", "\n\n").replace("\f", "\n")
    return text.lstrip("\ufeff")


def _is_hard_wrapped(lines: list[str]) -> bool:
    """True for a paragraph hard-wrapped at a fixed width (lines fill most of the width
    and mostly end mid-sentence): its lines must stay together."""
    if len(lines) < 3:
        return False  # two lines cannot show a wrapping width
    widest = max(len(x) for x in lines)
    body = lines[:-1]
    unpunctuated = sum(not _TERMINAL_RE.search(x) for x in body)
    # Wrapping widths are screen/editor widths; a 200-character line is a paragraph.
    return 40 <= widest <= 120 and unpunctuated >= 0.6 * len(body) and all(len(x) >= 0.7 * widest for x in body)


def _split_units(text: str) -> list[_Unit]:
    """Blank-line blocks, split further into one unit per line unless a line visibly
    continues the previous one. Pages saved as text often put one paragraph per line
    with no blank line between, and nav items sit on adjacent lines too."""
    units: list[_Unit] = []
    for block in re.split(r"\n[ \t\u00a0]*\n", text):
        lines = [ln.strip() for ln in block.split("\n") if ln.strip()]
        if not lines:
            continue
        if _is_hard_wrapped(lines):
            units.append(_Unit("\n".join(lines)))
            continue
        current: list[str] = []
        for ln in lines:
            # A line that starts in lower case after an unpunctuated or comma-ended line
            # is the rest of the same sentence.
            if current and not _TERMINAL_RE.search(current[-1]) and (ln[0].islower() or current[-1].endswith(",")):
                current.append(ln)
            else:
                if current:
                    units.append(_Unit("\n".join(current)))
                current = [ln]
        units.append(_Unit("\n".join(current)))
    return units


# ---------------------------------------------------------------------- block rules


def _mark_repeated(units: list[_Unit], feats: list[_Features]) -> None:
    """Short labels repeated on one page ("Menu", "| Politics") are site chrome when
    one copy sits in the header (before the first sentence) and none inside the
    article. Repeats inside the body or only in a trailing list are list structure
    ("Pros", "Cons", "Division Series") and stay."""
    prose = [i for i, f in enumerate(feats) if f.sentence_like]
    if not prose:
        return
    first, last = prose[0], prose[-1]
    where: defaultdict[str, list[int]] = defaultdict(list)
    for i, (u, f) in enumerate(zip(units, feats)):
        key = _norm(u.text).strip("|•·-–— ").lower()
        if key and f.n_words <= 3 and not f.terminal:
            where[key].append(i)
    for idx in where.values():
        if len(idx) > 1 and idx[0] < first and all(i < first or i > last for i in idx):
            for i in idx:
                units[i].reason = units[i].reason or "repeated"


def _mark_donation_blocks(units: list[_Unit], feats: list[_Features]) -> None:
    """A donation appeal opens with "A Message from X:" / "Dear readers," and runs on
    through appeal-like paragraphs (addressing the reader, or pay-option buttons)."""
    i = 0
    while i < len(units):
        # First line only: "Dear readers," may share a unit with the appeal's first line.
        if not _DONATION_HEAD.match(_norm(units[i].text.split("\n", 1)[0])):
            i += 1
            continue
        j = i + 1
        while j < len(units) and (
            feats[j].n_words <= 6 or feats[j].cta >= 1 or _APPEAL_VOCAB.search(units[j].text)
        ):
            j += 1
        block = units[i:j]
        # Only an appeal if it actually asks for money/support: "Dear readers," alone
        # could open an editor's letter that is the article.
        if any(_DONATION_ASK.search(u.text) for u in block):
            for u in block:
                u.reason = u.reason or "donation-appeal"
        i = j


# Reasons that mark the start of end matter. Ads and captions do not: they also sit
# between body paragraphs, so a list that ends an article before an ad must survive.
_FOOTER_ANCHORS = frozenset(
    {"boilerplate", "call-to-action", "navigation", "edge-boilerplate", "author-bio",
     "donation-appeal", "repeated", "link-list", "dateline"}
)


def _mark_footer(units: list[_Unit], feats: list[_Features]) -> None:
    """Walk back from the end over the footer: boilerplate, plus bare labels
    ("Market Data") lying within a few units of it. The walk stops at the first real
    sentence, or at labels with no boilerplate near them, which are the end of the
    article (articles often end in a list)."""
    labels_since_anchor: int | None = None  # None: no footer boilerplate seen yet
    for u, f in zip(reversed(units), reversed(feats)):
        if u.reason is None:
            u.reason = _body_reason(u.text, f) or _edge_reason(u.text, f)
            if u.reason is None and f.label_like and labels_since_anchor is not None and labels_since_anchor < 3:
                u.reason = "footer"
                labels_since_anchor += 1
                continue
            if u.reason is None:
                break  # the end of the article
        if u.reason in _FOOTER_ANCHORS:
            labels_since_anchor = 0


def _headline_like(text: str, f: _Features) -> bool:
    """A headline: 3-22 words on one line, not ending like a sentence (headlines carry
    no full stop; a lede that ends in "?" or "!" is body text, and keeping a question
    headline in the body loses nothing) and opening with a capital, digit or quote."""
    if "\n" in text or not 3 <= f.n_words <= 22 or f.url_ratio or f.terminal:
        return False
    if f.cta_opener and f.n_words <= 4:
        return False  # "Support the Guardian", "Subscribe to X": a button, not a headline
    if re.search(r"[,;]$", text) or not re.match(r"[\w“\"‘']", text) or text[0].islower():
        return False
    # Title Case, or sentence case with fewer function words than prose.
    return f.cap_ratio >= 0.5 or f.stop_ratio <= 0.4


def _slug_words(filename: str | None) -> list[str]:
    """Words of a slug-like file name ("trump-and-zelensky-to-meet.txt"); ids and
    hashes are ignored."""
    if not filename:
        return []
    parts = re.split(r"[-_\s.]+", PurePath(filename).stem.lower())
    words = [p for p in parts if p.isalpha()]
    return words if len(words) >= 3 else []


def _find_title(units: list[_Unit], feats: list[_Features], filename: str | None) -> str | None:
    """Detect the headline and mark header chrome before it as removed.

    The headline is the first unit that looks like one, unless a slug-like file name
    names it ("trump-and-zelensky-to-meet.txt"). Above it only chrome may go: edge
    patterns and one- or two-word labels ("World"). A sentence before any headline
    means the page has no headline line.
    """
    slug = _slug_words(filename)
    slug_at: int | None = None
    for i, u in enumerate(units[: 3 * _HEADER_SCAN]):
        words = [w.lower() for w in _WORD_RE.findall(u.text) if w[0].isalpha()]
        if slug and u.reason is None and len(words) >= 3 and words[: len(slug)] == slug[: len(words)]:
            slug_at = i
            break
    considered = 0
    for i, (u, f) in enumerate(zip(units, feats)):
        if u.reason is not None:
            continue  # chrome already found (repeated menus...) does not use up the window
        considered += 1
        if considered > _HEADER_SCAN:
            return None
        if i == slug_at or (slug_at is None and not _edge_reason(u.text, f) and _headline_like(u.text, f)):
            u.reason = "title"
            return u.text
        if edge := _edge_reason(u.text, f):
            u.reason = edge  # dateline, "Source: X", breadcrumb above the headline
        elif _header_label(f):
            u.reason = "header"  # section label or kicker ("World", "U.S.", "Politics")
        elif slug_at is None:
            return None  # body starts: this page has no headline line
    return None


_HEADER_SCAN = 15  # units from the top where a headline may sit


def _header_label(f: _Features) -> bool:
    """A unit too short to be prose ("World", "U.S.", "Pjotr Sauer", "Share"):
    chrome when it sits above the article's first sentence."""
    return f.n_words <= 3 and not f.sentence_like and not f.open_end


def _mark_header(units: list[_Unit], feats: list[_Features], title: str | None) -> None:
    """Between the headline and the first sentence: datelines, author names, share
    buttons and other edge chrome. A standfirst (a longer summary line) stays."""
    if title is None:
        return  # no headline: the page starts with its body
    for u, f in zip(units, feats):
        if u.reason is not None:
            continue
        if f.sentence_like:
            return
        reason = _edge_reason(u.text, f) or ("header" if _header_label(f) else None)
        if reason:
            u.reason = reason


def _mark_title_echoes(units: list[_Unit], title: str) -> None:
    """Drop exact repeats of the headline, and captions that restate it followed by a
    credit ("<headline>. Source: ... via Wikimedia Commons"). A lede that merely
    starts with the headline's words has no credit tail and stays."""
    norm_title = _norm(title)
    for u in units:
        if u.reason is not None:
            continue
        t = _norm(u.text)
        rest = t[len(norm_title):]
        if t == norm_title:
            u.reason = "title-repeat"
        elif t.startswith(norm_title) and re.match(r"\s*[.:|–-]", rest) and _CAPTION_TAIL.search(rest):
            u.reason = "caption"


_CAPTION_TAIL = re.compile(r"\b(?:source|photo\w*|image|credit|via|getty|reuters|afp|ap)\b|\S/\S| / ", re.I)


# ------------------------------------------------------------------------- source

# A publication name: capitalised words, "The" included ("The Moscow Times"), dots
# only inside a word ("Space.com") so a name never runs into the next sentence.
_NAME = r"(?:[Tt]he\s+)?[A-Z][\w&-]*(?:\.[A-Za-z][\w&-]*)*(?:\s+(?:of\s+)?[A-Z][\w&-]*(?:\.[A-Za-z][\w&-]*)*){0,4}"
# How a page names itself: these are strong evidence on their own.
_SOURCE_STRONG: tuple[re.Pattern[str], ...] = (
    re.compile(rf"^Support\s+({_NAME})\s*!?$"),
    re.compile(rf"^An?\s+(?:[Mm]essage|[Nn]ote|[Ll]etter)\s+from\s+({_NAME})\s*:$"),
    re.compile(rf"^Welcome\s+to\s+({_NAME})\s*[.!]?$"),
    re.compile(rf"^(?:Source|SOURCE|Via)\s*:\s*({_NAME})\s*$"),
    re.compile(rf"(?:©|\([Cc]\)|Copyright\s*(?:©|\d{{4}}))\s*(?:Copyright\s+)?(?:of\s+)?(?:\d{{4}}\s*)?({_NAME})"),
)
# "WASHINGTON (AP) —": a wire dateline names the agency that wrote the copy.
_SOURCE_DATELINE = re.compile(r"^[A-Z][A-Z .,'-]{2,40}\((AP|Reuters|AFP|UPI|dpa|Xinhua|PA)\)\s*[—–-]")
# "told Al Jazeera", "in a statement to the BBC": the outlet doing the reporting.
# Weak on its own, because articles quote other outlets and people are "told" too.
_SOURCE_TOLD = re.compile(rf"\b(?:told|statement to|speaking to|spoke to|interview with|said to)\s+({_NAME})")
_OUTLET_WORDS = re.compile(
    r"\b(?:Times|News|Post|Press|Journal|Guardian|Herald|Telegraph|Tribune|Independent|Daily|"
    r"Radio|Magazine|Digital|Sports?|Network|Agency|Monitor|Observer|Gazette|Express|Mirror|"
    r"Standard|Review|Weekly|Science)\b"
)
_SOURCE_PAREN_CREDIT = re.compile(rf"^\(({_NAME})\)$")
_DOMAIN = re.compile(r"\b(?:www\.)?([a-z0-9-]+)\.(?:com|co\.uk|org|net|news|ru|eu|gr)\b", re.I)
_WIRE_AGENCIES = frozenset({"Reuters", "AFP"})  # glued credits that can stand in for a source


def _outlet_like(name: str) -> bool:
    """An acronym ("BBC"), a capitalised "The ..." ("The Moscow Times") or a name with a
    newsroom word ("Fox News Digital", "the Guardian"); a bare name may be a person."""
    bare = re.sub(r"^[Tt]he\s+", "", name)
    return bool(re.fullmatch(r"[A-Z]{2,6}", bare) or name.startswith("The ") or _OUTLET_WORDS.search(bare))


def _detect_source(texts: list[str]) -> str | None:
    """The publication the page names as itself, by weighted votes (see the patterns)."""
    scores: defaultdict[str, float] = defaultdict(float)
    display: dict[str, str] = {}
    glued: Counter[str] = Counter()

    def key_of(name: str) -> str:
        return re.sub(r"^the\s+", "", name.lower())

    def vote(name: str, weight: float) -> None:
        name = re.sub(r"^the\s+", "", name.strip())  # "told the BBC" names "BBC"
        if len(name) >= 2:
            scores[key_of(name)] += weight
            display.setdefault(key_of(name), name)

    for raw in texts:
        t = _norm(raw)
        for rx in _SOURCE_STRONG:
            for m in rx.finditer(t):
                vote(m.group(1), 3.0)
        # Reference markers ("told[5] Fox News") would hide the name.
        if m := _SOURCE_DATELINE.match(t):
            vote(m.group(1), 2.0)
        for m in _SOURCE_TOLD.finditer(re.sub(r"\[\d+\]", "", t)):
            vote(m.group(1), 1.0 if _outlet_like(m.group(1)) else 0.4)
        if m := _GLUED_CREDIT.match(t):
            glued[m.group(1)] += 1
    # Supporting evidence only strengthens names already voted for: a photo credit
    # "(Al Jazeera)" or links to the site's own domain ("www.aljazeera.com").
    squashed = {re.sub(r"\W", "", k): k for k in scores}
    for raw in texts:
        if (m := _SOURCE_PAREN_CREDIT.match(_norm(raw))) and key_of(m.group(1)) in scores:
            scores[key_of(m.group(1))] += 0.5
        for m in _DOMAIN.finditer(raw):
            if key := squashed.get(m.group(1).lower().replace("-", "")):
                scores[key] += 0.5
    if scores:
        best = max(scores, key=lambda k: scores[k])
        if scores[best] >= 1.0:
            return display[best]
    # A wire credit glued to a paragraph ("ReutersAt the end of July") is the last
    # resort: it names who supplied the copy or picture, not necessarily the site.
    wire = [name for name, _ in glued.most_common() if name in _WIRE_AGENCIES]
    return wire[0] if wire else None


# --------------------------------------------------------------------------- API


def _analyse(raw: str, filename: str | None) -> tuple[list[_Unit], str | None, str | None]:
    """Split a page into units and mark each dropped one with its reason."""
    units = _split_units(_normalise(raw))
    if not units:
        return [], None, None
    feats = [_features(u.text) for u in units]
    source = _detect_source([u.text for u in units])

    _mark_repeated(units, feats)
    for u, f in zip(units, feats):
        if u.reason is None:
            u.reason = _body_reason(u.text, f)
    _mark_donation_blocks(units, feats)
    _mark_footer(units, feats)
    title = _find_title(units, feats, filename)
    _mark_header(units, feats, title)
    if title:
        _mark_title_echoes(units, title)
    return units, title, source


_FOOTNOTE_MARK = re.compile(r"(?<=[\w.,;:!?”’\"')])\[\d{1,3}\]")


def clean_text(raw: str, *, filename: str | None = None) -> CleanedText:
    """Separate the article in a page saved as plain text from the site around it.

    ``title`` is the page's own headline line, or ``None`` when the page has none
    (the caller then falls back to a JSON title, the first sentence or the file
    name: guessing one here would make a made-up title look detected).
    ``filename`` helps only when it is a slug of the headline.
    """
    units, title, source = _analyse(raw, filename)
    kept: list[str] = []
    removed: list[str] = []
    for u in units:
        if u.reason is None:
            # Strip a glued wire credit but keep the sentence it was stuck to.
            # Also drop the page's own footnote marks ("Putin[2] on Thursday"):
            # left in, they read like this app's citation markers.
            kept.append(_FOOTNOTE_MARK.sub("", _GLUED_CREDIT.sub("", u.text)))
        elif u.reason != "title":
            removed.append(u.text)
            log.debug("dropped (%s): %.80r", u.reason, u.text)
    if units and not kept:
        log.warning("cleaning left no article text%s", f" in {filename}" if filename else "")
    return CleanedText(text="\n\n".join(kept), title=title, source=source, removed=removed)


def clean_body(body: str) -> str:
    """Conservative cleaning for an already-extracted article body.

    Normalises line endings and drops only lines that are unmistakably page
    furniture ("Advertisement", "Recommended Stories", "list of 3 items", newsletter
    sign-up lines, "Read more: ..." links) and author bios among the last lines
    ("Lars Holm has covered energy for ..."); every other line is kept verbatim.
    """
    out: list[str] = []
    dropped = False
    for line in _normalise(body).split("\n"):
        stripped = line.strip()
        if stripped and _strict_reason(stripped):
            log.debug("dropped from body: %.80r", stripped)
            dropped = True
            continue
        out.append(line)
    # An author bio closes the article; the same words inside it are reporting.
    while out and (not out[-1].strip() or _BIO_THIRD_PERSON.match(_norm(out[-1])) or _BIO_FIRST_PERSON.search(out[-1])):
        if out[-1].strip():
            log.debug("dropped author bio from body: %.80r", out[-1].strip())
            dropped = True
        out.pop()
    text = "\n".join(out)
    if dropped:
        # A dropped line leaves its blank lines behind; one paragraph break is enough.
        text = re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", text)
    return text.strip()
