"""The outbox relay: publishes committed domain events in order, at least once.

Events are claimed with FOR UPDATE SKIP LOCKED, so any number of workers can relay without
publishing one event twice in the same moment; each is written as one JSON log line to the
`paysaga.events` log (the stream a log shipper forwards) and marked published.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("paysaga.events")


async def relay_once(engine: AsyncEngine, batch: int = 500) -> int:
    async with engine.begin() as conn:
        rows = (await conn.execute(text(
            """
            UPDATE events SET published_at = now()
            WHERE id IN (SELECT id FROM events WHERE published_at IS NULL
                         ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED)
            RETURNING id, type, tenant_id, payment_id, data, created_at
            """), {"n": batch})).all()
    for r in sorted(rows, key=lambda r: r.id):
        log.info("event %s %s", r.id, r.type, extra={"event": {
            "event_id": r.id, "type": r.type, "tenant_id": r.tenant_id,
            "payment_id": r.payment_id, "data": r.data, "created_at": r.created_at.isoformat()}})
    return len(rows)


async def run_relay(engine: AsyncEngine, interval: float = 0.5) -> None:
    while True:
        try:
            published = await relay_once(engine)
        except Exception:  # a database outage must not stop the worker; try again shortly
            logging.getLogger("paysaga.worker").exception("outbox relay failed")
            published = 0
        if not published:
            await asyncio.sleep(interval)
