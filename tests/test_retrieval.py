"""Retrieval over the real seed index: modes, filters, diversity, LangChain boundary."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from rag.errors import RagError
from rag.retrieve.filters import Filters

ROOT_QUESTIONS = Path(__file__).resolve().parent.parent / "eval" / "questions" / "seeds.jsonl"
RANGES = ("1,600-kilometer", "2,500 km", "1,250-2,500km")


def _has_range(text: str) -> bool:
    return any(r in text for r in RANGES)


def test_tomahawk_range_from_two_articles_in_top3(seed_engine):
    hits = seed_engine.search("What is the range of Tomahawk missiles?", k=3).hits
    with_range = {h.article.article_id for h in hits if _has_range(h.passage.text)}
    assert len(with_range) >= 2, [h.passage.text[:80] for h in hits]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_each_mode_finds_the_budapest_summit(seed_engine, mode):
    hits = seed_engine.search("Where will Trump and Putin meet?", k=5, mode=mode).hits
    assert hits and [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert any("Budapest" in h.passage.text for h in hits[:3])
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_hits_are_verbatim_spans_with_metadata(seed_engine):
    for h in seed_engine.search("Typhoon launcher", k=10).hits:
        art = seed_engine.snapshot.article(h.article.article_id)
        assert art.text[h.passage.start : h.passage.end] == h.passage.text
        assert h.article.title


def test_filters_by_source_article_and_date(seed_engine):
    hits = seed_engine.search("Tomahawk", k=10, filters=Filters(sources=frozenset({"skai"}))).hits
    assert hits and {h.article.source for h in hits} == {"Skai"}
    bbc = next(a for a, _ in seed_engine.articles() if "argue for missiles" in a.title)
    hits = seed_engine.search("Tomahawk", k=10, filters=Filters(article_ids=frozenset({bbc.article_id}))).hits
    assert hits and {h.article.article_id for h in hits} == {bbc.article_id}
    # The seeds carry no dates: they are dated by the day they were added (marked as
    # such), which date filters use.
    assert {a.date_source for a, _ in seed_engine.articles()} == {"ingest"}
    assert seed_engine.search("Tomahawk", filters=Filters(date_from=date(2020, 1, 1))).hits
    assert seed_engine.search("Tomahawk", filters=Filters(date_to=date(2020, 1, 1))).hits == []


def test_mmr_returns_k_distinct_passages(seed_engine):
    hits = seed_engine.search("Tomahawk missiles for Ukraine", k=6, mmr=True).hits
    assert len({h.passage.passage_id for h in hits}) == 6


def test_empty_question_and_bad_mode_are_clear_errors(seed_engine):
    with pytest.raises(RagError, match="empty"):
        seed_engine.search("   ")
    with pytest.raises(RagError, match="Unknown retrieval mode"):
        seed_engine.search("x", mode="fuzzy")


def test_question_with_no_known_words_returns_dense_results_only(seed_engine):
    hits = seed_engine.search("zzqx wvvk", k=3, mode="bm25").hits
    assert hits == []
    assert len(seed_engine.search("zzqx wvvk", k=3).hits) == 3


def test_langchain_retriever_returns_documents(seed_engine):
    from langchain_core.documents import Document

    from rag.retrieve.langchain import ArticleRetriever

    docs = ArticleRetriever(engine=seed_engine, k=4).invoke("Who will lead the US delegation?")
    assert len(docs) == 4 and all(isinstance(d, Document) for d in docs)
    assert any("Rubio" in d.page_content for d in docs)
    meta = docs[0].metadata
    assert {"rank", "score", "article_id", "title", "source", "start", "end"} <= set(meta)


def _feed_articles():
    from rag.ingest.readers import article_id_for
    from rag.types import Article

    texts = {
        "Cnbc | World Business News Leader": "Central bank officials held interest rates steady on Wednesday, citing slower inflation.",
        "The Independent - Sports": "The striker scored twice as the club climbed to third in the league table.",
        "The Independent - Travel": "Rail operators added night trains between Vienna and Paris for the winter season.",
        "TechCrunch": "The startup raised 40 million dollars to build interest rate software for small banks.",
    }
    return [Article(article_id_for(src, text), f"{src} story", text, src) for src, text in texts.items()]


def test_a_feed_is_found_by_its_publisher_name(fresh_engine):
    """'Cnbc | World Business News Leader' is what the feed says; questions say 'CNBC'."""
    fresh_engine.ingest_articles(_feed_articles(), show_progress=False)
    r = fresh_engine.retriever.query
    assert r.sources_in("What did CNBC report about interest rates?") == ["cnbc"]
    assert r.sources_named("cnbc") == ("cnbc | world business news leader",)
    # A head shared by two feeds stands for both; a full feed name is found whole.
    assert r.sources_named("the independent") == ("the independent - sports", "the independent - travel")
    assert r.sources_in("Did The Independent - Sports and TechCrunch agree?") == ["the independent - sports", "techcrunch"]
    assert r.sources_in("Nothing named here") == []
    # The named publisher's article leads, although TechCrunch's shares more words.
    hits = fresh_engine.search("What did CNBC say about interest rates for small banks?", k=2).hits
    assert hits[0].article.source == "Cnbc | World Business News Leader"


def test_unit_vectors_decode_exactly(seed_engine):
    import numpy as np

    snap = seed_engine.snapshot
    units = np.array([0, 3, 1, len(snap.units) - 1])
    got = snap.unit_vectors_f32(units)
    assert got.dtype == np.float32
    (seg,) = snap.segments  # one ingest: one segment
    assert np.array_equal(got, np.asarray(seg.unit_vectors[units], dtype=np.float32))
    assert snap.unit_vectors_f32(np.array([], dtype=np.int64)).shape[0] == 0


def test_sentence_term_cache_matches_terms_and_survives_its_bound(seed_engine, monkeypatch):
    import numpy as np

    from rag.retrieve import features
    from rag.retrieve.features import SentenceFeatures

    r = SentenceFeatures(seed_engine.snapshot)
    names = {i: t for t, i in r._term_ids.items()}

    def check(units):
        flat, lengths = r._term_id_runs(units)
        names.update({i: t for t, i in r._term_ids.items()})
        assert lengths.tolist() == [len(r.unit_terms(int(u))) for u in units]
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        for u, a, b in zip(units.tolist(), bounds[:-1], bounds[1:]):
            assert {names[i] for i in flat[a:b].tolist()} == set(r.unit_terms(u))

    n = len(seed_engine.snapshot.units)
    check(np.array([5, 1, 5, 2]))  # repeats and out of order
    check(np.arange(n))
    # Past the bound the cache starts over and still answers correctly.
    monkeypatch.setattr(features, "MAX_CACHED_TERM_IDS", 50)
    check(np.array([n - 1, 0, 7]))
    check(np.array([3, 4]))


def test_a_word_the_index_never_saw_weighs_more_than_any_indexed_word(seed_engine):
    # The abstention model was fitted with unknown words at BM25's IDF for document
    # frequency 0 (bm25s's vocabulary held one such entry); segments keep that weight.
    import math

    from rag.retrieve.features import SentenceFeatures

    snap = seed_engine.snapshot
    f = SentenceFeatures(snap)
    n = len(snap)
    assert f.unknown_idf == pytest.approx(math.log(1 + (n + 0.5) / 0.5), rel=1e-6)
    assert f.unknown_idf > float(snap.term_idf().max())
    terms, idf = f.query_terms("Budapest zxqvbnonce", with_unknown=True)
    assert len(terms) == 2
    assert float(idf[1]) == pytest.approx(f.unknown_idf) and float(idf[0]) < f.unknown_idf
    assert f.query_terms("Budapest zxqvbnonce")[0] == terms[:1]


def test_an_embedding_failure_reaches_the_caller(seed_engine):
    from rag.retrieve.retriever import Retriever

    class Broken:
        def embed_query(self, text):
            raise RagError("model file is damaged")

    r = Retriever(seed_engine.snapshot, Broken(), seed_engine.search_params())
    with pytest.raises(RagError, match="damaged"):
        r.search("Tomahawk range")
    assert r.search("Tomahawk range", seed_engine.search_params(retrieval_mode="bm25")).hits


def test_the_matched_question_leaves_out_publishers_dates_and_framing(fresh_engine):
    """Sources and days are matched by the metadata sub-searches; "the article" matches nothing."""
    fresh_engine.ingest_articles(_feed_articles(), show_progress=False)
    r = fresh_engine.retriever
    q = "What did 'CNBC' report on October 5, 2023 about interest rates, unlike TechCrunch on 2023-10-06?"
    got = r.content_query(q)
    assert got == "What did on about interest rates, unlike on?"
    assert r.content_query("What did Apple announce?") == "What did Apple announce?"
    assert r.content_query("What does Article 5 of the treaty say?") == "What does Article 5 of the treaty say?"
    q2 = "Does the article from TechCrunch, published on October 5, 2023, say that rates rose, as reported by CNBC and Reuters?"
    assert r.content_query(q2) == "Does from, on, say that rates rose, and Reuters?"  # Reuters: no such source here
    # Nothing left but names and framing: the question is matched as asked.
    assert r.content_query("CNBC on October 5, 2023") == "CNBC on October 5, 2023"
    assert r.content_query("the article published by CNBC") == "the article published by CNBC"
    # Without the sub-searches the names are the only place the source is matched;
    # the framing words still go.
    from rag.retrieve.retriever import Retriever

    plain = Retriever(r.store, r.embedder, fresh_engine.search_params(metadata_subqueries=False))
    assert plain.content_query(q) == "What did 'CNBC' on October 5, 2023 about interest rates, unlike TechCrunch on 2023-10-06?"
    hits = fresh_engine.search("What did CNBC say about interest rates for small banks?", k=2).hits
    assert hits[0].article.source == "Cnbc | World Business News Leader"


def test_questions_are_embedded_by_the_fast_backend_with_the_same_results(seed_engine):
    """int8 ONNX for questions against float passage vectors: same top passages on the seed questions."""
    import numpy as np

    from eval.question_sets import load_questions
    from rag.retrieve.retriever import Retriever

    from rag.engine import Engine

    assert seed_engine.query_embedder is seed_engine.embedder  # the default: "same"
    fast = Engine(seed_engine.settings.model_copy(update={"query_embedding_backend": "onnx-int8"}), embedder=seed_engine.embedder)
    q_emb = fast.query_embedder
    assert type(q_emb).__name__ == "OnnxEmbedder" and q_emb.backend == "onnx-int8"
    # Its idle threads sleep between questions instead of spinning against the search.
    opts = q_emb.session.get_session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    questions = [q.question for q in load_questions(ROOT_QUESTIONS)]
    ref = Retriever(seed_engine.snapshot, seed_engine.embedder, seed_engine.search_params(top_k=3))
    same_top = [
        fast.search(q, k=3).hits[0].passage.passage_id == ref.search(q).hits[0].passage.passage_id
        for q in questions
    ]
    assert np.mean(same_top) >= 0.9, np.mean(same_top)
    cos = [float(q_emb.embed_query(q) @ seed_engine.embedder.embed_query(q)) for q in questions[:10]]
    assert min(cos) > 0.95, cos


def test_an_unavailable_query_backend_falls_back_to_the_passage_model(seed_engine, monkeypatch):
    from rag.embed import factory
    from rag.engine import Engine

    real = factory.create_embedder

    def no_onnx(settings, **kw):
        if settings.embedding_backend == "onnx-int8":
            raise RagError("onnxruntime is not installed")
        return real(settings, **kw)

    monkeypatch.setattr(factory, "create_embedder", no_onnx)
    engine = Engine(seed_engine.settings.model_copy(update={"query_embedding_backend": "onnx-int8"}), embedder=seed_engine.embedder)
    assert engine.query_embedder is seed_engine.embedder
    assert engine.search("Tomahawk range").hits


def test_a_long_question_is_split_into_its_clues():
    from rag.retrieve.query import question_clauses

    q = ("Which company, which cut 16% of its workforce in September, is also fighting Apple over "
         "app store fees in court, according to The Verge?")
    assert question_clauses(q) == ["cut 16% of its workforce in September", "is also fighting Apple over app store fees in court"]
    # "and" starting a new predicate ends a clue; an "and" inside one does not.
    assert question_clauses("Who founded the exchange in Hong Kong and was convicted of fraud and conspiracy in New York?") == [
        "founded the exchange in Hong Kong", "was convicted of fraud and conspiracy in New York?"]
    # One clue (or clues too short to stand alone): nothing to split.
    assert question_clauses("What did the central bank decide about interest rates on Wednesday?") == []
    assert question_clauses("Who won, and when?") == []
    # A follow-up's carried keywords are context, not a clue of their own.
    assert question_clauses("Why was that country chosen to host the summit? (Trump Putin meet)") == []


def test_a_sentence_that_answers_one_clue_fully_outranks_one_that_touches_them_all(fresh_engine):
    """Multi-hop questions: each article holds one clue; the whole-question share hides it."""
    import numpy as np

    from rag.ingest.readers import article_id_for
    from rag.retrieve.features import SentenceFeatures
    from rag.types import Article

    texts = {
        "Layoffs": "Epic Games said it would cut 16% of its workforce this week, about 870 people.",
        "Markets": "Shares slid in September after a review of app fees and workforce costs.",
        "Courts": "Apple is fighting in court over the rules of its store.",
    }
    fresh_engine.ingest_articles([Article(article_id_for(t, x), t, x, "Wire") for t, x in texts.items()], show_progress=False)
    r = fresh_engine.retriever
    q = "Which company, which cut 16% of its workforce in September, is also fighting Apple over app store fees in court?"
    units = np.arange(len(r.store.units))
    first = {r.features.unit_text(int(u)).split()[0]: i for i, u in enumerate(units)}
    lexical = {}
    for on in (True, False):
        p = fresh_engine.search_params(clause_coverage=on, answer_type_weight=0.0)
        scores = SentenceFeatures(r.store).score_units(q, np.zeros(r.embedder.dim, np.float32), units, p, np.zeros(len(units), np.float32))
        lexical[on] = (float(scores[first["Epic"]]), float(scores[first["Shares"]]))
    # Against the whole question the scattered sentence holds more of its words ...
    assert lexical[False][1] > lexical[False][0]
    # ... against its own clue the layoff sentence holds most of it.
    assert lexical[True][0] > lexical[True][1]
    assert lexical[True][0] > 0.6
    assert lexical[True][0] > lexical[False][0]
