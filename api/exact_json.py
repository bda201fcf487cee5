"""A route class whose JSON bodies parse numbers as Decimal: "amount": 100.10 is never a float."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from api.edges import DRAIN_FACTOR, drain
from api.errors import Problem


class ExactJSONRequest(Request):
    async def body(self) -> bytes:
        """The body, read only up to the configured limit (413 PAYLOAD_TOO_LARGE past it)."""
        if not hasattr(self, "_body"):
            limit = self.app.state.paysaga.settings.max_body_bytes
            chunks: list[bytes] = []
            seen = 0
            async for chunk in self.stream():
                seen += len(chunk)
                if seen > limit:
                    await drain(self.receive, DRAIN_FACTOR * limit)
                    raise Problem(413, "PAYLOAD_TOO_LARGE",
                                  f"the request body is larger than {limit} bytes")
                chunks.append(chunk)
            self._body = b"".join(chunks)
        return self._body

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            if b"\\u0000" in body or b"\x00" in body:
                # PostgreSQL text cannot hold NUL; refuse it here rather than fail later
                raise Problem(400, "INVALID_CHARACTER", "the request contains a NUL character")
            try:
                self._json = json.loads(body, parse_float=Decimal,
                                        object_pairs_hook=_refuse_duplicate_keys)
            except (RecursionError, UnicodeDecodeError, ValueError) as err:
                raise Problem(400, "MALFORMED_JSON", "the request body is not valid JSON "
                              f"({type(err).__name__})") from None
        return self._json


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`{"amount": "1.00", "amount": "999999.00"}` is refused: parsers that disagree on which one
    wins would let a proxy or a signature check see one amount and the service another."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise Problem(400, "DUPLICATE_KEY", f"the JSON body repeats the key {key!r}",
                          errors=[{"field": key, "message": "duplicate key"}])
        seen[key] = value
    return seen


class ExactJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact(request: Request) -> Response:
            return await handler(ExactJSONRequest(request.scope, request.receive))

        return exact
