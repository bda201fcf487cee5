"""Dependencies as types: routes declare what they need and stay boring."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api.errors import Problem
from db import rate_limits
from db.api_keys import authenticate
from domain.access import OPERATOR, OPERATOR_SCOPES, Principal
from domain.ids import is_valid_idempotency_key
from settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    temporal: Client
    # a key's lookup until it expires: one lookup per key however many requests ask at once
    key_cache: dict[str, tuple[float, asyncio.Future[Principal | None]]]
    user_key: bytes = b""  # the PaymentUserId HMAC's key


async def get_state(request: Request) -> AppState:  # async: a plain def runs in a thread
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
    entry = state.key_cache.get(secret)
    if entry is None or entry[0] <= now:
        # one lookup, which the requests that come before it answers share: when the cache
        # expired under 20 requests in flight, each made its own and the burst opened (and then
        # closed) connections beyond the pool's
        if len(state.key_cache) > 10_000:
            state.key_cache.clear()
        entry = (now + KEY_CACHE_SECONDS, asyncio.ensure_future(authenticate(state.engine, secret)))
        state.key_cache[secret] = entry
    try:
        principal = await asyncio.shield(entry[1])  # a request that goes away leaves it to the rest
    except Exception:
        if state.key_cache.get(secret) is entry:  # a failed lookup is not kept
            del state.key_cache[secret]
        raise
    if principal is None:
        raise Problem(401, "INVALID_API_KEY", "the API key is unknown or revoked",
                      headers={"WWW-Authenticate": "Bearer"})
    return principal


def require(scope: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    async def check(principal: Annotated[Principal, Depends(_principal)],
                    state: StateDep) -> Principal:
        if scope in OPERATOR_SCOPES and principal.kind != OPERATOR:
            raise Problem(403, "OPERATOR_KEY_REQUIRED",
                          "this route spans every tenant: it takes a platform operator key, "
                          "not a tenant key")
        if scope not in principal.scopes:
            raise Problem(403, "INSUFFICIENT_SCOPE", f"this API key lacks the '{scope}' scope")
        await _rate_limit(state, principal, "write" if scope.endswith(":write") else "read")
        return principal
    return check


async def _rate_limit(state: AppState, principal: Principal, kind: str) -> None:
    s = state.settings
    rate, burst = ((s.rate_limit_write_per_second, s.rate_limit_write_burst) if kind == "write"
                   else (s.rate_limit_read_per_second, s.rate_limit_read_burst))
    if rate <= 0:
        return
    wait = await rate_limits.take(state.engine, principal.key_id, kind, rate, burst)
    if wait:
        raise Problem(429, "RATE_LIMITED",
                      f"this API key sent more than {rate:g} {kind} requests per second "
                      f"(burst {burst}); retry after the Retry-After header's seconds",
                      headers={"Retry-After": str(max(1, math.ceil(wait)))})


PaymentsWrite = Annotated[Principal, Depends(require("payments:write"))]
PaymentsRead = Annotated[Principal, Depends(require("payments:read"))]
WalletsWrite = Annotated[Principal, Depends(require("wallets:write"))]
WalletsRead = Annotated[Principal, Depends(require("wallets:read"))]
ReconciliationsWrite = Annotated[Principal, Depends(require("reconciliations:write"))]
ReconciliationsRead = Annotated[Principal, Depends(require("reconciliations:read"))]


async def idempotency_key(
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
