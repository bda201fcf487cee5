"""`Prefer: wait=N` (RFC 7240): how long a client is willing to wait, and waiting at most that.

A wait that outlives N is not an error: the route answers 202 with the state so far, exactly as
without the header. Waiting at most N is `temporal_client.ask.within`, which never lets
the SDK's cancelled-update error through as a 500.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Response

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
