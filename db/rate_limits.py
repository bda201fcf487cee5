"""Token buckets in PostgreSQL, so a limit holds across every API process.

One statement takes a token (autocommit: the row lock it takes is its own): the bucket refills
at `rate` per second up to `burst`; a request is allowed when at least one token is there.
Refused requests learn how long until one is.
(Tokens are a rate, not money: a float is fine here.)
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db import direct

_TAKE = text(
    """
    INSERT INTO rate_limits AS b (key_id, scope, tokens, updated_at)
    VALUES (:k, :s, :burst - 1, clock_timestamp())
    ON CONFLICT (key_id, scope) DO UPDATE SET
        tokens = LEAST(:burst, b.tokens + EXTRACT(EPOCH FROM clock_timestamp() - b.updated_at) * :rate) - 1,
        updated_at = clock_timestamp()
    WHERE LEAST(:burst, b.tokens + EXTRACT(EPOCH FROM clock_timestamp() - b.updated_at) * :rate) >= 1
    RETURNING b.tokens
    """)
_LEFT = text(
    """
    SELECT LEAST(:burst, tokens + EXTRACT(EPOCH FROM clock_timestamp() - updated_at) * :rate)
    FROM rate_limits WHERE key_id = :k AND scope = :s
    """)


async def take(engine: AsyncEngine, key_id: str, scope: str, rate: float, burst: int) -> float:
    """0 when a token was taken, else the seconds until one will be there."""
    params = {"k": key_id, "s": scope, "rate": rate, "burst": burst}
    # one statement, on its own (no BEGIN and COMMIT around it): one round trip per request
    async with direct.connect(engine) as conn:
        if (await conn.execute(_TAKE, params)).first() is not None:
            return 0.0
        left = float((await conn.execute(_LEFT, params)).scalar() or 0.0)
    return max((1 - left) / rate, 0.001)
