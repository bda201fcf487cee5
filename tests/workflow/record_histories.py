"""Record representative histories of the current sagas as JSON fixtures for the replay test.

    .venv/bin/python -m tests.workflow.record_histories            # saga v2 -> histories/v2/
    .venv/bin/python -m tests.workflow.record_histories manual     # manual capture -> histories/v4/
    .venv/bin/python -m tests.workflow.record_histories async      # later outcomes -> histories/v4/
    .venv/bin/python -m tests.workflow.record_histories disputes   # disputes -> histories/v4/
    .venv/bin/python -m tests.workflow.record_histories posted     # posted with the charge -> v4/
    .venv/bin/python -m tests.workflow.record_histories local      # charge's first try local -> v4/

(Every saga's histories as it ran against the real servers are recorded by the system suite:
PAYSAGA_RECORD_HISTORIES=1, tests/system/test_zz_replay.py.)

Fixtures of a shape that may still be running are never deleted or re-recorded: an incompatible
change gets a new workflow type (as saga v2 did) or `workflow.patched`, then new fixtures beside
the old ones (README: upgrading the saga).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.payment import PaymentInput
from contracts.refund import RefundStep
from contracts.saga import GATEWAY_DECLINED, GATEWAY_UNAVAILABLE, Charge, ChargeRequest, SagaPolicy
from devstack.temporal import register_search_attributes, test_server_binary
from tests.conftest import eventually
from tests.workflow.fakes import FakeSaga, decline, unavailable
from tests.workflow.test_payment_workflow import payment
from workflows.payment import PaymentWorkflow
from workflows.refund import RefundWorkflow

HERE = Path(__file__).parent / "histories"
Handle = WorkflowHandle[Any, Any]


async def finish(handle: Handle) -> None:
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()


async def failed(handle: Handle) -> None:
    await eventually(lambda: handle.query("state"), lambda s: s["status"] == "failed")


async def declined_then_retried(handle: Handle) -> None:
    await failed(handle)
    await handle.execute_update(PaymentWorkflow.request_retry)
    await finish(handle)


async def canceled(handle: Handle) -> None:
    await failed(handle)
    await handle.signal(PaymentWorkflow.cancel)
    await finish(handle)


async def waited_for(handle: Handle) -> None:
    await handle.execute_update(PaymentWorkflow.outcome)
    await finish(handle)


def payments() -> dict[str, tuple[FakeSaga, dict[str, Any], Callable[[Handle], Awaitable[None]]]]:
    flaky = iter([decline, lambda r: Charge("succeeded", "ch_2")])
    return {
        "happy": (FakeSaga(), {}, finish),
        "waited_for": (FakeSaga(), {}, waited_for),
        "declined_then_retried": (FakeSaga(charge=lambda r: next(flaky)(r)), {}, declined_then_retried),
        "expired_hold": (FakeSaga(charge=unavailable, lookup=lambda r: Charge("not_found")),
                         {"max_manual_retries": 0, "gateway_retry_max_attempts": 1000,
                          "gateway_retry_max_interval_seconds": 60}, finish),
        "canceled": (FakeSaga(charge=decline), {}, canceled),
        "exhausted_window": (FakeSaga(charge=decline), {}, finish),
    }


def refuse(_: RefundStep) -> str:
    raise ApplicationError("refused", type=GATEWAY_DECLINED, non_retryable=True)


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_binary(), test_server_startup_timeout=timedelta(seconds=60))
    await register_search_attributes(env.client)
    (HERE / "v2").mkdir(parents=True, exist_ok=True)
    workflows = [PaymentWorkflow, RefundWorkflow]
    try:
        async def record(path: Path, saga: FakeSaga, start: Callable[[str], Awaitable[Handle]],
                         drive: Callable[[Handle], Awaitable[None]]) -> None:
            queue = f"record-{uuid.uuid4()}"
            async with Worker(env.client, task_queue=queue, workflows=workflows,
                              activities=saga.activities()):
                handle = await start(queue)
                await drive(handle)
                history = await handle.fetch_history()
            path.write_text(history.to_json())  # noqa: ASYNC240
            print(f"recorded {path.name}: {len(history.events)} events")

        for name, (saga, policy, drive) in payments().items():
            inp = payment(**policy)
            await record(HERE / "v2" / f"payment_{name}.json", saga,
                         lambda q, inp=inp: env.client.start_workflow(  # type: ignore[misc]
                             PaymentWorkflow.run, inp, id=inp.payment_id, task_queue=q),
                         drive)
        for name, saga in (("refund_posted", FakeSaga()), ("refund_refused", FakeSaga(refund=refuse))):
            step = RefundStep("pay_1", "t", f"rfd_{uuid.uuid4().hex[:10]}", 5000, 100, "USD", "ch_1",
                              fingerprint="fp")
            await record(HERE / "v2" / f"{name}.json", saga,
                         lambda q, step=step: env.client.start_workflow(  # type: ignore[misc]
                             RefundWorkflow.run, args=[step, SagaPolicy()], id=step.refund_id,
                             task_queue=q),
                         finish)
    finally:
        await env.shutdown()


def manual_captures() -> dict[str, Callable[[Handle], Awaitable[None]]]:
    """The manual-capture shapes (issue 28): captured in part, voided, lapsed."""
    from contracts.payment import CaptureRequest

    async def captured(handle: Handle) -> None:
        await handle.execute_update(PaymentWorkflow.outcome)
        await handle.execute_update(PaymentWorkflow.capture, CaptureRequest("60.00"))
        await finish(handle)

    async def voided(handle: Handle) -> None:
        await handle.execute_update(PaymentWorkflow.outcome)
        await handle.execute_update(PaymentWorkflow.request_cancel, "ops")
        await finish(handle)

    async def lapsed(handle: Handle) -> None:
        await handle.execute_update(PaymentWorkflow.outcome)
        await finish(handle)  # time skipping runs the window out

    return {"captured": captured, "voided": voided, "expired": lapsed}


# a v4 shape: its fakes, its input, how the test drives it, whether time may skip meanwhile
Shape = tuple[FakeSaga, PaymentInput, Callable[[Handle], Awaitable[None]], bool]


@contextlib.asynccontextmanager
async def _environment() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server with the search attributes, for one recording session."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_binary(), test_server_startup_timeout=timedelta(seconds=60))
    await register_search_attributes(env.client)
    try:
        yield env
    finally:
        await env.shutdown()


def _keep(name: str, history: WorkflowHistory) -> None:
    (HERE / "v4").mkdir(parents=True, exist_ok=True)
    path = HERE / "v4" / f"{name}.json"
    path.write_text(history.to_json())
    print(f"recorded {path.name}: {len(history.events)} events")


async def record_v4(shapes: dict[str, Shape]) -> None:
    """Record each shape's `Payment` history into histories/v4/payment_<name>.json."""
    async with _environment() as env:
        for name, (saga, inp, drive, skips_time) in shapes.items():
            queue = f"record-{uuid.uuid4()}"
            async with Worker(env.client, task_queue=queue, workflows=[PaymentWorkflow],
                              activities=saga.activities()):
                handle = await env.client.start_workflow(PaymentWorkflow.run, inp,
                                                         id=inp.payment_id, task_queue=queue)
                if skips_time:
                    await drive(handle)
                else:
                    with env.auto_time_skipping_disabled():  # no window may lapse first
                        await drive(handle)
                history = await handle.fetch_history()
            _keep(f"payment_{name}", history)


async def record_manual() -> None:
    from tests.workflow.test_manual_capture_workflow import authorizing, manual

    await record_v4({f"manual_{name}": (authorizing(), manual(), drive, name == "expired")
                     for name, drive in manual_captures().items()})


async def record_async() -> None:
    """Outcomes that arrive later (issue 29): settled by the processor's event, by a sync, and a
    3-D Secure payment nobody authenticated."""
    from contracts.saga import ProcessorEvent
    from tests.workflow.test_async_outcomes_workflow import processing, three_ds

    async def by_event(handle: Handle) -> None:
        await eventually(lambda: handle.query("state"), lambda s: s["status"] == "processing")
        await handle.execute_update(PaymentWorkflow.processor_event, ProcessorEvent(
            "evt_rec", "primary", "ch_async", "succeeded"), id="evt_rec")
        await finish(handle)

    await record_v4({
        "async_event": (processing(), payment(), by_event, False),
        "async_sync": (processing([Charge("succeeded", "ch_async")]), payment(), finish, True),
        "3ds_abandoned": (three_ds(), payment(max_manual_retries=0), finish, True),
    })


async def record_disputes() -> None:
    """Disputes (issue 30): evidence then won after two months; no response, lost at the
    deadline. Into histories/v4/dispute_<name>.json."""
    from contracts.dispute import DisputeEvent, DisputeStart, Evidence
    from tests.workflow.test_dispute_workflow import FakeDispute, facts
    from workflows.dispute import DisputeWorkflow

    async with _environment() as env:
        for name in ("won", "no_response"):
            queue = f"record-{uuid.uuid4()}"
            async with Worker(env.client, task_queue=queue, workflows=[DisputeWorkflow],
                              activities=FakeDispute().activities()):
                did = f"dsp_rec_{name}"
                handle = await env.client.start_workflow(
                    DisputeWorkflow.run, DisputeStart(did, "primary", "dp_rec"), id=did,
                    task_queue=queue)
                now = await env.get_current_time()
                await handle.execute_update(DisputeWorkflow.processor_event, DisputeEvent(
                    "evt_rec_1", "dispute.created", facts(now)), id="evt_rec_1")
                if name == "won":
                    await env.sleep(timedelta(days=6))
                    await handle.execute_update(DisputeWorkflow.submit_evidence,
                                                Evidence("delivery proof"))
                    await env.sleep(timedelta(days=60))
                    await handle.execute_update(DisputeWorkflow.processor_event, DisputeEvent(
                        "evt_rec_2", "dispute.closed", facts(now, "won")), id="evt_rec_2")
                await handle.result()
                history = await handle.fetch_history()
            _keep(f"dispute_{name}", history)


async def record_posted() -> None:
    """The charge activity captures what it charged (issue 31): a happy payment, and one declined
    then retried (its second attempt's charge posted)."""
    def posted(r: ChargeRequest) -> Charge:
        return Charge("succeeded", "ch_posted", posted=r.post is not None)

    declines = iter([Charge("declined", decline_code="do_not_honor")])
    await record_v4({
        "posted_with_charge": (FakeSaga(charge=posted), payment(), finish, True),
        "posted_after_a_retry": (FakeSaga(charge=lambda r: next(declines, None) or posted(r)),
                                 payment(), declined_then_retried, True),
    })


Charging = Callable[[ChargeRequest], Charge]


def charges(reference: str) -> tuple[Charging, Charging]:
    """A charge that succeeds (posted when asked), and one whose first try meets a 5xx and whose
    next charges."""
    def posted(r: ChargeRequest) -> Charge:
        return Charge("succeeded", reference, posted=r.post is not None)

    tries = iter([ApplicationError("the gateway answered 503", type=GATEWAY_UNAVAILABLE)])

    def flaky(r: ChargeRequest) -> Charge:
        failure = next(tries, None)
        if failure is not None:
            raise failure
        return posted(r)

    return posted, flaky


async def record_local() -> None:
    """A charge's first try runs as a local activity (issue 31): a happy payment; one whose first
    try met a 5xx and whose retry, an activity, charged; one declined, then retried (a manual
    retry charges as an activity)."""
    posted, flaky = charges("ch_local")
    declines = iter([Charge("declined", decline_code="do_not_honor")])
    await record_v4({
        "local_charge": (FakeSaga(charge=posted), payment(), finish, True),
        "local_charge_failed_then_activity": (FakeSaga(charge=flaky), payment(), finish, True),
        "local_charge_declined_then_retried": (
            FakeSaga(charge=lambda r: next(declines, None) or posted(r)), payment(),
            declined_then_retried, True),
    })


async def record_quiet() -> None:
    """`processing` published only when the charge waits past its first try (issue 31): a happy
    payment; one whose first try met a 5xx and whose retry, an activity, charged; one the
    processor answered `processing`, settled by a sync."""
    from tests.workflow.test_async_outcomes_workflow import processing

    posted, flaky = charges("ch_quiet")
    await record_v4({
        "quiet_processing": (FakeSaga(charge=posted), payment(), finish, True),
        "quiet_processing_then_retried": (FakeSaga(charge=flaky), payment(), finish, True),
        "quiet_processing_then_async": (processing([Charge("succeeded", "ch_async")]), payment(),
                                        finish, True),
    })


if __name__ == "__main__":
    import sys

    asyncio.run(record_manual() if sys.argv[1:] == ["manual"]
                else record_async() if sys.argv[1:] == ["async"]
                else record_posted() if sys.argv[1:] == ["posted"]
                else record_local() if sys.argv[1:] == ["local"]
                else record_quiet() if sys.argv[1:] == ["quiet"]
                else record_disputes() if sys.argv[1:] == ["disputes"] else main())
