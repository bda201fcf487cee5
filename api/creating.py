"""Creating by Idempotency-Key, said once for every creating route: the same key with the same
request answers what it made before (200, `Idempotent-Replayed: true`), with another request 422
IDEMPOTENCY_KEY_REUSED; a saga is started once (its workflow id is derived from the key and may
never run twice), with `Prefer: wait=N` together with its `outcome` update (Update-with-Start)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Response
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.errors import Problem
from api.prefer import applied, wait_seconds


def replay(response: Response, stored_fingerprint: str | None, fingerprint: str,
           location: str | None = None) -> None:
    """Answer as a replay of what this key made, or refuse a different request under it."""
    if stored_fingerprint != fingerprint:
        raise Problem(422, "IDEMPOTENCY_KEY_REUSED",
                      "this Idempotency-Key was used with a different request")
    response.status_code = 200
    response.headers["Idempotent-Replayed"] = "true"
    if location:
        response.headers["Location"] = location


@dataclass
class Saga:
    """A saga a route starts: its id's location, the request's fingerprint, its view before
    anything ran, and how to start it, read its projection and load it (projection or workflow)."""

    location: str
    fingerprint: str
    opening: dict[str, Any]
    start: Callable[[float | None], Awaitable[bool]]  # (wait N s or None) -> settled in time
    stored: Callable[[], Awaitable[dict[str, Any] | None]]
    load: Callable[[], Awaitable[dict[str, Any]]]


async def start_once(saga: Saga, response: Response, prefer: str | None,
                     refuse: Callable[[], None] | None = None) -> dict[str, Any]:
    """Start the saga once and answer its view: 202 at once, 201 when `Prefer: wait=N` saw it
    settle, 200 as a replay; `refuse` may raise a Problem before anything starts."""
    existing = await saga.stored()
    if existing is not None:
        replay(response, existing.get("fingerprint"), saga.fingerprint, saga.location)
        return existing
    if refuse is not None:
        refuse()
    response.headers["Location"] = saga.location
    seconds = wait_seconds(prefer)
    try:
        if seconds is None:  # the 202 path: a single start
            await saga.start(None)
            return saga.opening
        applied(response, seconds)
        if await saga.start(seconds):
            response.status_code = 201
            return await saga.load()
    except WorkflowAlreadyStartedError:
        # another request with this key started it first (or it ran before): answer as it
        found = await saga.load()
        replay(response, found.get("fingerprint"), saga.fingerprint, saga.location)
        return found
    # the saga outlived the wait: 202 with the state so far, as without the header
    return await saga.stored() or saga.opening
