"""The yardsticks: bare workflows of 4, 1 or 0 no-op activities, as hand-written Temporal code
would run the steps a happy payment runs (4), or the one activity task a payment is on
Temporal's side (1), or nothing but the workflow (0)."""

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
    async def run(self, n: int, activities: int = 4) -> int:
        for step in STEPS[:activities]:
            await workflow.execute_activity("bare_noop", step,
                                            start_to_close_timeout=timedelta(seconds=30))
        return n
