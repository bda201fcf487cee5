"""The outbox relay: publishes committed domain events in order, at least once.

Events are claimed with FOR UPDATE SKIP LOCKED, so any number of workers can relay. In the same
transaction each event fans out to the webhook endpoints subscribed to it (one delivery row per
endpoint and event); then each is written as one JSON log line on `paysaga.events`, and each new
delivery starts its Temporal workflow. Deliveries left pending without a workflow (a crash between
commit and start) are started again on later passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.webhooks import fan_out
from workflows.start import start_deliveries
from workflows.webhooks import DeliveryPolicy

log = logging.getLogger("paysaga.events")


@dataclass
class Dispatch:
    client: Client
    task_queue: str
    policy: DeliveryPolicy


async def relay_once(engine: AsyncEngine, dispatch: Dispatch | None = None, batch: int = 500) -> int:
    async with engine.begin() as conn:
        claimed = (await conn.execute(text(
            """
            UPDATE events SET published_at = now()
            WHERE id IN (SELECT id FROM events WHERE published_at IS NULL
                         ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED)
            RETURNING id, type, tenant_id, payment_id, data, created_at
            """), {"n": batch})).all()
        rows = sorted(claimed, key=lambda r: r.id)
        deliveries = await fan_out(conn, rows)
        stalled = [] if dispatch is None else list((await conn.execute(text(
            "SELECT id FROM webhook_deliveries WHERE status = 'pending' AND attempts = 0 "
            "AND created_at < now() - interval '1 minute' LIMIT 100"))).scalars())
    for r in rows:
        log.info("event %s %s", r.id, r.type, extra={"event": {
            "event_id": r.id, "type": r.type, "tenant_id": r.tenant_id,
            "payment_id": r.payment_id, "data": r.data, "created_at": r.created_at.isoformat()}})
    if dispatch is not None:
        for did in [*deliveries, *stalled]:
            with contextlib.suppress(WorkflowAlreadyStartedError):
                await start_deliveries(dispatch.client, dispatch.task_queue, [did], dispatch.policy)
    return len(rows)


async def run_relay(engine: AsyncEngine, dispatch: Dispatch | None, interval: float = 0.5) -> None:
    while True:
        try:
            published = await relay_once(engine, dispatch)
        except Exception:  # a database outage must not stop the worker; try again shortly
            logging.getLogger("paysaga.worker").exception("outbox relay failed")
            published = 0
        if not published:
            await asyncio.sleep(interval)
