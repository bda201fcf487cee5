"""The hold sweeper: run by a Temporal Schedule, it settles holds whose payment workflow is gone
(for example terminated by an operator) once they are past their expiry."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior


# Pinned: one sweep, minutes at most.
@workflow.defn(versioning_behavior=VersioningBehavior.PINNED)
class HoldSweeperWorkflow:
    @workflow.run
    async def run(self) -> int:
        swept: int = await workflow.execute_activity(
            "sweep_orphaned_holds", start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(maximum_attempts=3))
        return swept
