"""`Prefer: wait=N` (RFC 7240): how long a client is willing to wait, and waiting at most that.

A wait that outlives N is not an error: the route answers 202 with the state so far, exactly as
without the header. The Temporal SDK turns a cancelled update call into its own exception
(`WorkflowUpdateRPCTimeoutOrCancelledError`), not `TimeoutError`, so `asyncio.wait_for` around
it lets a 500 through; `within` never cancels into the caller's exception handling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Annotated, TypeVar

from fastapi import Header, Response
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError

T = TypeVar("T")
MAX_WAIT_SECONDS = 30.0

PreferHeader = Annotated[str | None, Header(
    description="RFC 7240, e.g. `wait=10` (seconds, at most 30): answer with the outcome if it "
                "comes within that time, else 202 with the state so far")]


def wait_seconds(prefer: str | None) -> float | None:
    """The `wait` preference in seconds (clamped to 0..30), or None when not asked for."""
    for part in (prefer or "").replace(";", ",").split(","):
        name, _, value = part.strip().partition("=")
        if name.lower() == "wait":
            try:
                seconds = float(value)
            except ValueError:
                return None
            if seconds != seconds:  # NaN
                return None
            return min(max(seconds, 0.0), MAX_WAIT_SECONDS)
    return None


def applied(response: Response, seconds: float) -> None:
    response.headers["Preference-Applied"] = f"wait={seconds:g}"


class Outlived(Exception):
    """The call did not finish within the client's wait (it was cancelled, not failed)."""


async def within(seconds: float, call: Awaitable[T]) -> T:
    """`call`'s result if it finishes within `seconds`; else cancel it and raise Outlived.

    Whatever the cancelled call raises while it unwinds (the SDK's own RPC-cancelled error) is
    consumed here; a call that finishes in time but reports an update RPC timeout is Outlived
    too (the server's long poll gave up before the outcome)."""
    task = asyncio.ensure_future(call)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        await asyncio.wait({task})
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it as never retrieved
        raise Outlived
    try:
        return task.result()
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise Outlived from None
