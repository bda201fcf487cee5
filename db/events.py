"""Reading the outbox's domain events: a tenant's feed (resumable by id), a payment's events,
the outbox's statistics. Writing them is db/ledger.py's `emit`, inside each step's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from db.pages import Ask, Keyset, Page, Where, fetch

FEED = Keyset("events", ("id",), descending=False, scope="tenant_id = :t", integer_ids=True)
OF_PAYMENT = Keyset("events", ("id",), descending=False, scope="payment_id = :p", integer_ids=True)


async def feed_page(conn: AsyncConnection, tenant_id: str, after: int | None, ask: Ask) -> Page:
    """Every event of the tenant in order, not counted (the feed only grows). `after`: any id,
    seen or not (the feed's older, forgiving resume)."""
    where = Where(["tenant_id = :t"], {"t": tenant_id})
    if after is not None:
        where.add("id > :a", a=after)
    return await fetch(conn, FEED, ask, select="id, type, payment_id, wallet_id, data, created_at",
                       where=where, count=False)


async def payment_events_page(conn: AsyncConnection, payment_id: str, ask: Ask) -> Page:
    """A payment's events, oldest first."""
    return await fetch(conn, OF_PAYMENT, ask, select="id, type, data, created_at",
                       where=Where(["payment_id = :p"], {"p": payment_id}))


async def outbox_stats(conn: AsyncConnection, tenant_id: str) -> Any:
    """(total, published, oldest: the age in seconds of the oldest unpublished event or None)."""
    return (await conn.execute(text(
        """
        SELECT count(*) AS total, count(published_at) AS published,
               EXTRACT(EPOCH FROM now() - min(created_at) FILTER (WHERE published_at IS NULL))
                 AS oldest
        FROM events WHERE tenant_id = :t
        """), {"t": tenant_id})).one()
