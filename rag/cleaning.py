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
   readers," runs on while what follows is appeal-like; a trailing run of
   non-sentences is footer; short labels before the headline are header nav;
4. **repetition**: short labels that occur more than once in one page are chrome.

Rules that could hit real prose (short labels, dates, "Source: X") only fire in
the header/footer zones; inside the body only high-precision patterns apply, so
body headings and short sentences survive.

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
_TERMINAL_RE = re.compile(r"[.!?…:][\"'”’»)\]]*$")
_URL_RE = re.compile(r"https?://\S+|\bwww\.[\w-]+(?:\.[\w-]+)+|\b[\w-]+\.(?:com|org|net|co\.uk|io)\b", re.I)
_QUOTE_RE = re.compile(r"[“”\"]")

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
    stop_ratio: float  # share of function words
    cap_ratio: float  # share of words starting with a capital
    url_ratio: float  # share of tokens that are URLs/domains
    cta: int  # call-to-action score, see _cta_score

    @property
    def sentence_like(self) -> bool:
        """Prose rather than a label: a punctuated sentence, or a long run of prose."""
        if self.terminal and self.n_words >= 4:
            return True
        return self.n_words >= 15 and self.stop_ratio >= 0.2

    @property
    def label_like(self) -> bool:
        """A short unpunctuated label (nav item, section name, widget title)."""
        return not self.terminal and self.n_words <= 6


# Each signal adds its weight; >= 3 makes a paragraph an appeal/CTA. Single words
# such as "newsletter" or "subscribe" are weak on purpose: news articles discuss
# newsletters and subscriptions; pages *asking* the reader to act combine several.
_CTA_SIGNALS: tuple[tuple[re.Pattern[str], int], ...] = tuple(
    (re.compile(p, re.I), w)
    for p, w in (
        # Imperative opener addressed to the reader.
        (r"^(?:sign up|subscribe|register|donate|follow|support|join|click|tap|download|"
         r"read more|share|sign in|log in|get (?:our|the latest|unlimited))\b", 2),
        (r"\b(?:sign up|subscribe|register|click|tap|read more|learn more|find out more|"
         r"donate)\s+(?:here|now|today|below)\b", 2),
        (r"\bclick here\b", 2),
        (r"\bour (?:free )?(?:[\w-]+ ){0,2}(?:newsletters?|podcasts?|app)\b", 2),
        (r"\bnewsletters?\b", 1),
        (r"\b(?:inbox|mailbox)\b", 1),
        (r"\bnever miss\b", 1),
        (r"\b(?:daily|weekly|monthly) (?:updates|digest|briefing|emails?)\b", 1),
        (r"\bsubscri(?:be|bers?|ption)\b", 1),
        (r"\b(?:donat\w*|contribution)\b", 1),
        (r"\bsupport (?:us|our|independent)\b", 1),
        (r"\bprivacy policy\b|\bterms of (?:use|service)\b", 1),
        (r"\b(?:you|your)\b", 1),
    )
)


def _cta_score(text: str) -> int:
    return sum(w for rx, w in _CTA_SIGNALS if rx.search(text))


def _features(text: str) -> _Features:
    words = _WORD_RE.findall(text)
    alpha = [w for w in words if w[0].isalpha()]
    n = len(words)
    tokens = text.split()
    return _Features(
        n_words=n,
        terminal=bool(_TERMINAL_RE.search(text)),
        stop_ratio=sum(w.lower() in _STOPWORDS for w in words) / n if n else 0.0,
        cap_ratio=sum(w[0].isupper() for w in alpha) / len(alpha) if alpha else 0.0,
        url_ratio=len(_URL_RE.findall(text)) / len(tokens) if tokens else 0.0,
        cta=_cta_score(text),
    )


# ------------------------------------------------------------------ boilerplate patterns


def _line_rx(*alternatives: str, flags: int = re.I) -> re.Pattern[str]:
    """A pattern that must match a whole (whitespace-normalised) line."""
    return re.compile(r"^(?:" + "|".join(alternatives) + r")$", flags)


# Obvious page furniture: safe to drop anywhere, even from already-extracted bodies.
_STRICT_LINE = _line_rx(
    r"advertisements?",
    r"advertisement\s*[-–:]?\s*(?:the )?(?:article|story) continues below(?: this ad| advertisement)?\.?",
    r"(?:the )?(?:article|story) continues (?:below|after)(?: this)?(?: ad| advertisement)?\.?",
    r"recommended(?: stories| for you| reading| articles| videos)?:?",
    r"list of \d+ items?",
    r"end of list",
    r"(?:skip|jump) to (?:main )?(?:content|navigation|article)",
    r"sign up (?:for|to) (?:our|the) .{0,60}\bnewsletters?\b.{0,40}",
    r"subscribe to (?:our|the) .{0,60}\bnewsletters?\b.{0,40}",
    r"subscribers? agrees? to the privacy policy\.?",
    r"click here to .{0,60}",
)

# Page chrome and end matter: dropped from full pages (clean_text) only.
_NAV_WORDS = frozenset(
    """menu search close home share print email e-mail facebook twitter x whatsapp reddit
    linkedin pinterest telegram flipboard copy link comments comment save bookmark subscribe
    login log sign in out register skip to content back top next previous prev more
    newsletter newsletters account profile settings""".split()
)
_WIRE_CREDITS = ("Reuters", "AFP", "AP", "Getty Images", "EPA", "EPA-EFE", "Shutterstock", "PA", "Bloomberg")

_BOILERPLATE_LINE = _line_rx(
    r"(?:related|more|latest|top) (?:stories|articles|news|coverage|content|reading|videos)\s*:?",
    r"(?:most (?:read|popular|viewed|shared)|trending(?: now)?|editor'?s picks?)\s*:?",
    r"read (?:more|next|also|the full story)\s*[:.…]?",
    # Short exclamatory appeals: "Support The Moscow Times!", "Join us today!".
    r"(?:support|subscribe to|follow|donate to|join)\s+\S.{0,40}!",
    r"(?:share|share this|share this article|share on \w+)\s*:?",
    r"(?:all|some) rights reserved\.?",
    r"(?:©|\(c\)|copyright)\s.{0,80}",
    r"(?:reporting|writing|editing|additional reporting|compiled) by .{2,80}",
    r"(?:" + "|".join(re.escape(c) for c in _WIRE_CREDITS) + r")",
    # Reference lists ("  1. ^ Alaska (www.aljazeera.com)") and their headings.
    r"(?:\d+\.\s*)?\^\s.*",
)
# Bylines: "By admin", "By Jane Doe", "BY JANE DOE and JOHN ROE". Case-sensitive: a
# line like "by the end of" is prose.
_BYLINE = re.compile(
    r"^(?:By|BY|Written by|Words by)\s+(?:admin|staff|editor|editorial team|"
    r"[A-Z][\w.'’-]*(?:\s+(?:and\s+|&\s+)?[A-Z][\w.'’-]*){0,4})(?:\s*[,|]\s*[\w .]{2,40})?$"
)
# First-person journalist bios ("With a wealth of experience ..., I work as a
# freelance writer"). Third-person bios are only trusted in the footer.
_BIO_FIRST_PERSON = re.compile(
    r"^with (?:a wealth of|over|more than|\d+\+? years)\b.{0,60}\bexperience\b"
    r"|\bI (?:work|have worked|currently work) as an? (?:[\w-]+ ){0,3}(?:writer|journalist|editor|reporter)\b",
    re.I,
)
_BIO_THIRD_PERSON = re.compile(
    r"^[A-Z][\w'’-]+(?: [A-Z][\w'’-]+){1,2} is an? (?:[\w-]+ ){0,4}"
    r"(?:writer|journalist|reporter|editor|correspondent|contributor|columnist)\b"
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
    cet cest et pt published updated posted last modified on at""".split()
)
_EDGE_LINE = _line_rx(
    r"welcome to \S.{0,40}",
    r"(?:source|via|credit)\s*:\s*\S.{0,40}",
    r"(?:references|sources|footnotes|notes|related|tags|topics)\s*:?",
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
_SEPARATOR_LINE = re.compile(r"^[|•·›»>\-–—*]+\s*\S")  # "| Politics", "• Market Data"
_BREADCRUMB = re.compile(r"^[^|›»>•]{1,30}(?:\s*[|›»>•]\s*[^|›»>•]{1,30}){2,}$")

# A wire/photo credit glued to the first word of a paragraph by copy-paste
# ("ReutersUkrainian President ..."). Only names that cannot start an English word
# followed by a capitalised word ("AP" would eat "APIs").
_GLUED_CREDIT = re.compile(r"^(Reuters|AFP|Getty Images|EPA-EFE|Shutterstock)(?=[A-Z][a-z])")


def _norm(line: str) -> str:
    """Collapse all whitespace (NBSP included) so patterns see one canonical line."""
    return " ".join(line.split())


def _strict_reason(text: str, f: _Features) -> str | None:
    """Reasons that hold anywhere, including already-extracted bodies."""
    t = _norm(text)
    if _STRICT_LINE.match(t):
        return "boilerplate"
    # Reader-addressed appeals ("Sign up for our free weekly newsletter", "Our weekly
    # newsletter contains ... in your mailbox"). Long paragraphs are prose that just
    # mentions these words.
    if f.cta >= 4 and f.n_words <= 80:
        return "call-to-action"
    return None


def _body_reason(text: str, f: _Features) -> str | None:
    """Reasons precise enough to apply inside the article body of a full page."""
    reason = _strict_reason(text, f)
    if reason:
        return reason
    t = _norm(text)
    if f.cta >= 3 and f.n_words <= 80:
        return "call-to-action"
    if _BOILERPLATE_LINE.match(t) or _BYLINE.match(t):
        return "boilerplate"
    if _BIO_FIRST_PERSON.search(t):
        return "author-bio"
    if f.n_words <= 8 and (words := t.lower().replace("|", " ").split()) and all(
        w.strip(":.") in _NAV_WORDS for w in words
    ):
        return "navigation"
    if f.n_words <= 6 and (_SEPARATOR_LINE.match(t) or _BREADCRUMB.match(t)):
        return "navigation"
    if f.url_ratio >= 0.5 and f.n_words <= 12:
        return "link-list"
    if f.n_words <= 60 and any(rx.search(t) for rx in _CAPTION_RXS):
        return "caption"
    return None


def _edge_reason(text: str, f: _Features) -> str | None:
    """Extra reasons trusted only in the header/footer zones."""
    t = _norm(text)
    if _EDGE_LINE.match(t) or _BIO_THIRD_PERSON.match(t):
        return "edge-boilerplate"
    words = [w.lower().rstrip(".") for w in _WORD_RE.findall(t)]
    if words and f.n_words <= 10 and all(w in _DATE_WORDS or w[0].isdigit() for w in words):
        return "dateline"
    if f.cta >= 2 and f.n_words <= 40:
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
    if len(lines) < 2:
        return False
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
    """Short labels repeated on one page ("Menu", "| Politics") are site chrome: an
    article does not repeat a three-word unpunctuated line."""
    key = [_norm(u.text).strip("|•·-–— ").lower() for u in units]
    counts = Counter(key)
    for u, k, f in zip(units, key, feats):
        if u.reason is None and counts[k] > 1 and f.n_words <= 3 and not f.terminal:
            u.reason = "repeated"


def _mark_donation_blocks(units: list[_Unit], feats: list[_Features]) -> None:
    """A donation appeal opens with "A Message from X:" / "Dear readers," and runs on
    through appeal-like paragraphs (addressing the reader, or pay-option buttons)."""
    i = 0
    while i < len(units):
        if not _DONATION_HEAD.match(_norm(units[i].text)):
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
        if any(re.search(r"\b(?:support|donat|contribut|subscri)", u.text, re.I) for u in block):
            for u in block:
                u.reason = u.reason or "donation-appeal"
        i = j


def _mark_footer(units: list[_Unit], feats: list[_Features]) -> None:
    """Walk back from the end: boilerplate and short non-sentences after the last real
    sentence are footer (site links, "Close", "Welcome to X", author bio...)."""
    for u, f in zip(reversed(units), reversed(feats)):
        if u.reason is not None:
            continue
        reason = _body_reason(u.text, f) or _edge_reason(u.text, f)
        if reason is None and (f.label_like or f.n_words <= 2):
            reason = "footer"
        if reason is None:
            break  # the last sentence of the article
        u.reason = reason


def _headline_like(text: str, f: _Features) -> bool:
    """A headline: 3-30 words on one line, not ending like a sentence (headlines end
    without a full stop) and opening with a capital, digit or quote."""
    if "\n" in text or not 3 <= f.n_words <= 30 or f.url_ratio:
        return False
    if re.search(r"[.,;:]$", text) or not re.match(r"[\w“\"‘']", text) or text[0].islower():
        return False
    # Title Case, or sentence case with the function words of a headline.
    return f.cap_ratio >= 0.5 or f.stop_ratio <= 0.5


def _slug_words(filename: str | None) -> list[str]:
    """Words of a slug-like file name ("trump-and-zelensky-to-meet.txt"); ids and
    hashes are ignored."""
    if not filename:
        return []
    parts = re.split(r"[-_\s.]+", PurePath(filename).stem.lower())
    words = [p for p in parts if p.isalpha()]
    return words if len(words) >= 3 else []


def _find_title(units: list[_Unit], feats: list[_Features], filename: str | None) -> str | None:
    """Detect the headline and mark header chrome before it as removed."""
    slug = _slug_words(filename)
    if slug:
        # A file named after its headline names the title exactly.
        for u in units[:15]:
            words = [w.lower() for w in _WORD_RE.findall(u.text) if w[0].isalpha()]
            if u.reason is None and len(words) >= 3 and words[: len(slug)] == slug[: len(words)]:
                u.reason = "title"
                return u.text
    for u, f in zip(units[:15], feats[:15]):
        if u.reason is not None:
            continue
        if _headline_like(u.text, f):
            u.reason = "title"
            return u.text
        edge = _edge_reason(u.text, f)
        if edge or f.n_words <= 2:
            u.reason = edge or "header"  # section label or kicker above the headline
            continue
        return None  # body starts: this page has no headline line
    return None


def _mark_header(units: list[_Unit], feats: list[_Features]) -> None:
    """Between the headline and the first sentence: datelines and other edge chrome."""
    for u, f in zip(units, feats):
        if u.reason is not None:
            continue
        if f.sentence_like:
            return
        reason = _edge_reason(u.text, f)
        if reason:
            u.reason = reason


def _mark_title_echoes(units: list[_Unit], title: str) -> None:
    """Captions often restate the headline ("<headline>. Source: ... via Wikimedia
    Commons"); an exact repeat of the headline is also dropped."""
    norm_title = _norm(title)
    for u in units:
        if u.reason is not None:
            continue
        t = _norm(u.text)
        if t == norm_title:
            u.reason = "title-repeat"
        elif t.startswith(norm_title) and (
            re.search(r"\b(?:source|photo|image|credit|via|getty|reuters|afp)\b|/", t[len(norm_title):], re.I)
            or len(t.split()) - len(norm_title.split()) <= 15
        ):
            u.reason = "caption"


# ------------------------------------------------------------------------- source

_NAME = r"(?:[Tt]he\s+)?[A-Z][\w&.-]*(?:\s+(?:of\s+)?[A-Z][\w&.-]*){0,4}"
# (pattern, weight): self-descriptions of the page are strong; credits and "told X"
# mentions are weak and must add up, because articles quote other outlets too.
_SOURCE_STRONG: tuple[re.Pattern[str], ...] = (
    re.compile(rf"^Support\s+({_NAME})\s*!?$"),
    re.compile(rf"^An?\s+(?:[Mm]essage|[Nn]ote|[Ll]etter)\s+from\s+({_NAME})\s*:$"),
    re.compile(rf"^Welcome\s+to\s+({_NAME})\s*[.!]?$"),
    re.compile(rf"^(?:Source|SOURCE|Via)\s*:\s*({_NAME})\s*$"),
    re.compile(rf"(?:©|\([Cc]\)|Copyright)\s*(?:\d{{4}}\s*)?({_NAME})"),
)
_SOURCE_TOLD = re.compile(
    rf"\b(?:told|statement to|speaking to|spoke to|interview with|said to)\s+({_NAME})"
)
_SOURCE_PAREN_CREDIT = re.compile(rf"^\(({_NAME})\)$")
_DOMAIN = re.compile(r"\b(?:www\.)?([a-z0-9-]+)\.(?:com|co\.uk|org|net|news|ru|eu|gr)\b", re.I)


def _clean_name(name: str) -> str:
    name = name.strip().rstrip(".-")
    # "told the BBC" names "BBC"; a capitalised "The" mid-sentence is part of the name.
    return name[4:] if name.startswith("the ") else name


def _detect_source(texts: list[str]) -> str | None:
    scores: defaultdict[str, float] = defaultdict(float)
    display: dict[str, str] = {}

    def vote(name: str, weight: float) -> None:
        name = _clean_name(name)
        if len(name) < 2:
            return
        key = name.lower().removeprefix("the ")
        scores[key] += weight
        display.setdefault(key, name)

    for raw in texts:
        t = _norm(raw)
        for rx in _SOURCE_STRONG:
            for m in rx.finditer(t):
                vote(m.group(1), 3.0)
        # Reference markers ("told[5] Fox News") would hide the name.
        for m in _SOURCE_TOLD.finditer(re.sub(r"\[\d+\]", "", t)):
            has_article = m.group(1)[:4].lower() == "the "
            # "told the BBC" is an outlet; "told Trump" is usually a person.
            vote(m.group(1), 1.0 if has_article else 0.6)
        if m := _SOURCE_PAREN_CREDIT.match(t):
            vote(m.group(1), 0.5)
        if m := _GLUED_CREDIT.match(t):
            # A photo/wire credit names who supplied the picture, not who published the page.
            vote(m.group(1), 0.4)
    # Links to the site's own domain ("www.aljazeera.com") back a name already voted for.
    squashed = {re.sub(r"\W", "", k): k for k in scores}
    for raw in texts:
        for m in _DOMAIN.finditer(raw):
            key = squashed.get(m.group(1).lower().replace("-", ""))
            if key:
                scores[key] += 0.5
    if not scores:
        return None
    best = max(scores, key=lambda k: scores[k])
    return display[best] if scores[best] >= 1.0 else None


# --------------------------------------------------------------------------- API


def clean_text(raw: str, *, filename: str | None = None) -> CleanedText:
    """Separate the article in a page saved as plain text from the site around it.

    ``title`` is the page's own headline line, or ``None`` when the page has none
    (the caller then falls back to a JSON title, the first sentence or the file
    name: guessing one here would make a made-up title look detected).
    ``filename`` helps only when it is a slug of the headline.
    """
    units = _split_units(_normalise(raw))
    if not units:
        return CleanedText(text="", title=None, source=None, removed=[])
    feats = [_features(u.text) for u in units]
    source = _detect_source([u.text for u in units])

    _mark_repeated(units, feats)
    for u, f in zip(units, feats):
        if u.reason is None:
            u.reason = _body_reason(u.text, f)
    _mark_donation_blocks(units, feats)
    _mark_footer(units, feats)
    title = _find_title(units, feats, filename)
    _mark_header(units, feats)
    if title:
        _mark_title_echoes(units, title)

    kept: list[str] = []
    removed: list[str] = []
    for u in units:
        if u.reason is None:
            # Strip a glued wire credit but keep the sentence it was stuck to.
            kept.append(_GLUED_CREDIT.sub("", u.text))
        elif u.reason != "title":
            removed.append(u.text)
            log.debug("dropped (%s): %.80r", u.reason, u.text)
    if not kept:
        log.warning("cleaning left no article text%s", f" in {filename}" if filename else "")
    return CleanedText(text="\n\n".join(kept), title=title, source=source, removed=removed)


def clean_body(body: str) -> str:
    """Conservative cleaning for an already-extracted article body.

    Normalises line endings and drops only lines that are unmistakably page
    furniture ("Advertisement", "Recommended Stories", "list of 3 items", newsletter
    sign-up lines); every other line is kept verbatim.
    """
    out: list[str] = []
    for line in _normalise(body).split("\n"):
        stripped = line.strip()
        if stripped and _strict_reason(stripped, _features(stripped)):
            log.debug("dropped from body: %.80r", stripped)
            continue
        out.append(line)
    # Dropping a line can leave a stack of blank lines; one paragraph break is enough.
    return re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", "\n".join(out)).strip()
