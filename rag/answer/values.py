"""The values the evidence sentences give for what was asked: the short answer and conflicts.

Each candidate sentence's spans are scored by the span model (:mod:`.spans`);
spans that name the same value (:func:`.spans.same_value`) are grouped across
sentences. A group's strength is its best span's score plus a bonus per further
article that gives the same value: agreement across articles counts for more.
The strongest group is the short answer. Another group counts as a disagreement
only when it is nearly as strong, comes from other articles, is of the asked kind,
and none of its articles also gives the first value (an article listing both is
not in conflict with itself); copies of one statement share their value, so they
agree.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Callable

from .spans import (
    SpanCandidate,
    SpanTagger,
    TaggedSentence,
    expected_kind,
    normalise_value,
    probability,
    question_stems,
    same_value,
    sentence_features,
    span_score,
)

# A span must be at least this likely (span model) to be shown as the short answer.
MIN_SHORT_PROBABILITY = 0.12
# Log-odds added per further article giving the same value.
AGREEMENT_BONUS = 0.6
# Weight of the sentence's own score (question match) in a span's score.
SENTENCE_WEIGHT = 6.0
# A competing value is a conflict only when its span is this likely and this close
# to the first value's score (see conflicts() for the rest).
CONFLICT_PROBABILITY = 0.35
CONFLICT_MARGIN = 1.2  # in combined log-odds
CONFLICT_SIMILARITY = 0.4  # cosine of the two sentences' embeddings
# Typed questions prefer spans of their kind when there are any (see find_values):
# log-odds taken from the others.
TYPE_FILTER = True
TYPE_PENALTY = 1.0


@dataclass
class Sentence:
    """An evidence sentence offered to the value finder (offsets in its article)."""

    key: object  # cache key for tagging (the unit id)
    text: str
    start: int
    article_id: str
    score: float  # the answerer's sentence score
    coverage: float = 1.0  # share of the question's words it holds (with its predecessor)
    unit: int = -1  # its sentence unit in the index (for embedding similarity)


@dataclass
class Value:
    """One value and every sentence giving it."""

    text: str
    kind: str
    score: float  # combined log-odds of its best span, plus agreement
    best: tuple[int, SpanCandidate]  # (sentence index, span)
    members: list[tuple[int, SpanCandidate, float]] = field(default_factory=list)  # (sentence, span, score)

    @property
    def articles(self) -> set[str]:
        """Every article whose sentences give this value."""
        return {self._articles[i] for i, _, _ in self.members}

    _articles: list[str] = field(default_factory=list, repr=False)


def find_values(question: str, sentences: list[Sentence], tagger: SpanTagger, kind: str | None = None) -> list[Value]:
    """Values of the asked kind in ``sentences``, strongest first ([] when the question wants none)."""
    kind = kind or expected_kind(question)
    if kind == "none" or not sentences:
        return []
    tagged: list[TaggedSentence] = tagger.tag_many([(s.key, s.text) for s in sentences])
    qs = question_stems(question)
    top = max(s.score for s in sentences)
    articles = [s.article_id for s in sentences]
    # A question asking for a person, place, date, figure... is answered by a span of
    # that kind when the sentences hold one: a topical noun phrase ("the harbour") is
    # no answer to "which firm". Other spans compete only when none fits.
    typed = TYPE_FILTER and kind not in ("thing", "name")
    feats_of = [sentence_features(tg, kind, qs) for tg in tagged]
    fits = typed and any(f["kind_exact"] or f["kind_partial"] >= 0.5 for fs in feats_of for f in fs)
    # "What is X called?": the sentence that says "... is called Typhoon" names it.
    called = kind == "name" and any(f["after_called"] for fs in feats_of for f in fs)
    values: list[Value] = []
    for i, (s, tg) in enumerate(zip(sentences, tagged)):
        for span, f in zip(tg.spans, feats_of[i]):
            if f["overlap"] >= 0.99:
                continue  # a span made of the question's own words answers nothing
            if called and not f["after_called"]:
                continue
            logit = span_score(f) + SENTENCE_WEIGHT * (s.score - top)
            if fits and not (f["kind_exact"] or f["kind_partial"] >= 0.5):
                logit -= TYPE_PENALTY
            v = next((v for v in values if same_value(v.text, span.text)), None)
            if v is None:
                v = Value(span.text, span.kind, logit, (i, span), _articles=articles)
                values.append(v)
            elif logit > best_logit(v):
                v.best, v.text, v.kind = (i, span), span.text, span.kind
            v.members.append((i, span, logit))
    for v in values:
        best_per_article: dict[str, float] = {}
        for i, _, logit in v.members:
            a = articles[i]
            best_per_article[a] = max(best_per_article.get(a, -1e9), logit)
        # Tried: counting only articles that give the value nearly as strongly as their
        # own strongest value, or as the best article does: on the seed questions both
        # let a value one article stresses beat the one several articles give.
        v.score = max(best_per_article.values()) + AGREEMENT_BONUS * (len(best_per_article) - 1)
    values.sort(key=lambda v: v.score, reverse=True)
    return values


def best_logit(v: Value) -> float:
    return max(m[2] for m in v.members)


def is_sound(v: Value) -> bool:
    return probability(best_logit(v)) >= MIN_SHORT_PROBABILITY


def conflicts(values: list[Value], sentences: list[Sentence], kind: str,
              article_text: Callable[[str], str], similarity: Callable[[int, int], float]) -> list[Value]:
    """The strongest value followed by each value that disagrees with it ([] when the sources agree).

    A rival value must be the best value its article gives, nearly as strong as the
    first, of the same kind, and neither side's articles may mention the other's
    value anywhere (an article that names Budapest is not contradicting Budapest,
    whatever else its sentences name), and the two must say something alike (sentence
    embeddings at least CONFLICT_SIMILARITY apart): a foreign minister named in one
    article and a prime minister in another are not rival answers.
    """
    if len(values) < 2 or kind in ("none", "thing"):
        return []
    first = values[0]
    if not is_sound(first):
        return []
    best_of_article: dict[str, Value] = {}
    for v in values:  # strongest first
        for i, _, _ in v.members:
            best_of_article.setdefault(sentences[i].article_id, v)
    taken = set(first.articles)
    out = [first]
    for v in values[1:6]:
        if v.kind != first.kind and not any(v.kind in g and first.kind in g for g in _SAME_SLOT):
            continue
        if probability(best_logit(v)) < CONFLICT_PROBABILITY or first.score - v.score > CONFLICT_MARGIN:
            continue
        arts = v.articles - taken
        arts = {a for a in arts if best_of_article.get(a) is v}
        if not arts:
            continue  # its articles give the first value too, or prefer another
        if any(mentions(article_text(a), o.text) for a in arts for o in out):
            continue
        if max(similarity(sentences[i].unit, sentences[j].unit) for i, _, _ in v.members
               for o in out for j, _, _ in o.members) < CONFLICT_SIMILARITY:
            continue
        if any(mentions(article_text(a), v.text) for o in out for a in o.articles):
            continue
        out.append(v)
        taken |= v.articles
    return out if len(out) > 1 else []


_FIGURE_GROUP = re.compile(r"\d[\d,.]*(?:\s*(?:–|-|to)\s*\d[\d,.]*)*")


def _figure_groups(text: str) -> list[list[str]]:
    return [re.findall(r"\d+(?:\.\d+)?", m.group(0).replace(",", "")) for m in _FIGURE_GROUP.finditer(text)]


def mentions(text: str, value: str) -> bool:
    """``text`` names ``value``: the same figures as one group ("1,250–2,500 km" does not
    name "2,500 km"), or the value's words in a row."""
    figures = _figure_groups(value)
    if figures:
        return figures[0] in _figure_groups(text)
    words = normalise_value(value).split()
    if not words:
        return False
    pattern = r"(?<!\w)" + r"\s+".join(map(re.escape, words)) + r"(?!\w)"
    return re.search(pattern, normalise_value(text)) is not None


_NUMERIC = {"number", "money", "percent", "distance"}
# Kinds one slot may be filled with in different articles (the tagger confuses them too).
_SAME_SLOT = (_NUMERIC, {"person", "organisation", "name"}, {"place", "organisation"})


_TOKEN = re.compile(r"\S+")
_EDGE_PUNCT = "()[]{},.;:!?\"'“”‘’"
# Two sentences this alike (share of words in common order) are one statement, copied.
COPY_RATIO = 0.8


def _tokens(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group(0)) for m in _TOKEN.finditer(text)]


def changed_part(a: str, b: str) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Where two copies of one statement differ, when they differ in one place only:
    the character ranges in ``a`` and in ``b`` (edge punctuation trimmed); None when
    they are not copies, are the same, or differ in several places."""
    ta, tb = _tokens(a), _tokens(b)
    sm = difflib.SequenceMatcher(None, [t[2] for t in ta], [t[2] for t in tb], autojunk=False)
    if sm.ratio() < COPY_RATIO:
        return None
    changes = [op for op in sm.get_opcodes() if op[0] != "equal"]
    if len(changes) != 1 or changes[0][0] != "replace":
        return None
    _, i1, i2, j1, j2 = changes[0]

    def trimmed(text: str, toks, lo: int, hi: int) -> tuple[int, int]:
        start, end = toks[lo][0], toks[hi - 1][1]
        while start < end and text[start] in _EDGE_PUNCT:
            start += 1
        while end > start and text[end - 1] in _EDGE_PUNCT:
            end -= 1
        return start, end

    ra, rb = trimmed(a, ta, i1, i2), trimmed(b, tb, j1, j2)
    if ra[0] >= ra[1] or rb[0] >= rb[1]:
        return None
    return ra, rb


def copy_conflicts(values: list[Value], sentences: list[Sentence]) -> list[Value]:
    """The value a sentence gives and the values that copies of it give in its place.

    Another article repeating the same sentence with one part changed contradicts it
    on that part, whatever the tagger makes of the changed words ("elementary schools
    (Grundschule)" / "elementary schools (WBND-LD)"). The sentence of the strongest
    value is compared first; when its copy differs elsewhere, in a name or figure,
    that changed part is what the sources disagree on.
    """
    if not values:
        return []
    first = values[0]
    i0, span = first.best
    base = sentences[i0]
    arts = [s.article_id for s in sentences]
    out: list[Value] = []
    seen_articles = {s.article_id for s in sentences if s.text == base.text}
    for j, other in enumerate(sentences):
        if other.article_id in seen_articles or other.text == base.text:
            continue
        diff = changed_part(base.text, other.text)
        if diff is None:
            continue
        (a0, a1), (b0, b1) = diff
        if not out:
            if a1 <= span.start or span.end <= a0:
                # They differ elsewhere: a conflict only if a name or figure changed.
                if not re.search(r"[A-Z0-9]", base.text[a0:a1] + other.text[b0:b1]):
                    continue
                own = SpanCandidate(a0, a1, base.text[a0:a1], first.kind, True, (0, 0))
                head = Value(own.text, first.kind, first.score, (i0, own), _articles=arts)
                head.members = [(i, own, best_logit(first)) for i, _, _ in first.members if sentences[i].text == base.text] \
                    or [(i0, own, best_logit(first))]
                out.append(head)
            else:
                out.append(first)
        elif not (a0 < out[0].best[1].end and out[0].best[1].start < a1):
            continue
        rival = other.text[b0:b1]
        if same_value(rival, out[0].text):
            continue
        cand = SpanCandidate(b0, b1, rival, first.kind, True, (0, 0))
        v = next((v for v in out[1:] if same_value(v.text, rival)), None)
        if v is None:
            v = Value(rival, first.kind, first.score, (j, cand), _articles=arts)
            out.append(v)
        v.members.append((j, cand, best_logit(first)))
        seen_articles.add(other.article_id)
    return out if len(out) > 1 else []
