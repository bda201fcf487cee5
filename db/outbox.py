"""The outbox's relay, as stored: in one transaction, under an advisory lock (one relay at a time),
a batch of unpublished events in id order is read, handed to `publish` (which returns once the bus
has acknowledged every one), marked published and fanned out to the webhook endpoints. If `publish`
raises, the transaction rolls back and the events stay for the next pass."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db import direct, webhooks

RELAY_LOCK = 7_061_797_300  # pg_advisory_xact_lock key: one relay publishes at a time


@dataclass
class Relayed:
    events: Sequence[Any] = ()  # (id, type, tenant_id, payment_id, wallet_id, data, created_at)
    deliveries: list[str] = field(default_factory=list)  # made by the fan-out, in event order
    stalled: list[str] = field(default_factory=list)  # pending deliveries never started


async def relay_batch(engine: AsyncEngine, publish: Callable[[Sequence[Any]], Awaitable[None]],
                      batch: int = 1000, *, find_stalled: bool = True) -> Relayed:
    """One batch (see the module); nothing when another relay holds the lock or nothing waits."""
    async with direct.begin(engine) as conn:
        if not (await conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"),
                                   {"k": RELAY_LOCK})).scalar():
            return Relayed()
        rows = (await conn.execute(text(
            "SELECT id, type, tenant_id, payment_id, wallet_id, data, created_at FROM events "
            "WHERE published_at IS NULL ORDER BY id LIMIT :n"), {"n": batch})).all()
        if not rows:
            return Relayed()
        await publish(rows)
        await conn.execute(text("UPDATE events SET published_at = now() "
                                "WHERE id = ANY(CAST(:ids AS BIGINT[]))"),
                           {"ids": [r.id for r in rows]})
        deliveries = await webhooks.fan_out(conn, list(rows))
        stalled = await webhooks.stalled(conn) if find_stalled else []
    return Relayed(rows, deliveries, stalled)


async def pending(conn: AsyncConnection) -> int:
    """Events not yet published."""
    return int((await conn.execute(text(
        "SELECT count(*) FROM events WHERE published_at IS NULL"))).scalar() or 0)


async def event_ids(conn: AsyncConnection) -> list[int]:
    """Every event id written, in order."""
    return [r for (r,) in await conn.execute(text("SELECT id FROM events ORDER BY id"))]


async def event_owners(conn: AsyncConnection) -> dict[int, str]:
    """Each payment event's payment."""
    return {r.id: r.payment_id for r in await conn.execute(text(
        "SELECT id, payment_id FROM events WHERE payment_id IS NOT NULL"))}
