"""The processors' events, carried to their sagas: every event the API stored
(`POST /v1/processor-webhooks/{connector}`) reaches the payment or top-up it is about as the
`processor_event` Update, whose id is the event's id, so Temporal applies a repeated one once.
What the saga answered is kept with the event. An event about nothing paysaga knows is kept
`unmatched` (metrics, reconciliation), never dropped; one whose saga has ended (a sync settled it
first) is delivered as a no-op. A dispute's event starts the dispute's saga when none runs
(Update-with-Start), so whichever of its events comes first opens it.

Never from inside the HTTP request: the processor gets its 200 once the event is stored, and this
relay, in every worker, carries it (several relays may carry one event: the Update's id makes it
once). The relay wakes on the store's `NOTIFY` (polling every `interval` besides, for a lost
connection); a batch's sagas are reached at once, each saga's events in the order they came, and
the batch's outcomes are written in one statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Histogram
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.disputes import facts_of
from contracts.dispute import DisputeEvent, DisputeStart
from contracts.saga import ProcessorEvent
from db import processor_events
from telemetry.metrics import WORKER_REGISTRY
from workflows.dispute import DisputeWorkflow

SETTLED_AFTER = Histogram(
    "paysaga_processor_settlement_seconds", "from a charge the processor answered later to the "
    "event that settled it in its saga", registry=WORKER_REGISTRY,
    buckets=(1, 5, 30, 60, 300, 1800, 3600, 6 * 3600, 86400, 3 * 86400, 14 * 86400))

log = logging.getLogger("paysaga.inbox")


async def carry_once(engine: AsyncEngine, client: Client, task_queue: str, batch: int = 200,
                     concurrency: int = 32) -> int:
    """Carry the waiting events; how many."""
    async with engine.connect() as conn:
        rows = await processor_events.waiting(conn, batch)
    by_saga: dict[str | None, list[Any]] = defaultdict(list)
    for row in rows:
        by_saga[row.subject].append(row)
    gate = asyncio.Semaphore(concurrency)
    ended: list[tuple[int, str, str]] = []

    async def carry(saga_rows: list[Any]) -> None:
        async with gate:
            for row in saga_rows:  # one saga's events in the order they came
                status, outcome = await _deliver(engine, client, row, task_queue)
                ended.append((row.id, status, outcome))
                log.info("processor event %s (%s): %s, %s", row.event_id, row.type, status,
                         outcome)

    results = await asyncio.gather(*(carry(r) for r in by_saga.values()), return_exceptions=True)
    async with engine.begin() as conn:  # what was carried is kept, even when some could not be
        await processor_events.settle(conn, ended)
    for failed in results:
        if isinstance(failed, BaseException):
            raise failed
    return len(rows)


async def _deliver(engine: AsyncEngine, client: Client, row: Any,
                   task_queue: str) -> tuple[str, str]:
    if row.subject is None:
        return "unmatched", "it names no payment, top-up or dispute"
    if row.subject.startswith("dsp_"):
        return await _to_dispute(client, row, task_queue)
    charge = (row.payload.get("data") or {}).get("object") or {}
    event = ProcessorEvent(row.event_id, row.connector, str(charge.get("id")),
                           str(charge.get("status")), charge.get("decline_code"))
    try:
        answer = await client.get_workflow_handle(row.subject).execute_update(
            "processor_event", event, id=row.event_id, result_type=str)
        if answer == "applied" and charge.get("created_at"):
            with contextlib.suppress(ValueError):
                created = datetime.fromisoformat(str(charge["created_at"]).replace("Z", "+00:00"))
                SETTLED_AFTER.observe(max((datetime.now(UTC) - created).total_seconds(), 0.0))
        return "delivered", str(answer)
    except WorkflowUpdateFailedError as err:
        return "delivered", f"refused: {err.cause}"
    except RPCError as err:
        if err.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise
        async with engine.connect() as conn:
            known = await processor_events.known_subject(conn, row.subject)
        if known:
            return "delivered", "its saga had ended: nothing to do"
        return "unmatched", f"no payment or top-up {row.subject}"


async def _to_dispute(client: Client, row: Any, task_queue: str) -> tuple[str, str]:
    """A dispute's event starts its saga if none runs (Update-with-Start: a repeated or early
    event never makes two); a saga that has ended takes nothing more."""
    obj = (row.payload.get("data") or {}).get("object") or {}
    event = DisputeEvent(row.event_id, row.type, facts_of(obj))
    start = WithStartWorkflowOperation(
        DisputeWorkflow.run, DisputeStart(row.subject, row.connector, str(obj.get("id"))),
        id=row.subject, task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    try:
        answer = await client.execute_update_with_start_workflow(
            DisputeWorkflow.processor_event, event, id=row.event_id,
            start_workflow_operation=start)
    except WorkflowAlreadyStartedError:
        return "delivered", "its saga had ended: nothing to do"
    except WorkflowUpdateFailedError as err:
        return "delivered", f"refused: {err.cause}"
    return "delivered", str(answer)


async def run_inbox(engine: AsyncEngine, client: Client, task_queue: str,
                    interval: float = 1.0) -> None:
    wake = asyncio.Event()
    listener: processor_events.Listener | None = None
    try:
        while True:
            if listener is None or not listener.alive():
                listener = await _listen(engine, wake, listener)
            wake.clear()
            try:
                carried = await carry_once(engine, client, task_queue)
            except Exception:  # Temporal or the database away a moment: the events wait
                log.exception("carrying processor events failed")
                carried = 0
            if not carried:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), interval)
    finally:
        if listener is not None:
            await listener.close()


async def _listen(engine: AsyncEngine, wake: asyncio.Event,
                  lost: processor_events.Listener | None) -> processor_events.Listener | None:
    if lost is not None:
        await lost.close()
    try:
        return await processor_events.Listener.open(engine, wake.set)
    except Exception:  # the database away: poll until it is back
        log.warning("processor events: cannot listen; polling", exc_info=True)
        return None
