"""The two postings a saga's step and the activity that moved the money both make: a payment's
hold captured, a transfer settled. One transaction each over db/, then the metric of what this
call recorded (an earlier try's recording is not counted twice)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from activities.metrics import took, transfer_settled
from contracts.payment import CaptureFunds
from contracts.transfers import SettleTransfer
from db import direct, payments, transfers


async def capture(engine: AsyncEngine, step: CaptureFunds) -> payments.Posted:
    """Capture the attempt's hold (idempotent); `outcome == "no_hold"`: nothing to capture."""
    async with direct.begin(engine) as conn:
        posted = await payments.capture(conn, step)
    if posted.outcome != "no_hold":
        took(posted.created_at, "completed")
    return posted


async def settle(engine: AsyncEngine, kind: str, step: SettleTransfer) -> None:
    """Record a top-up's or withdrawal's outcome (idempotent)."""
    async with direct.begin(engine) as conn:
        created = await transfers.settle(conn, kind, step)
    transfer_settled(kind, step.succeeded, created)
