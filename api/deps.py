"""Dependencies as types: routes declare what they need and stay boring."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api.auth import Principal, authenticate
from api.errors import Problem
from domain.ids import is_valid_idempotency_key
from settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    temporal: Client
    key_cache: dict[str, tuple[float, Principal | None]]


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.paysaga
    return state


StateDep = Annotated[AppState, Depends(get_state)]
KEY_CACHE_SECONDS = 10.0


async def _principal(state: StateDep,
                     authorization: Annotated[str | None, Header()] = None) -> Principal:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Problem(401, "UNAUTHENTICATED", "send an API key as 'Authorization: Bearer <key>'",
                      headers={"WWW-Authenticate": "Bearer"})
    secret = authorization[7:].strip()
    now = time.monotonic()
    cached = state.key_cache.get(secret)
    if cached is not None and cached[0] > now:
        principal = cached[1]
    else:
        principal = await authenticate(state.engine, secret)
        if len(state.key_cache) > 10_000:
            state.key_cache.clear()
        state.key_cache[secret] = (now + KEY_CACHE_SECONDS, principal)
    if principal is None:
        raise Problem(401, "INVALID_API_KEY", "the API key is unknown or revoked",
                      headers={"WWW-Authenticate": "Bearer"})
    return principal


def require(scope: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    async def check(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        if scope not in principal.scopes:
            raise Problem(403, "INSUFFICIENT_SCOPE", f"this API key lacks the '{scope}' scope")
        return principal
    return check


PaymentsWrite = Annotated[Principal, Depends(require("payments:write"))]
PaymentsRead = Annotated[Principal, Depends(require("payments:read"))]
WalletsWrite = Annotated[Principal, Depends(require("wallets:write"))]
WalletsRead = Annotated[Principal, Depends(require("wallets:read"))]


def idempotency_key(
    key: Annotated[str | None, Header(alias="Idempotency-Key",
                                      description="1-255 of A-Z a-z 0-9 - _ . :")] = None,
) -> str:
    if key is None or key == "":
        raise Problem(400, "IDEMPOTENCY_KEY_MISSING", "this request needs an Idempotency-Key header")
    if not is_valid_idempotency_key(key):
        raise Problem(400, "IDEMPOTENCY_KEY_INVALID",
                      "Idempotency-Key must be 1-255 characters of A-Z a-z 0-9 - _ . :")
    return key


IdempotencyKey = Annotated[str, Depends(idempotency_key)]
