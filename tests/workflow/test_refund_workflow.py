"""The refund saga's decisions, with time skipping."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.refund import RefundStep
from contracts.saga import GATEWAY_DECLINED, GATEWAY_UNAVAILABLE, SagaPolicy
from tests.workflow.fakes import FakeSaga
from workflows.refund import RefundWorkflow

POLICY = SagaPolicy(gateway_retry_initial_seconds=1, gateway_retry_max_interval_seconds=10)


def refund() -> RefundStep:
    return RefundStep("pay_1", "t", f"rfd_{uuid.uuid4().hex[:10]}", 5000, 100, "USD", "ch_1",
                      fingerprint="fp")


async def run(env: WorkflowEnvironment, saga: FakeSaga, step: RefundStep) -> RefundWorkflow:
    queue = f"q-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[RefundWorkflow],
                      activities=saga.activities()):
        handle = await env.client.start_workflow(RefundWorkflow.run, args=[step, POLICY],
                                                 id=step.refund_id, task_queue=queue)
        try:
            return await handle.result()  # type: ignore[return-value]
        finally:
            assert (await handle.describe()).status != WorkflowExecutionStatus.RUNNING


async def test_a_refund_is_given_back_at_the_gateway_then_posted(env: WorkflowEnvironment) -> None:
    saga = FakeSaga()
    posted = await run(env, saga, refund())
    assert saga.names() == ["refund_gateway", "settle_refund"]
    assert posted.amount == 5000  # type: ignore[attr-defined]


async def test_an_unreachable_gateway_is_retried_until_it_answers(env: WorkflowEnvironment) -> None:
    answers = iter([GATEWAY_UNAVAILABLE, GATEWAY_UNAVAILABLE, None])

    def flaky(_: RefundStep) -> str:
        kind = next(answers)
        if kind:
            raise ApplicationError("down", type=kind)
        return "re_1"

    saga = FakeSaga(refund=flaky)
    await run(env, saga, refund())
    assert saga.names() == ["refund_gateway"] * 3 + ["settle_refund"]


async def test_a_refused_refund_fails_and_frees_its_amount(env: WorkflowEnvironment) -> None:
    def refuse(_: RefundStep) -> str:
        raise ApplicationError("charge already refunded", type=GATEWAY_DECLINED, non_retryable=True)

    saga = FakeSaga(refund=refuse)
    with pytest.raises(WorkflowFailureError) as err:
        await run(env, saga, refund())
    assert saga.names() == ["refund_gateway", "fail_refund"]
    assert saga.calls[-1][1].failure_message == "charge already refunded"
    assert isinstance(err.value.cause, ApplicationError)
    assert err.value.cause.type == "refund_failed"
