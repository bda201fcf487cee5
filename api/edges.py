"""`Request-Id` on every response: taken from the client (1-128 of `A-Z a-z 0-9 - _ . :`) or
generated, put on every log line written while serving it and into problem bodies, so an
integrator can quote one id. Pure ASGI, outermost, so even a refused request carries it.

Request bodies above `MAX_BODY_BYTES` (default 1 MB) answer 413 PAYLOAD_TOO_LARGE without being
read in full: here from the Content-Length alone, and in api/exact_json.py as soon as a stream
without one passes the limit. (FastAPI's own `max_body_size` answers a plain-text 413 from
outside the app's error handling; this keeps every rejection a problem document.)
"""

from __future__ import annotations

import re
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import Problem, problem_response
from settings.request_context import REQUEST_ID

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9\-_.:]{1,128}$")


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
        request_id = given if REQUEST_ID_RE.fullmatch(given) else f"req_{secrets.token_hex(12)}"
        token = REQUEST_ID.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      (b"request-id", request_id.encode())]
            await send(message)

        try:
            length = next((v for k, v in scope["headers"] if k.lower() == b"content-length"), b"")
            if length.isdigit() and int(length) > self.max_body_bytes:
                problem = Problem(413, "PAYLOAD_TOO_LARGE",
                                  f"the request body is larger than {self.max_body_bytes} bytes")
                await problem_response(problem)(scope, receive, send_with_id)
                return
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
