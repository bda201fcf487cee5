"""The yardstick: a bare workflow with as many no-op activities as a happy payment runs."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

STEPS = ("open_payment", "reserve_funds", "charge_gateway", "capture_funds")


@activity.defn(name="bare_noop")
async def noop(step: str) -> str:
    return step


@workflow.defn
class BareWorkflow:
    @workflow.run
    async def run(self, n: int) -> int:
        for step in STEPS:
            await workflow.execute_activity("bare_noop", step,
                                            start_to_close_timeout=timedelta(seconds=30))
        return n
