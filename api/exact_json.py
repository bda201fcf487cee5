"""A route class whose JSON bodies parse numbers as Decimal: "amount": 100.10 is never a float."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from api.errors import Problem


class ExactJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            if b"\\u0000" in body or b"\x00" in body:
                # PostgreSQL text cannot hold NUL; refuse it here rather than fail later
                raise Problem(400, "INVALID_CHARACTER", "the request contains a NUL character")
            self._json = json.loads(body, parse_float=Decimal)
        return self._json


class ExactJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact(request: Request) -> Response:
            return await handler(ExactJSONRequest(request.scope, request.receive))

        return exact
