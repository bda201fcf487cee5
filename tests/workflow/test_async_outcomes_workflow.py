"""Outcomes that arrive later (issue 29), with time skipping: a charge the processor answered
`processing` waits for the processor's event (an Update whose id is the event id) or, when none
comes, asks the processor itself after 60 s, 300 s later, then ever less often, for up to 14
days."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from contracts.saga import Charge, ProcessorEvent
from tests.conftest import eventually
from tests.workflow.fakes import FakeSaga
from tests.workflow.test_payment_workflow import payment, running, status_of
from workflows.payment import PaymentWorkflow

DAY = timedelta(days=1)


def processing(lookups: list[Charge] | None = None) -> FakeSaga:
    """The charge answers `processing`; each lookup answers the next of `lookups` (then
    still processing)."""
    answers = iter(lookups or [])
    return FakeSaga(charge=lambda r: Charge("processing", "ch_async"),
                    lookup=lambda r: next(answers, Charge("processing", "ch_async")))


def settled(event_id: str, status: str = "succeeded") -> ProcessorEvent:
    return ProcessorEvent(event_id, "primary", "ch_async", status,
                          "insufficient_funds" if status == "declined" else None)


async def test_a_bank_debit_settled_by_its_event_on_day_thirteen(env: WorkflowEnvironment) -> None:
    saga = processing()
    async with running(env, saga, payment()) as handle:
        await eventually(lambda: status_of(handle), lambda s: s == "processing")
        await eventually(lambda: _names(saga), lambda n: "await_processor" in n)
        await env.sleep(13 * DAY)
        answer = await handle.execute_update(PaymentWorkflow.processor_event, settled("evt_1"),
                                             id="evt_1")
        assert answer == "applied"
        final = await handle.result()
    assert final.status == "completed"
    assert saga.names().count("capture_funds") == 1
    # it asked the processor after 60 s, 300 s later, then ever less often (up to every 6 h)
    assert 40 < saga.names().count("lookup_charge") < 80


async def test_a_lost_event_is_found_by_the_sync(env: WorkflowEnvironment) -> None:
    saga = processing([Charge("processing", "ch_async"), Charge("succeeded", "ch_async")])
    async with running(env, saga, payment()) as handle:
        final = await handle.result()
    assert final.status == "completed"
    assert saga.names().count("lookup_charge") == 2  # at 60 s: still processing; at 360 s: done


async def test_an_event_after_the_sync_settled_it_changes_nothing(env: WorkflowEnvironment) -> None:
    saga = processing([Charge("declined", None, "insufficient_funds")])
    async with running(env, saga, payment(max_manual_retries=1)) as handle:
        await eventually(lambda: _names(saga), lambda n: "await_processor" in n)
        await env.sleep(timedelta(minutes=2))  # the first sync, at 60 s, settles it
        await eventually(lambda: status_of(handle), lambda s: s == "failed")
        late = await handle.execute_update(PaymentWorkflow.processor_event,
                                           settled("evt_late"), id="evt_late")
        assert late.startswith("ignored")
        assert await status_of(handle) == "failed"
    assert "capture_funds" not in saga.names()
    assert saga.names().count("release_hold") == 1


async def test_the_same_event_twice_is_applied_once(env: WorkflowEnvironment) -> None:
    saga = processing()
    async with running(env, saga, payment()) as handle:
        await eventually(lambda: _names(saga), lambda n: "await_processor" in n)
        with env.auto_time_skipping_disabled():
            first = await handle.execute_update(PaymentWorkflow.processor_event,
                                                settled("evt_2"), id="evt_2")
            again = await handle.execute_update(PaymentWorkflow.processor_event,
                                                settled("evt_2"), id="evt_2")
        await handle.result()
    assert (first, again) == ("applied", "applied")  # the same update: Temporal answered once
    assert saga.names().count("capture_funds") == 1


async def test_nothing_by_the_deadline_releases_the_hold(env: WorkflowEnvironment) -> None:
    saga = processing()
    async with running(env, saga, payment(max_manual_retries=0)) as handle:
        await eventually(lambda: _names(saga), lambda n: "await_processor" in n)
        await env.sleep(15 * DAY)
        state = await eventually(lambda: handle.query(PaymentWorkflow.state),
                                 lambda s: s.status == "exhausted")
    assert state.failure_code == "reservation_expired"
    assert "capture_funds" not in saga.names()


async def _names(saga: FakeSaga) -> list[str]:
    return saga.names()


def three_ds() -> FakeSaga:
    return FakeSaga(charge=lambda r: Charge("requires_action", "ch_async",
                                            redirect_url="http://gw/authenticate/ch_async"),
                    lookup=lambda r: Charge("requires_action", "ch_async"))


async def test_a_3ds_payment_waits_for_the_customer_and_the_event_settles_it(
        env: WorkflowEnvironment) -> None:
    saga = three_ds()
    async with running(env, saga, payment()) as handle:
        with env.auto_time_skipping_disabled():
            parked = await handle.execute_update(PaymentWorkflow.outcome)
            assert (parked.status, parked.next_action_url) == (
                "requires_action", "http://gw/authenticate/ch_async")  # `Prefer: wait` answers
            assert await handle.execute_update(PaymentWorkflow.processor_event,
                                               settled("evt_3ds"), id="evt_3ds") == "applied"
        final = await handle.result()
    assert final.status == "completed"
    [(_, step)] = [c for c in saga.calls if c[0] == "await_processor"]
    assert step.next_action_url == "http://gw/authenticate/ch_async"


async def test_an_abandoned_3ds_fails_with_authentication_timeout_and_voids(
        env: WorkflowEnvironment) -> None:
    saga = three_ds()
    async with running(env, saga, payment(max_manual_retries=0)) as handle:
        await eventually(lambda: _names(saga), lambda n: "await_processor" in n)
        await env.sleep(timedelta(minutes=16))  # ACTION_TIMEOUT_SECONDS: 15 minutes
        state = await eventually(lambda: handle.query(PaymentWorkflow.state),
                                 lambda s: s.status == "exhausted")
    assert state.failure_code == "authentication_timeout"
    assert "void_charge" in saga.names()
    assert saga.names().index("void_charge") < saga.names().index("release_hold")
    assert "capture_funds" not in saga.names()
