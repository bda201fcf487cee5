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
)

from workflows.sweeper import HoldSweeperWorkflow

SWEEPER_ID = "paysaga-hold-sweeper"


async def ensure_sweeper(client: Client, task_queue: str, every: timedelta) -> None:
    with contextlib.suppress(ScheduleAlreadyRunningError):
        await client.create_schedule(SWEEPER_ID, Schedule(
            action=ScheduleActionStartWorkflow(HoldSweeperWorkflow.run, id=f"{SWEEPER_ID}-run",
                                               task_queue=task_queue),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        ))
