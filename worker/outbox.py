"""The outbox relay: publishes committed domain events to JetStream, in order, exactly once as a
consumer sees it.

One relay publishes at a time (a PostgreSQL advisory lock, taken in the relay's transaction),
however many workers run (the others wait as hot standbys), each batch in id order: a payment's
events are in order (its steps commit one after another); across payments an id can commit after
a larger one, so a consumer keys on the event's id. In one transaction a batch is read, published
(every JetStream ack awaited), marked published and fanned out to the webhook endpoints
subscribed to it; if the broker does not ack, the transaction rolls back and the events stay in
the outbox for the next pass (with backoff). A relay that dies between the acks and the commit
republishes the batch, and the stream's duplicate window drops it (`Nats-Msg-Id` is the event's
feed id). Without a broker (NATS_URL unset and no embedded one) each event is a JSON log line on
`paysaga.events` instead.

Deliveries left pending without a workflow (a crash between commit and start) are started again on
later passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from bus.jetstream import BusUnavailable, EventBus
from db import outbox
from domain.times import rfc3339
from temporal_client.start import start_deliveries
from workflows.webhooks import DeliveryPolicy

log = logging.getLogger("paysaga.events")


@dataclass
class Dispatch:
    client: Client
    task_queue: str
    policy: DeliveryPolicy


def as_published(row: Any) -> dict[str, Any]:
    """The event as the events feed shows it (plus its tenant, for the subject)."""
    return {"id": row.id, "type": row.type, "payment_id": row.payment_id,
            "wallet_id": row.wallet_id, "data": row.data, "created_at": rfc3339(row.created_at),
            "tenant_id": row.tenant_id}


async def relay_once(engine: AsyncEngine, dispatch: Dispatch | None = None, batch: int = 1000,
                     bus: EventBus | None = None) -> int:
    """One batch: read, publish (acks awaited), mark, fan out. The number relayed; 0 when
    another relay holds the lock or nothing waits. BusUnavailable: nothing was marked."""
    published: list[dict[str, Any]] = []

    async def publish(rows: Sequence[Any]) -> None:
        published.extend(as_published(r) for r in rows)
        if bus is not None:
            await bus.publish(published)

    relayed = await outbox.relay_batch(engine, publish, batch, find_stalled=dispatch is not None)
    if bus is None:
        for event in published:
            log.info("event %s %s", event["id"], event["type"], extra={"event": event})
    if dispatch is not None:
        for did in [*relayed.deliveries, *relayed.stalled]:
            with contextlib.suppress(WorkflowAlreadyStartedError):
                await start_deliveries(dispatch.client, dispatch.task_queue, [did], dispatch.policy)
    return len(relayed.events)


async def run_relay(engine: AsyncEngine, dispatch: Dispatch | None, bus: EventBus | None = None,
                    interval: float = 0.2, max_backoff: float = 5.0, batch: int = 1000) -> None:
    """Relay batches until cancelled: the next at once after a full batch, else after `interval`,
    backing off while the broker or the database is out. A pass pays a transaction, the lock and
    four statements whatever it carries, so under load each pass takes what `interval` let
    gather (about 5 passes a second) rather than the few events committed since the last."""
    backoff = interval
    while True:
        try:
            published = await relay_once(engine, dispatch, batch, bus=bus)
            backoff = interval
        except BusUnavailable as err:  # the events wait in the outbox; try again, backing off
            logging.getLogger("paysaga.worker").warning("outbox relay: %s; retrying in %.1fs",
                                                        err, backoff)
            published = 0
            backoff = min(backoff * 2, max_backoff)
        except Exception:  # a database outage must not stop the worker; try again shortly
            logging.getLogger("paysaga.worker").exception("outbox relay failed")
            published = 0
            backoff = min(backoff * 2, max_backoff)
        if published < batch:
            await asyncio.sleep(backoff)
