"""RFC 9457 problem+json for every error, each with a stable UPPER_SNAKE `code`.

    Problem            raised by routes and dependencies (status, code, detail, field errors)
    RequestValidationError -> 400 VALIDATION_ERROR / MALFORMED_JSON
    HTTPException      -> its status, NOT_FOUND / METHOD_NOT_ALLOWED / HTTP_<status>
    anything else      -> 500 INTERNAL_ERROR, logged, never a stack trace in the body
"""

from __future__ import annotations

import logging
import re
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.service import RPCError, RPCStatusCode

from db.pages import PageError
from telemetry.request_context import REQUEST_ID

log = logging.getLogger("paysaga.api")
PROBLEM = "application/problem+json"


class FieldError(BaseModel):
    field: str
    message: str


class ProblemBody(BaseModel):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | None = None
    request_id: str | None = None


class Problem(StarletteHTTPException):
    """An HTTPException, so FastAPI lets it through from body parsing too."""

    def __init__(self, status: int, code: str, detail: str, *, title: str | None = None,
                 errors: list[dict[str, str]] | None = None,
                 extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, detail, headers)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or code.replace("_", " ").capitalize()
        self.errors = errors
        self.extra = extra or {}
        self.headers = headers


def problem_response(p: Problem) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://paysaga.dev/problems/{p.code.lower().replace('_', '-')}",
        "title": p.title, "status": p.status, "detail": p.detail, "code": p.code,
    }
    if p.errors is not None:
        body["errors"] = p.errors
    body.update(p.extra)
    request_id = REQUEST_ID.get()
    if request_id:
        body["request_id"] = request_id  # the one id to quote when something went wrong
    return JSONResponse(body, status_code=p.status, media_type=PROBLEM, headers=p.headers)


def money_problem(err: Any, field: str) -> Problem:
    """A domain.money.MoneyError as the 400 naming its field (INVALID_AMOUNT, INVALID_CURRENCY)."""
    return Problem(400, "VALIDATION_ERROR", f"{field}: {err.message}",
                   errors=[{"field": field, "message": err.message, "code": err.code}])


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(x) for x in loc if x not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


class RefuseNul:
    """A NUL character in the path or the query string is refused before any route sees it.
    Plain ASGI (no BaseHTTPMiddleware's task and streams per request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("query_string", b"") + scope.get("raw_path", b"")
            if b"%00" in raw or b"\x00" in raw:
                await problem_response(Problem(400, "INVALID_CHARACTER",
                                               "the request contains a NUL character"))(
                    scope, receive, send)
                return
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_middleware(RefuseNul)

    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(PageError)
    async def _page(_: Request, exc: PageError) -> JSONResponse:
        # a page the list cannot give: an unknown cursor, a cursor with an offset
        return problem_response(Problem(400, "VALIDATION_ERROR",
                                        f"the request is invalid: {exc.detail}",
                                        errors=[{"field": exc.field, "message": exc.message}]))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errs):
            return problem_response(Problem(400, "MALFORMED_JSON", "the request body is not valid JSON"))
        fields = [{"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid"))}
                  for e in errs]
        return problem_response(Problem(
            400, "VALIDATION_ERROR", "the request is invalid: " +
            "; ".join(f"{f['field']}: {f['message']}" for f in fields), errors=fields))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
                413: "PAYLOAD_TOO_LARGE"}.get(exc.status_code, f"HTTP_{exc.status_code}")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:  # Allow lists every method of every route on this path
            headers = {"Allow": ", ".join(_allowed(request))}
        return problem_response(Problem(exc.status_code, code, str(exc.detail), headers=headers))

    @app.exception_handler(RPCError)
    async def _temporal(request: Request, exc: RPCError) -> JSONResponse:
        if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED,
                          RPCStatusCode.RESOURCE_EXHAUSTED):
            return _unavailable("Temporal")
        return await _unexpected(request, exc)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
            return _unavailable("the database")
        return await _unexpected(request, exc)

    @app.exception_handler(OSError)
    async def _network(request: Request, exc: OSError) -> JSONResponse:
        return _unavailable("a dependency")

    # the hot reads' statements go to asyncpg directly (db/direct.py): its connection errors
    @app.exception_handler(asyncpg.InterfaceError)
    @app.exception_handler(asyncpg.PostgresConnectionError)
    @app.exception_handler(asyncpg.exceptions.OperatorInterventionError)
    async def _database_direct(request: Request, exc: Exception) -> JSONResponse:
        return _unavailable("the database")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(Problem(500, "INTERNAL_ERROR", "an internal error occurred"))


def _allowed(request: Request) -> list[str]:
    """The methods the OpenAPI document declares for this path."""
    methods: set[str] = set()
    for path, operations in request.app.openapi().get("paths", {}).items():
        if re.fullmatch(re.sub(r"\\{[^}/]+\\}", "[^/]+", re.escape(path)), request.url.path):
            methods |= {m.upper() for m in operations if m != "parameters"}
    return sorted(methods)


def _unavailable(what: str) -> JSONResponse:
    log.warning("%s is unavailable", what)
    return problem_response(Problem(503, "SERVICE_UNAVAILABLE",
                                    f"{what} is unavailable; retry with the same Idempotency-Key",
                                    headers={"Retry-After": "1"}))


WHY = {
    400: "invalid request: VALIDATION_ERROR (with `errors` naming each field or query parameter), "
         "MALFORMED_JSON, DUPLICATE_KEY (a JSON key given twice), INVALID_CHARACTER, "
         "IDEMPOTENCY_KEY_MISSING / IDEMPOTENCY_KEY_INVALID, INVALID_CURRENCY, INVALID_AMOUNT",
    401: "UNAUTHENTICATED: no API key, or an unknown one",
    403: "INSUFFICIENT_SCOPE: the key lacks this route's scope (an operator key holds no tenant "
         "scope)",
    404: "not found (or another tenant's)",
    409: "the resource's state refuses the command (the reason is in `detail`)",
    413: "PAYLOAD_TOO_LARGE: the body is larger than MAX_BODY_BYTES (default 1 MB)",
    422: "IDEMPOTENCY_KEY_REUSED: the key was used with a different request",
    429: "RATE_LIMITED: this API key's rate limit for the scope; retry after Retry-After seconds",
    503: "SERVICE_UNAVAILABLE: the database or Temporal is unreachable; retry with the same key",
}


OPERATOR_403 = ("OPERATOR_KEY_REQUIRED: an operator route (it spans every tenant) asked with a "
                "tenant key; INSUFFICIENT_SCOPE: the operator key lacks this route's scope")


def responses(*statuses: int, operator: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for a route's error responses (every route can answer 503; api/app.py adds
    413 to every route that takes a body). `operator`: a platform operator key's route."""
    # a query parameter no route knows is a 400 on any route
    wanted = set(statuses) | {400, 503} | ({429} if 401 in statuses else set())
    why = WHY | ({403: OPERATOR_403} if operator else {})
    return {s: {"model": ProblemBody, "content": {PROBLEM: {}}, "description": why.get(s, "problem")}
            for s in sorted(wanted)}
