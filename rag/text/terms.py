"""Words as the index sees them: BM25 tokens and stemmed sentence terms.

A leaf module (as bm25s keeps its tokeniser): ingest tokenizes passages with it,
the store keeps the token ids, and retrieval and the answerer tokenize questions
and sentences the same way, so a word always maps to the same term.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = [
    "FRAMING_TERMS",
    "bm25_query_tokens",
    "bm25_token_lists",
    "bm25_tokenize",
    "sentence_terms",
    "stemmer",
    "stopword_set",
    "stopwords",
]


@lru_cache(maxsize=1)
def stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def stopwords() -> list[str]:
    # NLTK-style English list (includes question words such as "what", "who").
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return list(STOPWORDS_EN_PLUS)


@lru_cache(maxsize=1)
def stopword_set() -> frozenset[str]:
    return frozenset(stopwords())


def bm25_tokenize(texts: list[str]):
    """bm25s ``Tokenized`` ids and vocabulary of ``texts`` (stemmed, stopwords out)."""
    import bm25s

    return bm25s.tokenize(texts, stemmer=stemmer(), stopwords=stopwords(), show_progress=False)


def bm25_query_tokens(query: str) -> list[str]:
    import bm25s

    return bm25s.tokenize(
        [query], stemmer=stemmer(), stopwords=stopwords(), return_ids=False, show_progress=False
    )[0]


_WORDS = re.compile(r"\w+(?:[-‐‑]\w+)*")
_HYPHEN = re.compile(r"[-‐‑]")


def sentence_terms(text: str) -> list[str]:
    """Stemmed content words for sentence-level matching, compounds kept whole.

    "long-range" stays one term so that a question about a missile's "range" is
    not answered by every sentence that mentions long-range missiles.
    """
    stem = stemmer().stemWord
    stop = stopword_set()
    out = []
    for w in _WORDS.findall(text.lower()):
        if not _HYPHEN.search(w):
            if len(w) > 1 and w not in stop:
                out.append(stem(w))
        else:
            out.append("-".join(stem(p) for p in _HYPHEN.split(w) if p))
    return list(dict.fromkeys(out))


# Stemmed words that frame a question rather than name its topic ("What is the name of ...").
FRAMING_TERMS = frozenset({"name", "call", "happen", "say", "said", "accord", "report", "mani", "much"})


def bm25_token_lists(texts: list[str]) -> list[list[str]]:
    """The BM25 tokens of each text, as strings (what :func:`bm25_tokenize` turns into ids)."""
    import bm25s

    if not texts:
        return []
    return bm25s.tokenize(texts, stemmer=stemmer(), stopwords=stopwords(), return_ids=False, show_progress=False)
