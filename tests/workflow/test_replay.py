"""Recorded histories replay against the current workflow code: a change that would break
running payments fails here. Re-record with `python -m tests.workflow.record_histories` only
for a change made compatible with `workflow.patched` (see README)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from workflows.payment import PaymentWorkflow
from workflows.types import PaymentInput

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_every_representative_shape_is_recorded() -> None:
    assert {p.stem for p in HISTORIES} >= {"happy", "declined_then_retried", "refunded",
                                           "expired_hold", "canceled"}


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_history_replays_on_current_code(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())  # noqa: ASYNC240
    result = await Replayer(workflows=[PaymentWorkflow]).replay_workflow(history)
    assert result.replay_failure is None


@workflow.defn(name="PaymentWorkflow")
class ReorderedSaga:
    """The saga with its first two steps swapped: not what the recorded histories did."""

    @workflow.run
    async def run(self, payment: PaymentInput) -> None:
        for name in ("reserve_funds", "open_payment"):
            await workflow.execute_activity(name, payment,
                                            start_to_close_timeout=timedelta(seconds=30))


async def test_a_nondeterministic_change_is_caught() -> None:
    path = next(p for p in HISTORIES if p.stem == "happy")
    history = WorkflowHistory.from_json("happy", path.read_text())
    replay = await Replayer(workflows=[ReorderedSaga],
                            workflow_runner=UnsandboxedWorkflowRunner()).replay_workflow(
        history, raise_on_replay_failure=False)
    assert replay.replay_failure is not None
