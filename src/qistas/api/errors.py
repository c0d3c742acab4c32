"""The one error shape, and the only place domain errors become HTTP responses.

Every error, whatever raised it, answers::

    {"error": {"code": "not_found", "message": "project not found", "details": null}}

with the request's id in the ``X-Request-ID`` header (``api.requests``), as on every answer.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from qistas import errors
from qistas.db.engine import is_unreachable

log = logging.getLogger("qistas.api")

STATUS: dict[type[errors.QistasError], int] = {
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.TooLarge: 413,
    errors.Unsupported: 415,
    errors.TooManyAttempts: 429,
    errors.Invalid: 422,
    errors.Unavailable: 503,
}
RETRY_AFTER_UNAVAILABLE = "2"  # seconds; a restarted database or a released lock
HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
    422: "invalid", 429: "too_many_requests", 503: "unavailable",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


def status_for(exc: errors.QistasError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[0] if loc else "body")


def validation_response(problems: Sequence[Any]) -> JSONResponse:
    """A 422 from request validation, in the shape of every other 422.

    ``details.field`` names the first field that failed, as a domain 422 names its field;
    ``details.fields`` lists every failure ``{"field", "message"}``, in this order: path
    parameters, query parameters, headers, then the body (each in the order the framework
    checked them: the body in the order of its schema). Sorted here, since the framework
    checks parameters read by shared dependencies (``limit``) before the route's own.
    """
    ordered = sorted(problems, key=lambda p: _PART_ORDER.get(str((tuple(p.get("loc", ())) or ("",))[0]), 4))
    listed = [{"field": _problem_field(p), "message": p.get("msg", "invalid")} for p in ordered]
    first = listed[0] if listed else {"field": "body", "message": "invalid request"}
    message = f"{first['field']}: {first['message']}"
    return error_response(422, "invalid", message, {"field": first["field"], "fields": listed})


_PART_ORDER = {"path": 0, "query": 1, "header": 2, "cookie": 2, "body": 3}


def _problem_field(problem: dict[str, Any]) -> str:
    loc = tuple(problem.get("loc", ()))
    if problem.get("type") == "json_invalid":
        return "body"  # the rest of the location is a character position, not a field
    return _field(loc)


DATABASE_UNAVAILABLE = "the database cannot be reached right now; try again in a moment"


def domain_response(exc: errors.QistasError) -> JSONResponse:
    headers = None
    if isinstance(exc, errors.Unauthorized):
        headers = {"WWW-Authenticate": "Bearer"}
    elif isinstance(exc, errors.Unavailable):
        headers = {"Retry-After": RETRY_AFTER_UNAVAILABLE}
    elif isinstance(exc, errors.TooManyAttempts):
        headers = {"Retry-After": str(exc.retry_after)}
    return error_response(status_for(exc), exc.code, exc.message, exc.details, headers)


def http_response(exc: StarletteHTTPException) -> JSONResponse:
    code = HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, None, getattr(exc, "headers", None))


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.QistasError)
    async def _domain(_request: Request, exc: errors.QistasError) -> JSONResponse:
        return domain_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(exc.errors())

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return http_response(exc)

    @app.exception_handler(ClientDisconnect)
    async def _gone(_request: Request, _exc: ClientDisconnect) -> JSONResponse:
        # The client closed the connection mid-body (nothing was written: bodies are read
        # whole before any transaction). Not a server error; the answer reaches no one.
        return error_response(400, "bad_request", "the client disconnected before sending the whole body")

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> Response:
        if not is_unreachable(exc):
            log.exception("unhandled database error", exc_info=exc)
            return error_response(500, "internal_error", "an unexpected error occurred")
        log.warning("database unavailable: %s", exc.orig)
        # Through whichever handler answers domain errors (the pages render theirs as a page).
        answer = app.exception_handlers[errors.QistasError](request, errors.Unavailable(DATABASE_UNAVAILABLE))
        return await answer if inspect.isawaitable(answer) else answer

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", "an unexpected error occurred")
