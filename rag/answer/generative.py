"""Answers written by a language model, checked and cited to verbatim sentences.

The model sees the numbered passages (see :mod:`.prompt`); its reply streams as it
is written. Afterwards, markers that point at no passage are removed, the rest are
renumbered 1..m in order of first appearance (one citation per passage), and each
citation quotes the sentence of its passage that best matches the claims that
cite it. A reply left with no valid citation (and not an abstention) is flagged.
"""

from __future__ import annotations

import logging
from typing import Iterator

from langchain_core.language_models.chat_models import BaseChatModel

from ..llm.models import stream_text
from ..retrieve.features import SentenceFeatures
from ..text.headers import article_header
from ..text.terms import sentence_terms
from ..types import Citation, SearchHit, Turn
from .abstain import ABSTAIN_TEXT, is_abstention
from .citations import cited_numbers, renumber, sentences_citing, validate
from .prompt import build_messages

log = logging.getLogger(__name__)


def generate(
    model: BaseChatModel, features: SentenceFeatures, question: str, history: list[Turn], context: list[SearchHit]
) -> Iterator[str | tuple[str, list[Citation], bool, bool]]:
    """Yield the reply's text chunks, then one tuple ``(text, citations, abstained, flagged)``."""
    passages = [(i, article_header(h.article), h.passage.text) for i, h in enumerate(context, 1)]
    messages = build_messages(question, passages, [(t.question, t.answer) for t in history])
    raw: list[str] = []
    for chunk in stream_text(model, messages):
        raw.append(chunk)
        yield chunk
    cleaned, used, flagged = check_reply("".join(raw).strip(), len(context))
    if not cleaned or is_abstention(cleaned):
        yield (cleaned or ABSTAIN_TEXT), [], True, False
        return
    order = [n for n in cited_numbers(cleaned, standalone=False) if n in used]
    new_n = {old: i for i, old in enumerate(order, 1)}
    text = renumber(cleaned, new_n)
    citations = [cite_passage(features, context[old - 1], new, sentences_citing(cleaned, old)) for old, new in new_n.items()]
    yield text, citations, False, flagged


def check_reply(text: str, n_passages: int) -> tuple[str, list[int], bool]:
    """``(cleaned_text, valid_numbers, flagged)``: markers that point at no passage
    removed; ``flagged`` when the reply is not an abstention yet cites no passage, so
    it must not be shown as a grounded answer."""
    cleaned, used = validate(text, n_passages)
    flagged = not used and not is_abstention(cleaned)
    if flagged:
        log.info("answer has no valid citation and is not an abstention")
    return cleaned, used, flagged


def cite_passage(features: SentenceFeatures, hit: SearchHit, n: int, claim: str) -> Citation:
    """Cite the sentence of the passage that best matches the claim (verbatim span)."""
    units = list(features.store.passage_units(hit.passage.passage_id))
    # The same terms unit_terms() holds, so hyphenated compounds can match too.
    claim_terms = set(sentence_terms(claim))
    best = max(units, key=lambda u: len(claim_terms & features.unit_terms(u)), default=None)
    a = hit.article
    if best is None:
        start, end, quote = hit.passage.start, hit.passage.end, hit.passage.text
    else:
        rec = features.store.units[best]
        start, end, quote = int(rec["start"]), int(rec["end"]), features.unit_text(best)
    return Citation(n, a.article_id, a.title, a.source, a.url, a.published_at, quote, start, end,
                    hit.passage.passage_id, hit.passage.start, hit.passage.end, list(hit.also_published_by),
                    a.date_source)
