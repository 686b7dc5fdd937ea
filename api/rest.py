"""The REST routes under ``/api/v1``: ask, search, articles, health, stats.

Each route calls the engine function the CLI and the browser app call, on a worker
thread; none ranks, answers or parses markers itself.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from fastapi.responses import JSONResponse

from rag.chain import ask, stream
from rag.types import Answer, Article

from .conversation import history
from .models import (
    MAX_QUESTION_CHARS,
    MAX_URLS,
    ArticleList,
    ArticleMeta,
    ArticleOut,
    AskRequest,
    FiltersIn,
    Health,
    IngestOut,
    Removed,
    SearchHitOut,
    SearchOut,
    Stats,
    UrlsIn,
)
from .problems import Problem, empty_question
from .service import Service, filters_for
from .streaming import ask_events, event_stream
from .uploads import ingest_out, ingest_uploads, url_results

PREFIX = "/api/v1"

ERRORS = {400: {"description": "bad input (an empty question, an unknown setting value)"},
           401: {"description": "a key is configured and the request has none, or a wrong one"},
           422: {"description": "a field has the wrong type or is missing"},
           503: {"description": "the index is being built or cannot be read"}}


def router(svc: Service) -> APIRouter:
    r = APIRouter(prefix=PREFIX, responses=ERRORS)
    engine = svc.engine

    @r.post("/ask", response_model=Answer, tags=["answers"],
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "the Answer; with `stream: true`, Server-Sent Events "
                                            "(query, passages, text, sources, done; error on failure)"}})
    async def ask_route(body: AskRequest):
        """Answer a question about the articles, with numbered citations.

        `history` is the conversation so far (the server keeps none), so a follow-up
        such as "When will they meet?" resolves against it.
        """
        question = body.question.strip()
        if not question:
            raise empty_question()
        svc.require_index()
        settings = svc.settings_for(body.settings)
        filters = filters_for(body.filters)
        turns = history(body.history)
        if body.stream:
            events = stream(engine, question, turns, settings, svc.chain, filters)
            return event_stream(ask_events(svc.workers.answer_stream(events)))
        answer = await svc.workers.answer(ask, engine, question, turns, settings, svc.chain, filters)
        return answer.to_dict()

    @r.get("/search", response_model=SearchOut, tags=["search"])
    async def search_route(
        q: Annotated[str, Query(max_length=MAX_QUESTION_CHARS, description="the question or keywords")],
        k: Annotated[int, Query(ge=1, le=100, description="passages to return")] = 10,
        mode: Literal["hybrid", "dense", "bm25"] | None = None,
        mmr: bool = False,
        source: Annotated[list[str] | None, Query(description="only these sources (repeatable)")] = None,
        article: Annotated[list[str] | None, Query(description="only these article ids (repeatable)")] = None,
        since: date | None = None,
        until: date | None = None,
    ):
        """The ranked passages for a question, with their article's metadata."""
        if not q.strip():
            raise empty_question()
        svc.require_index()
        filters = filters_for(FiltersIn(sources=source, article_ids=article, since=since, until=until))
        result = await svc.workers.read(lambda: engine.search(q, k=k, mode=mode, filters=filters, mmr=mmr or None))
        return SearchOut(query=q, hits=[SearchHitOut(**h.to_dict()) for h in result.hits],
                         took_ms=round(result.timings.total_ms, 2))

    @r.get("/articles", response_model=ArticleList, tags=["articles"])
    async def list_articles():
        """Every indexed article's metadata and passage count, in the order they were added."""
        svc.require_index()

        def read():
            return [article_meta(a, n) for a, n in engine.articles()]

        articles = await svc.workers.read(read)
        return ArticleList(count=len(articles), articles=articles)

    @r.post("/articles", response_model=IngestOut, tags=["articles"],
            openapi_extra={"requestBody": {"content": {"application/json": {"schema": UrlsIn.model_json_schema()}}}},
            responses={413: {"description": "a file is over RAG_MAX_FILE_MB, or the request over RAG_MAX_UPLOAD_MB"}})
    async def add_articles(
        request: Request,
        files: Annotated[list[UploadFile] | None, File(description=".txt .md .html .htm .json .jsonl")] = None,
        urls: Annotated[list[str] | None, Form(description="article pages to fetch (http/https), repeatable")] = None,
    ):
        """Add articles: files (multipart, field `files`, repeatable) and/or web pages (multipart or
        form field `urls`, repeatable; or a JSON body `{"urls": [...]}`). One result per file, JSON
        record or URL: added, updated (a new version of an article already indexed from the same
        URL), duplicate, or rejected with the reason.

        Only the bytes sent are read; nothing on the server is named. A file over the
        size limit refuses the whole request (413) before anything is indexed. Pages are
        fetched by the server: http and https only, private and loopback addresses refused
        unless RAG_FETCH_ALLOW_PRIVATE=true.
        """
        if request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json":
            urls = await urls_from_json(request)
        files = [f for f in files or [] if f.filename or f.size]  # an empty file field is no file
        urls = [u.strip() for u in urls or [] if u and u.strip()]
        if not files and not urls:
            raise Problem(422, "Send article files (multipart field `files`) or page addresses "
                               '(field `urls`, or JSON {"urls": [...]}).', code="nothing_to_add")
        if len(urls) > MAX_URLS:
            raise Problem(422, f"{len(urls)} URLs: at most {MAX_URLS} per request.", code="too_many_urls")
        limit = engine.settings.max_file_bytes
        too_big = [f.filename or "?" for f in files if (f.size or 0) > limit]
        if too_big:
            raise Problem(413, f"{', '.join(too_big)}: over the {engine.settings.max_file_mb:g} MB limit per file "
                               "(RAG_MAX_FILE_MB); nothing was added.", code="file_too_large")
        reports = []
        if files:
            reports.append(await svc.workers.write(ingest_uploads, engine, [(f.filename, f.file) for f in files]))
        if urls:
            report = await svc.workers.write(lambda: engine.ingest_urls(urls, show_progress=False))
            reports.append((report, url_results(report)))
        out = ingest_out(reports)
        if out.added or out.updated:
            svc.index_written()
        return out

    @r.get("/articles/{article_id}", response_model=ArticleOut, tags=["articles"],
           responses={404: {"description": "no article with this id"}})
    async def get_article(article_id: str):
        """An article's cleaned text and metadata (citation offsets point into `text`)."""
        svc.require_index()

        def read():
            store = engine.snapshot
            if article_id not in store.row_by_id:
                raise unknown_article(article_id)
            article = store.article(article_id)
            meta = article_meta(article, store.passage_counts().get(article_id, 0))
            return ArticleOut(**meta.model_dump(), text=article.text)

        return await svc.workers.read(read)

    @r.delete("/articles/{article_id}", response_model=Removed, tags=["articles"],
              responses={404: {"description": "no article with this id"}})
    async def delete_article(article_id: str):
        """Remove an article from the index."""
        svc.require_index()

        def remove():
            store = engine.snapshot
            if article_id not in store.row_by_id:
                raise unknown_article(article_id)
            passages = store.passage_counts().get(article_id, 0)
            (removed,) = engine.remove([article_id])
            return Removed(removed=ArticleMeta(**removed.meta(), passages=passages))

        return await svc.workers.write(remove)

    @r.get("/health", response_model=Health, tags=["server"], responses={503: {"model": Health}})
    async def health():
        """`ok` once the index is loaded; `starting` (503) while it is built or loaded;
        `error` (503) if it cannot be."""
        status, message = await svc.workers.read(svc.state)
        body = Health(status=status, ready=status == "ok", message=message)
        return body if status == "ok" else JSONResponse(body.model_dump(), status_code=503)

    @r.get("/stats", response_model=Stats, tags=["server"])
    async def stats():
        """Index statistics: articles, passages, articles per source, the live generation."""
        svc.require_index()

        def read():
            store = engine.snapshot
            m = store.manifest
            articles = store.articles()
            return Stats(articles=len(articles), passages=len(store),
                         sources=dict(Counter(a.source or "(unknown)" for a in articles).most_common()),
                         generation=m.generation, embedding_model=m.embedding_model, index_type=m.index_type,
                         updated_at=m.created_at)

        return await svc.workers.read(read)

    def article_meta(article: Article, passages: int) -> ArticleMeta:
        """An article's metadata, with the other outlets' copies of its wire story."""
        copies = [c.to_dict() for c in engine.also_published_by(article.article_id)]
        return ArticleMeta(**article.meta(), also_published_by=copies, passages=passages)

    return r


async def urls_from_json(request: Request) -> list[str]:
    """The ``urls`` of a JSON body (400 when it is not JSON, 422 when it is not ``{"urls": [str]}``)."""
    body = await request.body()
    try:
        return UrlsIn.model_validate_json(body).urls
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if errors and errors[0].get("type") == "json_invalid":
            raise Problem(400, "The request body is not valid JSON.", code="invalid_json") from None
        raise RequestValidationError([{**e, "loc": ("body", *e.get("loc", ()))} for e in errors]) from None


def unknown_article(article_id: str) -> Problem:
    return Problem(404, f"No article with id {article_id!r} in the index (GET /api/v1/articles lists them).",
                   code="unknown_article")
