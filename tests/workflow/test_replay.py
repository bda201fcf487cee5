"""The replay gate in CI: recorded histories of every saga replay against the current code, so a
change that would break a running saga fails here before any build with it can be made current
(`python -m deploy promote` runs the same gate against the server's histories).

histories/v2/ holds `Payment` and `Refund` runs recorded with fakes under time skipping
(record_histories.py); histories/v3/ holds every saga as it ran against the real servers in the
system suite (tests/system/test_zz_replay.py); histories/v4/ the manual-capture shapes (captured
in part, voided, lapsed) and the later outcomes (settled by an event, by a sync, an abandoned
3-D Secure), the charges posted by the charge activity, the charges first tried as a local
activity and the payments that publish `processing` only when the charge waits past its first
try, recorded with fakes under time skipping. Which are kept, and for how
long: README, "Recorded histories". Saga v1's (`PaymentWorkflow`) went with its code once the drain
check said none ran.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from contracts.payment import PaymentInput
from deploy.gate import behaviors
from temporal_client.converter import data_converter
from tests.conftest import TEST_RING
from worker.main import WORKFLOWS

HERE = Path(__file__).parent / "histories"
HISTORIES = sorted(HERE.glob("v*/*.json"))


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def _kind(path: Path) -> str:
    return WorkflowHistory.from_json(path.stem, path.read_text()).events[0] \
        .workflow_execution_started_event_attributes.workflow_type.name


def test_every_representative_shape_is_recorded() -> None:
    assert {_id(p) for p in HISTORIES} >= {
        "v2/payment_happy", "v2/payment_waited_for", "v2/payment_declined_then_retried",
        "v2/payment_expired_hold", "v2/payment_canceled", "v2/payment_exhausted_window",
        "v2/refund_posted", "v2/refund_refused",
        "v4/payment_manual_captured", "v4/payment_manual_voided", "v4/payment_manual_expired",
        "v4/payment_async_event", "v4/payment_async_sync", "v4/payment_3ds_abandoned",
        "v4/dispute_won", "v4/dispute_no_response",
        "v4/payment_posted_with_charge", "v4/payment_posted_after_a_retry",
        "v4/payment_local_charge", "v4/payment_local_charge_failed_then_activity",
        "v4/payment_local_charge_declined_then_retried",
        "v4/payment_quiet_processing", "v4/payment_quiet_processing_then_retried",
        "v4/payment_quiet_processing_then_async"}


def test_every_saga_this_build_runs_has_recorded_histories() -> None:
    assert {_kind(p) for p in HISTORIES} >= set(behaviors(WORKFLOWS))


def test_no_fixture_is_of_a_saga_this_build_does_not_run() -> None:
    """A retired saga's histories go with its code (README: retiring a saga)."""
    assert {_kind(p) for p in HISTORIES} <= set(behaviors(WORKFLOWS))


@pytest.mark.parametrize("path", HISTORIES, ids=_id)
async def test_history_replays_on_current_code(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())  # noqa: ASYNC240
    # recorded payloads are plain (decoded when recorded); the codec passes plain ones through
    replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter(TEST_RING))
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
