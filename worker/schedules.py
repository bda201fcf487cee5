"""The worker's Temporal Schedules, created once (idempotently) at start; visible in the Web UI."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
)

from contracts.reconciliation import ReconcileRun
from workflows.reconciliation import ReconciliationWorkflow
from workflows.sweeper import HoldSweeperWorkflow

SWEEPER_ID = "paysaga-hold-sweeper"
RECONCILIATION_ID = "paysaga-reconciliation"


async def ensure_sweeper(client: Client, task_queue: str, every: timedelta) -> None:
    with contextlib.suppress(ScheduleAlreadyRunningError):
        await client.create_schedule(SWEEPER_ID, Schedule(
            action=ScheduleActionStartWorkflow(HoldSweeperWorkflow.run, id=f"{SWEEPER_ID}-run",
                                               task_queue=task_queue),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        ))


async def ensure_reconciliation(client: Client, task_queue: str, every: timedelta,
                                run: ReconcileRun) -> None:
    """Every `every`, a reconciliation of the recent window (`temporal schedule trigger
    --schedule-id paysaga-reconciliation` runs one now). A changed interval or window is applied
    to the existing schedule."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(ReconciliationWorkflow.run, run,
                                           id=f"{RECONCILIATION_ID}-run", task_queue=task_queue),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(RECONCILIATION_ID, schedule)
    except ScheduleAlreadyRunningError:
        await client.get_schedule_handle(RECONCILIATION_ID).update(
            lambda _: ScheduleUpdate(schedule=schedule))
