"""Passages are verbatim spans that fit the model's 256 word pieces with their header."""

from __future__ import annotations

from rag.ingest.readers import load_file
from rag.ingest.chunking import chunk_text, sentence_spans
from rag.ingest.pipeline import chunk_article
from rag.settings import Settings

from .conftest import SEED_FILES


def test_sentence_spans_are_verbatim_and_split_headings():
    text = "Breaking news\nMr. Smith went to Washington on Tuesday. He met the U.S. president at 5 p.m. local time.\n\nWhat happens next?"
    spans = sentence_spans(text)
    pieces = [text[s.start : s.end] for s in spans]
    assert pieces[0] == "Breaking news"
    assert "Mr. Smith went to Washington on Tuesday." in pieces
    assert pieces[-1] == "What happens next?"
    assert all(p == p.strip() and p for p in pieces)


def test_seed_passages_fit_the_model_and_cover_the_article(embedder):
    settings = Settings()
    for path in SEED_FILES.values():
        art = load_file(path, settings).articles[0]
        chunking = chunk_article(art, embedder, settings)
        spans = [(p.start, p.end) for p in chunking.passages]
        assert spans
        # Sentence units tile the passages: each passage is a run of whole units.
        starts = {u.start for u in chunking.units}
        ends = {u.end for u in chunking.units}
        assert all(s in starts and e in ends for s, e in spans)
        from rag.text.headers import index_text

        full = [index_text(art, art.text[s:e]) for s, e in spans]
        # Header + passage + [CLS]/[SEP] within the model's 256 word pieces.
        assert max(n + 2 for n in embedder.count_tokens(full)) <= 256
        # Every sentence of the article is inside some passage.
        for sent in sentence_spans(art.text):
            assert any(s <= sent.start and sent.end <= e for s, e in spans), art.text[sent.start : sent.end]
        # Consecutive passages overlap or touch (no gaps beyond whitespace).
        for (s1, e1), (s2, e2) in zip(spans, spans[1:]):
            assert s2 <= e1 or not art.text[e1:s2].strip()


def test_overlap_shares_trailing_sentences(embedder):
    text = " ".join(f"Sentence number {i} talks about the bridge and the council vote." for i in range(80))
    spans = chunk_text(text, embedder.count_tokens, max_tokens=64, overlap_tokens=20).passages
    assert len(spans) > 3
    assert all(b.start < a.end for a, b in zip(spans, spans[1:]))  # real overlap
    assert max(embedder.count_tokens([text[s.start : s.end] for s in spans])) <= 62


def test_over_long_sentence_is_cut_within_budget(embedder):
    text = "word " * 1000 + "end."
    tok = embedder.tokenizer
    spans = chunk_text(
        text, embedder.count_tokens, max_tokens=128, overlap_tokens=0,
        token_offsets=lambda p: tok(p, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"],
    ).passages
    assert max(embedder.count_tokens([text[s.start : s.end] for s in spans])) <= 126
    assert text[spans[-1].start : spans[-1].end].endswith("end.")
