"""Errors as JSON problem objects (RFC 9457, ``application/problem+json``).

Every error the API answers has ``type``, ``title``, ``status``, ``detail`` (a
message a user can act on), ``instance`` (the path) and ``code`` (a stable slug a
program can branch on). Under ``/v1`` (the OpenAI-compatible routes) the same
object also carries ``error: {message, type, code}``, the shape OpenAI clients read,
so their exceptions show the same message.

Never a traceback: an unexpected exception is logged with its traceback and
answered with a 500 problem that points at the server log.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.errors import IndexLoadError, LLMError, RagError

log = logging.getLogger("rag.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
OPENAI_PREFIX = "/v1/"

# Slugs for the statuses Starlette raises itself (unknown route, wrong method, body limit).
_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
          413: "too_large", 422: "invalid_request", 500: "internal_error", 502: "model_error",
          503: "not_ready"}
# OpenAI's error ``type`` for each status (what its clients map to exception classes).
_OPENAI_TYPES = {401: "authentication_error", 404: "invalid_request_error", 500: "server_error",
                 502: "server_error", 503: "server_error"}


class Problem(Exception):
    """An error answer: raise it from a route (or a dependency) to send a problem object."""

    def __init__(self, status: int, detail: str, *, code: str | None = None,
                 headers: dict[str, str] | None = None, **extensions: Any):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or _CODES.get(status, "error")
        self.headers = headers
        self.extensions = extensions


def empty_question() -> Problem:
    return Problem(400, "The question is empty: send a question with some words in it.", code="empty_question")


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(problem.status).phrase,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.url.path,
        "code": problem.code,
        **problem.extensions,
    }
    if request.url.path.startswith(OPENAI_PREFIX):
        body["error"] = {"message": problem.detail, "type": _OPENAI_TYPES.get(problem.status, "invalid_request_error"),
                         "param": None, "code": problem.code}
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM_MEDIA_TYPE, headers=problem.headers)


def problem_for(exc: BaseException) -> Problem:
    """The problem an exception raised by the engine (or a bug) is answered with."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, IndexLoadError):  # missing or damaged index: the server's state, not the request
        return Problem(503, str(exc), code="index_unavailable")
    if isinstance(exc, LLMError):  # the configured model could not be reached or loaded
        return Problem(502, str(exc), code="model_error")
    if isinstance(exc, RagError):
        return Problem(400, str(exc), code="bad_request")
    if isinstance(exc, RecursionError):
        return Problem(400, "The request is nested too deeply to read.", code="too_deep")
    log.error("unexpected error", exc_info=exc)
    return Problem(500, f"Something went wrong ({type(exc).__name__}); see the server log.", code="internal_error")


def _validation_detail(errors: list[dict]) -> tuple[str, list[dict]]:
    """One sentence for the first error, and every error as ``{loc, msg, type}`` (never the input back)."""
    shown = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors]
    if not shown:
        return "The request is not valid.", shown
    first = shown[0]
    where = ".".join(str(p) for p in first["loc"]) or "request"
    more = f" (and {len(shown) - 1} more)" if len(shown) > 1 else ""
    return f"{where}: {first['msg']}{more}.", shown


def install(app: FastAPI, *, too_large_detail) -> None:
    """Answer every error of ``app``'s own routes with a problem object.

    ``too_large_detail(path)`` words a 413 from the body-size limit for that route.
    """

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem):
        return problem_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError):
        errors = list(exc.errors())
        if errors and errors[0].get("type") == "json_invalid":  # not JSON at all: malformed, not mistyped
            where = errors[0].get("loc", ("body", 0))[-1]
            detail = f"The request body is not valid JSON (error at character {where})."
            return problem_response(request, Problem(400, detail, code="invalid_json"))
        detail, shown = _validation_detail(errors)
        return problem_response(request, Problem(422, detail, errors=shown))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 413:
            detail = too_large_detail(request.url.path)
        elif isinstance(exc.detail, str) and exc.detail:
            detail = exc.detail if exc.detail.endswith(".") else exc.detail + "."
        else:
            detail = HTTPStatus(exc.status_code).phrase + "."
        return problem_response(request, Problem(exc.status_code, detail, headers=getattr(exc, "headers", None)))

    @app.exception_handler(RagError)
    async def on_rag_error(request: Request, exc: RagError):
        return problem_response(request, problem_for(exc))

    @app.exception_handler(RecursionError)
    async def on_recursion(request: Request, exc: RecursionError):
        return problem_response(request, problem_for(exc))

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception):
        return problem_response(request, problem_for(exc))


def event_problem(exc: BaseException) -> dict[str, Any]:
    """A problem object for an error that happens after a stream has begun (its status is sent already)."""
    p = problem_for(exc)
    return {"type": "about:blank", "title": HTTPStatus(p.status).phrase, "status": p.status,
            "detail": p.detail, "code": p.code}
