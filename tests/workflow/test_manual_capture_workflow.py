"""Authorize now, capture later (issue 28), with time skipping: the payment workflow is the
authorization's 7-day window, one durable timer; a capture on day 6, the expiry on day 7, a void,
and a capture racing the deadline (exactly one of them wins)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from contracts.payment import Captured, CaptureFunds, CaptureRequest, PaymentInput
from contracts.saga import Charge, SagaPolicy
from tests.conftest import eventually
from tests.workflow.fakes import FakeSaga
from tests.workflow.test_payment_workflow import FAST, running, status_of
from workflows.payment import PaymentWorkflow

DAY = timedelta(days=1)


def manual(window: timedelta = 7 * DAY, amount: int = 10000,
           now: datetime | None = None) -> PaymentInput:
    """A manual payment whose window ends `window` after `now` (the test server's clock, which
    time skipping moves ahead of the wall clock)."""
    pid = f"pay_{uuid.uuid4().hex[:12]}"
    now = now or datetime.now(UTC)
    return PaymentInput(
        payment_id=pid, tenant_id="t", idempotency_key=pid, fingerprint="fp", user_id="u1",
        service_id="s1", amount=amount, fee=200, currency="USD", created_at=now.isoformat(),
        policy=SagaPolicy(**FAST),
        capture_method="manual", capture_before=(now + window).isoformat(), fee_bps=200)


def authorizing() -> FakeSaga:
    return FakeSaga(charge=lambda r: Charge("authorized", "ch_auth") if not r.capture
                    else Charge("succeeded", "ch_wrong"))


async def test_it_authorizes_parks_in_requires_capture_and_captures_on_day_six(
        env: WorkflowEnvironment) -> None:
    saga = authorizing()
    inp = manual(now=await env.get_current_time())
    async with running(env, saga, inp) as handle:
        with env.auto_time_skipping_disabled():  # time moves only when the test says so
            parked = await handle.execute_update(PaymentWorkflow.outcome)
            assert parked.status == "requires_capture"  # `Prefer: wait` answers here
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
            [(_, charge)] = [c for c in saga.calls if c[0] == "charge_gateway"]
            assert charge.capture is False
            assert charge.post is None  # an authorization is posted when it is captured
        await env.sleep(6 * DAY)
        with env.auto_time_skipping_disabled():
            assert await status_of(handle) == "requires_capture"
            done = await handle.execute_update(PaymentWorkflow.capture, CaptureRequest("60.00"))
            assert done.status == "completed"
        await handle.result()
    [(_, captured)] = [c for c in saga.calls if c[0] == "capture_funds"]
    assert isinstance(captured, CaptureFunds)
    assert (captured.amount, captured.fee) == (6000, 120)  # the fee on what was captured
    assert saga.names() == ["start_payment", "charge_gateway", "authorize_payment",
                            "capture_charge", "capture_funds"]
    assert inp.capture_before is not None
    assert saga.reserves[0].expires_at.startswith(inp.capture_before[:16])  # the hold's window


async def test_an_uncaptured_authorization_expires_on_day_seven(env: WorkflowEnvironment) -> None:
    saga = authorizing()
    async with running(env, saga, manual(now=await env.get_current_time())) as handle:
        await handle.execute_update(PaymentWorkflow.outcome)
        await env.sleep(7 * DAY + timedelta(minutes=1))
        final = await handle.result()
    assert (final.status, final.failure_code) == ("expired", "authorization_expired")
    assert saga.names()[-2:] == ["void_charge", "end_authorization"]
    assert "capture_charge" not in saga.names()
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_a_cancel_voids_the_authorization(env: WorkflowEnvironment) -> None:
    saga = authorizing()
    async with running(env, saga, manual(now=await env.get_current_time())) as handle:
        with env.auto_time_skipping_disabled():  # the window must not lapse before the cancel
            await handle.execute_update(PaymentWorkflow.outcome)
            canceled = await handle.execute_update(PaymentWorkflow.request_cancel, "ops")
        assert canceled.status == "canceled"
        await handle.result()
    [(_, ended)] = [c for c in saga.calls if c[0] == "end_authorization"]
    assert (ended.outcome, ended.requested_by) == ("voided", "ops")


async def test_a_capture_is_refused_twice_above_the_authorization_and_after_expiry(
        env: WorkflowEnvironment) -> None:
    saga = authorizing()
    inp = manual(window=DAY, now=await env.get_current_time())
    async with running(env, saga, inp) as handle:
        with env.auto_time_skipping_disabled():
            await handle.execute_update(PaymentWorkflow.outcome)
            with pytest.raises(WorkflowUpdateFailedError, match="update failed"):
                await handle.execute_update(PaymentWorkflow.capture, CaptureRequest("100.01"))
            await handle.execute_update(PaymentWorkflow.capture, CaptureRequest())
        # one capture per payment (the workflow has completed: the server refuses the update)
        with pytest.raises((WorkflowUpdateFailedError, RPCError)):
            await handle.execute_update(PaymentWorkflow.capture, CaptureRequest("1.00"))
    expired = authorizing()
    late = manual(window=DAY, now=await env.get_current_time())
    async with running(env, expired, late) as handle:
        await handle.execute_update(PaymentWorkflow.outcome)
        await env.sleep(DAY + timedelta(minutes=1))
        await eventually(lambda: status_of(handle), lambda s: s == "expired")
        with pytest.raises((WorkflowUpdateFailedError, RPCError)):
            await handle.execute_update(PaymentWorkflow.capture, CaptureRequest())


async def test_a_capture_the_processor_refuses_as_expired_ends_the_payment_expired(
        env: WorkflowEnvironment) -> None:
    saga = authorizing()
    saga.capture = lambda c: Captured("refused", code="authorization_expired")
    async with running(env, saga, manual(now=await env.get_current_time())) as handle:
        with env.auto_time_skipping_disabled():
            await handle.execute_update(PaymentWorkflow.outcome)
            after = await handle.execute_update(PaymentWorkflow.capture, CaptureRequest())
    assert (after.status, after.failure_code) == ("expired", "authorization_expired")
    assert "capture_funds" not in saga.names()
    assert saga.names()[-2:] == ["void_charge", "end_authorization"]


async def test_a_capture_racing_the_deadline_either_wins_or_is_refused_never_both(
        env: WorkflowEnvironment) -> None:
    outcomes = []
    for i in range(6):  # captures sent in the window's last instants, and just after
        saga = authorizing()
        async with running(env, saga, manual(window=timedelta(hours=1),
                                             now=await env.get_current_time())) as handle:
            await handle.execute_update(PaymentWorkflow.outcome)
            await env.sleep(timedelta(hours=1) - timedelta(milliseconds=400) + i * timedelta(
                milliseconds=150))
            try:
                answered = (await handle.execute_update(PaymentWorkflow.capture,
                                                        CaptureRequest())).status
            except (WorkflowUpdateFailedError, RPCError):  # refused, or the run had closed
                answered = "refused"
            final = await handle.result()
        captured = "capture_funds" in saga.names()
        released = "end_authorization" in saga.names()
        assert captured != released  # exactly one: never both, never neither
        assert final.status == ("completed" if captured else "expired")
        outcomes.append((answered, final.status))
    # sent before the deadline: the capture won; after it: refused, the authorization expired
    assert outcomes == [("completed", "completed")] * 3 + [("refused", "expired")] * 3
