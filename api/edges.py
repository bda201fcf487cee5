"""`Request-Id` on every response: taken from the client (1-128 of `A-Z a-z 0-9 - _ . :`) or
generated, put on every log line written while serving it and into problem bodies, so an
integrator can quote one id. Pure ASGI, outermost, so even a refused request carries it.

Request bodies above `MAX_BODY_BYTES` (default 1 MB) answer 413 PAYLOAD_TOO_LARGE: here from the
Content-Length alone, and in api/exact_json.py as soon as a stream without one passes the limit.
Before answering, the rest of the body is read and discarded (up to `DRAIN_FACTOR` times the
limit): a server that answers and closes while the client is still sending makes the kernel reset
the socket, and clients such as urllib and requests then see a reset instead of the 413.
(FastAPI's own `max_body_size` answers a plain-text 413 from outside the app's error handling;
this keeps every rejection a problem document.)

An exception nothing else handled is answered here, inside the request's context, so its 500
problem carries `request_id` like every other problem.
"""

from __future__ import annotations

import logging
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import Problem, problem_response
from domain import entropy
from telemetry.request_context import REQUEST_ID

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9\-_.:]{1,128}$")
DRAIN_FACTOR = 16  # read and discard at most this many times MAX_BODY_BYTES before answering 413
log = logging.getLogger("paysaga.api")


async def drain(receive: Receive, bound: int) -> None:
    """Read and discard the rest of a request body, up to `bound` bytes."""
    seen = 0
    while seen <= bound:
        message = await receive()
        if message["type"] != "http.request":
            return  # the client went away
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class RequestIds:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"request-id"),
                     "")
        request_id = given if REQUEST_ID_RE.fullmatch(given) else f"req_{entropy.token_hex(12)}"
        token = REQUEST_ID.set(request_id)

        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []),
                                      (b"request-id", request_id.encode())]
            await send(message)

        try:
            length = next((v for k, v in scope["headers"] if k.lower() == b"content-length"), b"")
            if length.isdigit() and int(length) > self.max_body_bytes:
                problem = Problem(413, "PAYLOAD_TOO_LARGE",
                                  f"the request body is larger than {self.max_body_bytes} bytes")
                await drain(receive, DRAIN_FACTOR * self.max_body_bytes)
                await problem_response(problem)(scope, receive, send_with_id)
                return
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise  # too late for a problem document: the server closes the connection
            problem = Problem(500, "INTERNAL_ERROR", "an internal error occurred")
            await problem_response(problem)(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
