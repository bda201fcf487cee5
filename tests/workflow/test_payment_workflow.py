"""The saga's decisions, with time skipping: TTL timers and retry windows pass in milliseconds."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.payment import PaymentInput, PaymentState, Reservation
from contracts.saga import GATEWAY_UNAVAILABLE, Charge, ChargeRequest, ConnectorPlan, SagaPolicy
from tests.conftest import eventually
from tests.workflow.fakes import FakeSaga, decline, unavailable
from workflows.payment import PaymentWorkflow

# as every saga is started now (temporal_client.saga_policy): a charge's first try local, and
# `processing` published only when the charge waits past it
FAST: dict[str, Any] = dict(gateway_retry_initial_seconds=1, gateway_retry_max_interval_seconds=10,
                            gateway_retry_max_attempts=3, first_try_local=True,
                            processing_when_waiting=True)


def payment(**policy: object) -> PaymentInput:
    pid = f"pay_{uuid.uuid4().hex[:12]}"
    return PaymentInput(
        payment_id=pid, tenant_id="t", idempotency_key=pid, fingerprint="fp", user_id="u1",
        service_id="s1", amount=10050, fee=201, currency="USD",
        created_at=datetime.now(UTC).isoformat(), policy=SagaPolicy(**{**FAST, **policy}))


@asynccontextmanager
async def running(env: WorkflowEnvironment, saga: FakeSaga,
                  inp: PaymentInput) -> AsyncIterator[WorkflowHandle[PaymentWorkflow, PaymentState]]:
    queue = f"q-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[PaymentWorkflow],
                      activities=saga.activities()):
        handle = await env.client.start_workflow(PaymentWorkflow.run, inp, id=inp.payment_id,
                                                 task_queue=queue)
        try:
            yield handle
        finally:
            # a workflow left waiting (for a retry, say) would hold the shared clock back
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("test over")


def fails_once(tries: list[ChargeRequest]) -> Callable[[ChargeRequest], Charge]:
    """A charge whose first try times out (the outcome unknown) and whose next one charges;
    every try is kept in `tries`."""
    def charge(r: ChargeRequest) -> Charge:
        tries.append(r)
        if len(tries) == 1:
            raise ApplicationError("gateway timed out", type=GATEWAY_UNAVAILABLE)
        return Charge("succeeded", "ch_2", posted=True)

    return charge


async def status_of(handle: WorkflowHandle[PaymentWorkflow, PaymentState]) -> str:
    return (await handle.query(PaymentWorkflow.state)).status


async def test_happy_path_reserves_charges_and_captures(env: WorkflowEnvironment) -> None:
    saga = FakeSaga()
    async with running(env, saga, payment()) as handle:
        result = await handle.result()
    assert result.status == "completed"
    assert result.gateway_reference == "ch_1"
    assert saga.names() == ["start_payment", "charge_gateway", "capture_funds"]
    assert saga.reserves[0].total == 10050 + 201
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_a_charge_the_charge_activity_posted_is_not_captured_again(
        env: WorkflowEnvironment) -> None:
    """The charge activity captures a charge that succeeds (asked by `post`): the saga's
    capture step runs only when it could not."""
    saga = FakeSaga(charge=lambda r: Charge("succeeded", "ch_1", posted=r.post == "payment"))
    async with running(env, saga, payment()) as handle:
        result = await handle.result()
    assert result.status == "completed"
    assert saga.names() == ["start_payment", "charge_gateway"]
    request = saga.calls[1][1]
    assert (request.post, request.amount, request.post_fee) == ("payment", 10050, 201)


async def scheduled(handle: WorkflowHandle[Any, Any]) -> tuple[list[str], list[str]]:
    """The local activities (markers) and the activities a run scheduled, in order."""
    local, regular = [], []
    async for e in handle.fetch_history_events():
        if e.HasField("marker_recorded_event_attributes"):
            local.append(e.marker_recorded_event_attributes.marker_name)
        elif e.HasField("activity_task_scheduled_event_attributes"):
            regular.append(e.activity_task_scheduled_event_attributes.activity_type.name)
    return local, regular


async def test_the_charge_is_tried_first_in_the_workflow_task(env: WorkflowEnvironment) -> None:
    """A happy payment schedules no activity task: its charge runs as a local activity."""
    saga = FakeSaga(charge=lambda r: Charge("succeeded", "ch_1", posted=True))
    async with running(env, saga, payment()) as handle:
        assert (await handle.result()).status == "completed"
        local, regular = await scheduled(handle)
    assert (local, regular) == (["core_local_activity"] * 2, [])
    assert saga.names() == ["start_payment", "charge_gateway"]


async def statuses_shown(handle: WorkflowHandle[Any, Any]) -> list[tuple[str, str]]:
    """What Temporal was told, in order: each PaymentStatus upsert ('status', value) and each
    wait the run began past its workflow task (('timer', 'started'), ('activity', its name))."""
    shown: list[tuple[str, str]] = []
    async for e in handle.fetch_history_events():
        if e.HasField("upsert_workflow_search_attributes_event_attributes"):
            fields = e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            if "PaymentStatus" in fields:
                shown.append(("status", fields["PaymentStatus"].data.decode().strip('"')))
        elif e.HasField("timer_started_event_attributes"):
            shown.append(("timer", "started"))
        elif e.HasField("activity_task_scheduled_event_attributes"):
            shown.append(("activity", e.activity_task_scheduled_event_attributes.activity_type.name))
    return shown


async def test_a_payment_its_first_try_settles_shows_only_its_outcome(
        env: WorkflowEnvironment) -> None:
    """`processing` and the outcome would reach Temporal in the same workflow task completion:
    only the outcome is sent."""
    saga = FakeSaga(charge=lambda r: Charge("succeeded", "ch_1", posted=True))
    async with running(env, saga, payment()) as handle:
        assert (await handle.result()).status == "completed"
        shown = await statuses_shown(handle)
    assert shown == [("status", "completed")]


async def test_a_charge_that_outlives_its_first_try_shows_processing_while_it_waits(
        env: WorkflowEnvironment) -> None:
    """The first try failed: the retry waits past the workflow task, and Temporal shows
    `processing` from the task that began the wait."""
    async with running(env, FakeSaga(charge=fails_once([])), payment()) as handle:
        assert (await handle.result()).status == "completed"
        shown = await statuses_shown(handle)
    assert shown == [("status", "processing"), ("timer", "started"),  # the retry's backoff
                     ("activity", "charge_gateway"), ("status", "completed")]


async def test_a_first_try_that_failed_for_good_shows_processing_while_it_is_looked_up(
        env: WorkflowEnvironment) -> None:
    """One attempt only, and it failed with the outcome unknown: the lookup is an activity,
    and Temporal shows `processing` while it runs."""
    def charge(r: ChargeRequest) -> Charge:
        raise ApplicationError("gateway timed out", type=GATEWAY_UNAVAILABLE)

    saga = FakeSaga(charge=charge, lookup=lambda r: Charge("not_found", None))
    async with running(env, saga, payment(gateway_retry_max_attempts=1)) as handle:
        await eventually(lambda: status_of(handle), lambda s: s == "failed")
        shown = await statuses_shown(handle)
    assert shown == [("status", "processing"), ("activity", "lookup_charge"), ("status", "failed"),
                     ("timer", "started")]  # the manual retry window


async def test_a_processing_charge_shows_processing_while_it_waits_for_the_processor(
        env: WorkflowEnvironment) -> None:
    saga = FakeSaga(charge=lambda r: Charge("processing", "ch_async"))
    async with running(env, saga, payment()) as handle:
        await eventually(lambda: status_of(handle), lambda s: s == "processing")
        shown = await eventually(lambda: statuses_shown(handle), lambda shown: shown != [])
    assert shown[0] == ("status", "processing")


async def test_a_payment_started_before_shows_processing_as_it_did(
        env: WorkflowEnvironment) -> None:
    """A saga started before `processing_when_waiting` publishes `processing` as it did: its
    history replays as it ran."""
    saga = FakeSaga(charge=lambda r: Charge("succeeded", "ch_1", posted=True))
    async with running(env, saga, payment(processing_when_waiting=False)) as handle:
        assert (await handle.result()).status == "completed"
        shown = await statuses_shown(handle)
    assert shown == [("status", "processing"), ("status", "completed")]


async def test_a_payment_started_before_charges_as_an_activity(env: WorkflowEnvironment) -> None:
    """A saga started before the charge's first try was local (its policy says so) charges as
    it did: its history replays as it ran."""
    saga = FakeSaga(charge=lambda r: Charge("succeeded", "ch_1", posted=True))
    async with running(env, saga, payment(first_try_local=False)) as handle:
        assert (await handle.result()).status == "completed"
        local, regular = await scheduled(handle)
    assert (len(local), regular) == (1, ["charge_gateway"])


async def test_a_failed_first_try_is_retried_as_an_activity_and_never_fails_over(
        env: WorkflowEnvironment) -> None:
    """The first try timed out at the primary: it may have charged, so the retries stay there
    (same idempotency key, no fail-fast to the secondary), as an activity the Web UI shows."""
    tries: list[ChargeRequest] = []
    route = [ConnectorPlan("primary", retry_max_attempts=3), ConnectorPlan("secondary")]
    saga = FakeSaga(reserve=lambda s: Reservation(ok=True, wallet_id="wal_1", route=route),
                    charge=fails_once(tries))
    async with running(env, saga, payment()) as handle:
        result = await handle.result()
        _local, regular = await scheduled(handle)
    assert (result.status, result.connector, result.gateway_reference) == (
        "completed", "primary", "ch_2")
    assert regular == ["charge_gateway"]
    assert [(r.connector, r.fail_fast) for r in tries] == [("primary", True), ("primary", False)]
    assert "record_failover" not in saga.names()


async def test_a_slow_first_try_is_asked_again_by_the_activity_under_the_same_key(
        env: WorkflowEnvironment) -> None:
    """A first try lasts at most first_try_seconds (it holds a workflow task slot): the processor
    answers later, so the activity asks again with the same idempotency key, never elsewhere."""
    tries: list[ChargeRequest] = []

    def slow(r: ChargeRequest) -> float:
        tries.append(r)
        return 3.0 if len(tries) == 1 else 0.0

    route = [ConnectorPlan("primary", retry_max_attempts=3), ConnectorPlan("secondary")]
    saga = FakeSaga(reserve=lambda s: Reservation(ok=True, wallet_id="wal_1", route=route),
                    charge=lambda r: Charge("succeeded", "ch_1", posted=True), slow=slow)
    async with running(env, saga, payment(first_try_seconds=0.5)) as handle:
        result = await handle.result()
        _local, regular = await scheduled(handle)
    assert (result.status, result.connector) == ("completed", "primary")
    assert regular == ["charge_gateway"]
    assert [(r.attempt, r.connector, r.fail_fast) for r in tries] == [
        (0, "primary", True), (0, "primary", False)]
    assert "record_failover" not in saga.names()


async def test_a_declined_first_try_is_not_retried(env: WorkflowEnvironment) -> None:
    saga = FakeSaga(charge=decline)
    async with running(env, saga, payment(max_manual_retries=0)) as handle:
        failure = await exhausted(handle)
        _local, regular = await scheduled(handle)
    assert failure.type == "gateway_declined"
    assert regular == []
    assert saga.names().count("charge_gateway") == 1


async def exhausted(handle: WorkflowHandle[PaymentWorkflow, PaymentState]) -> ApplicationError:
    """An exhausted payment's workflow fails, with the failure code as the error type."""
    with pytest.raises(WorkflowFailureError) as err:
        await handle.result()
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
    assert (await handle.query(PaymentWorkflow.state)).status == "exhausted"
    cause = err.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def test_insufficient_funds_fails_without_calling_the_gateway(env: WorkflowEnvironment) -> None:
    saga = FakeSaga(reserve=lambda s: Reservation(ok=False, failure_code="insufficient_funds",
                                                  failure_message="too poor"))
    async with running(env, saga, payment(max_manual_retries=0)) as handle:
        failure = await exhausted(handle)
    assert failure.type == "insufficient_funds"
    assert failure.message == "too poor"
    assert "charge_gateway" not in saga.names()


async def test_decline_releases_the_hold_and_fails(env: WorkflowEnvironment) -> None:
    saga = FakeSaga(charge=decline)
    async with running(env, saga, payment()) as handle:
        state = await eventually(lambda: handle.query(PaymentWorkflow.state),
                                 lambda s: s.status == "failed")
    assert state.failure_code == "gateway_declined"
    assert saga.names().count("charge_gateway") == 1  # a decline is not retried
    assert ("release_hold", saga.calls[-2][1]) == saga.calls[-2]
    assert saga.calls[-2][1].reason == "gateway_declined"
    assert "capture_funds" not in saga.names()


async def test_unknown_outcome_that_charged_is_captured_not_released(env: WorkflowEnvironment) -> None:
    saga = FakeSaga(charge=unavailable, lookup=lambda r: Charge("succeeded", "ch_late"))
    async with running(env, saga, payment()) as handle:
        result = await handle.result()
    assert result.status == "completed"
    assert saga.names().count("charge_gateway") == 3  # maximum_attempts
    assert "release_hold" not in saga.names()
    assert saga.names()[-2:] == ["lookup_charge", "capture_funds"]


async def test_unknown_outcome_that_did_not_charge_is_released(env: WorkflowEnvironment) -> None:
    saga = FakeSaga(charge=unavailable, lookup=lambda r: Charge("not_found"))
    async with running(env, saga, payment(max_manual_retries=0)) as handle:
        failure = await exhausted(handle)
    assert failure.type == "gateway_unavailable"
    assert "capture_funds" not in saga.names()
    release = next(step for name, step in saga.calls if name == "release_hold")
    assert release.reason == "gateway_unavailable"


async def test_hold_expiry_releases_with_reservation_expired(env: WorkflowEnvironment) -> None:
    # The gateway stays unreachable far longer than the 15-minute hold.
    saga = FakeSaga(charge=unavailable, lookup=lambda r: Charge("not_found"))
    inp = payment(max_manual_retries=0, gateway_retry_max_attempts=1000,
                  gateway_retry_max_interval_seconds=60)
    async with running(env, saga, inp) as handle:
        failure = await exhausted(handle)
    assert failure.type == "reservation_expired"
    release = next(step for name, step in saga.calls if name == "release_hold")
    assert release.reason == "reservation_expired"
    assert saga.reserves[0].expires_at  # the ledger keeps the same expiry as the timer


async def test_hold_expiry_after_the_gateway_charged_still_captures(env: WorkflowEnvironment) -> None:
    saga = FakeSaga(charge=unavailable, lookup=lambda r: Charge("succeeded", "ch_slow"))
    inp = payment(gateway_retry_max_attempts=1000, gateway_retry_max_interval_seconds=60)
    async with running(env, saga, inp) as handle:
        result = await handle.result()
    assert result.status == "completed"
    assert "release_hold" not in saga.names()


async def test_three_failed_manual_retries_exhaust_the_payment(env: WorkflowEnvironment) -> None:
    saga = FakeSaga(charge=decline)
    async with running(env, saga, payment()) as handle:
        for retry in range(1, 4):
            await eventually(lambda: status_of(handle), lambda s: s == "failed")
            await handle.signal(PaymentWorkflow.retry)
            def moved_on(s: PaymentState, n: int = retry) -> bool:
                return s.manual_retries == n and s.status != "pending"

            await eventually(lambda: handle.query(PaymentWorkflow.state), moved_on)
        failure = await exhausted(handle)
        state = await handle.query(PaymentWorkflow.state)
    assert failure.type == "gateway_declined"
    assert state.manual_retries == 3
    attempts = [req.attempt for name, req in saga.calls if name == "charge_gateway"]
    assert attempts == [0, 1, 2, 3]  # each manual retry is a new gateway idempotency key


async def test_a_manual_retry_can_succeed(env: WorkflowEnvironment) -> None:
    outcomes = iter([decline, lambda r: Charge("succeeded", "ch_2")])
    saga = FakeSaga(charge=lambda r: next(outcomes)(r))
    async with running(env, saga, payment()) as handle:
        await eventually(lambda: status_of(handle), lambda s: s == "failed")
        state = await handle.execute_update(PaymentWorkflow.request_retry)
        assert state.manual_retries == 1
        result = await handle.result()
        _local, regular = await scheduled(handle)
    assert result.status == "completed"
    assert saga.names().count("retry_payment") == 1  # a retry starts again from the reservation
    assert [r.attempt for r in saga.reserves] == [0, 1]
    # the first attempt's charge ran local; the retry's is an activity: the retry update
    # answered once the new attempt was reserved, before its charge
    assert regular == ["charge_gateway"]


async def test_retry_update_is_refused_unless_failed(env: WorkflowEnvironment) -> None:
    saga = FakeSaga(charge=unavailable, lookup=lambda r: Charge("not_found"))
    inp = payment(gateway_retry_max_attempts=1000, gateway_retry_max_interval_seconds=60)
    async with running(env, saga, inp) as handle:
        await eventually(lambda: status_of(handle), lambda s: s == "processing")
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(PaymentWorkflow.request_retry)
    assert isinstance(err.value.cause, ApplicationError)
    assert err.value.cause.type == "CannotRetryPayment"
    assert "status processing" in err.value.cause.message


async def test_retry_window_elapsing_exhausts_the_payment(env: WorkflowEnvironment) -> None:
    saga = FakeSaga(charge=decline)
    async with running(env, saga, payment(manual_retry_window_seconds=72 * 3600)) as handle:
        failure = await exhausted(handle)  # time skips over the 72 hours
        state = await handle.query(PaymentWorkflow.state)
    assert "the manual retry window elapsed" in failure.message
    assert state.manual_retries == 0


async def test_cancel_a_failed_payment(env: WorkflowEnvironment) -> None:
    saga = FakeSaga(charge=decline)
    async with running(env, saga, payment()) as handle:
        await eventually(lambda: status_of(handle), lambda s: s == "failed")
        state = await handle.execute_update(PaymentWorkflow.request_cancel)
        result = await handle.result()
    assert state.status == "canceled"
    assert result.status == "canceled"
    assert saga.names()[-1] == "cancel_payment"
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_outcome_update_answers_when_the_attempt_settles(env: WorkflowEnvironment) -> None:
    saga = FakeSaga(charge=decline)
    async with running(env, saga, payment()) as handle:
        state = await handle.execute_update(PaymentWorkflow.outcome)
        assert state.status == "failed"  # the failure is recorded: waiting for an operator
        assert saga.names()[-1] == "fail_payment"
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING


async def test_cancel_is_refused_once_the_gateway_may_have_been_called(
        env: WorkflowEnvironment) -> None:
    saga = FakeSaga()
    async with running(env, saga, payment()) as handle:
        await handle.result()
    saga2 = FakeSaga(charge=unavailable, lookup=lambda r: Charge("not_found"))
    inp = payment(gateway_retry_max_attempts=1000, gateway_retry_max_interval_seconds=60)
    async with running(env, saga2, inp) as handle2:
        await eventually(lambda: status_of(handle2), lambda s: s == "processing")
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle2.execute_update(PaymentWorkflow.request_cancel)
    assert isinstance(err.value.cause, ApplicationError)
    assert err.value.cause.type == "CannotCancelPayment"
