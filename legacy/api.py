"""What the API still does for saga v1's payments (deleted with the wing)."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from db.payments import projection
from domain.ids import digest

SETTLED_OR_WAITING = {"completed", "failed", "exhausted", "canceled", "refunded", "partially_refunded"}


def refund_id(payment: str, idempotency_key: str) -> str:
    """Refunds made before saga v2 were keyed by payment and key; replays still find them."""
    return f"ref_{digest('refund', payment, idempotency_key)}"


async def settled(engine: AsyncEngine, tenant_id: str, pid: str, seconds: float) -> bool:
    """Saga v1's payments have no `outcome` update: watch the projection instead, for at most
    `seconds` (the only poll left in the API)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        found = await projection(engine, tenant_id, pid)
        if found is not None and found["status"] in SETTLED_OR_WAITING:
            return True
        await asyncio.sleep(0.05)
    return False
