"""Recorded histories replay against the current workflow code: a change that would break
running payments fails here.

histories/v1/ holds saga v1 (`PaymentWorkflow`) runs recorded before the upgrade, which the
frozen `PaymentWorkflowV1` must still finish; histories/v2/ holds `Payment` and `Refund` runs.
Never re-record a fixture whose shape may still be running (README: upgrading the saga)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from contracts.payment import PaymentInput
from legacy.payment_v1 import PaymentWorkflowV1
from workflows.payment import PaymentWorkflow
from workflows.refund import RefundWorkflow

HERE = Path(__file__).parent / "histories"
HISTORIES = sorted(HERE.glob("v*/*.json"))


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def test_every_representative_shape_is_recorded() -> None:
    assert {_id(p) for p in HISTORIES} >= {
        "v1/happy", "v1/declined_then_retried", "v1/refunded", "v1/expired_hold", "v1/canceled",
        "v1/completed_then_closed_by_upgrade",
        "v2/payment_happy", "v2/payment_waited_for", "v2/payment_declined_then_retried",
        "v2/payment_expired_hold", "v2/payment_canceled", "v2/payment_exhausted_window",
        "v2/refund_posted", "v2/refund_refused"}


def test_v1_fixtures_are_saga_v1_and_v2_fixtures_are_not() -> None:
    for path in HISTORIES:
        started = json.loads(path.read_text())["events"][0]
        kind = started["workflowExecutionStartedEventAttributes"]["workflowType"]["name"]
        assert (kind == "PaymentWorkflow") == (path.parent.name == "v1"), path


@pytest.mark.parametrize("path", HISTORIES, ids=_id)
async def test_history_replays_on_current_code(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())  # noqa: ASYNC240
    replayer = Replayer(workflows=[PaymentWorkflow, RefundWorkflow, PaymentWorkflowV1])
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None


@workflow.defn(name="Payment")
class ReorderedSaga:
    """Saga v2 charging before it reserves: not what the recorded histories did."""

    @workflow.run
    async def run(self, payment: PaymentInput) -> None:
        for name in ("charge_gateway", "start_payment"):
            await workflow.execute_activity(name, payment,
                                            start_to_close_timeout=timedelta(seconds=30))


async def test_a_nondeterministic_change_is_caught() -> None:
    path = HERE / "v2" / "payment_happy.json"
    history = WorkflowHistory.from_json("happy", path.read_text())
    replay = await Replayer(workflows=[ReorderedSaga],
                            workflow_runner=UnsandboxedWorkflowRunner()).replay_workflow(
        history, raise_on_replay_failure=False)
    assert replay.replay_failure is not None
