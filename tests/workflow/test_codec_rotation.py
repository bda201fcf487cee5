"""A key is rotated under a running payment: it was started and failed under key 1, key 2 becomes
current (key 1 still listed), and the retry that completes it is written under key 2."""

from __future__ import annotations

import uuid

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.payment import PaymentState
from contracts.saga import Charge
from temporal_client.codec import KeyRing
from temporal_client.converter import data_converter
from tests.conftest import eventually
from tests.workflow.fakes import FakeSaga
from tests.workflow.test_payment_workflow import payment
from workflows.payment import PaymentWorkflow


def client_with(env: WorkflowEnvironment, ring: KeyRing) -> Client:
    return Client(env.client.service_client, namespace=env.client.namespace,
                  data_converter=data_converter(ring))


async def test_a_payment_started_under_key_1_finishes_after_key_2_becomes_current(
        env: WorkflowEnvironment) -> None:
    k1, k2 = KeyRing.new_key("k1"), KeyRing.new_key("k2")
    before, after = client_with(env, KeyRing.parse(k1)), client_with(env, KeyRing.parse(f"{k2},{k1}"))
    declining = True
    saga = FakeSaga(charge=lambda r: Charge("declined", decline_code="do_not_honor") if declining
                    else Charge("succeeded", "ch_2"))
    queue, inp = f"q-{uuid.uuid4()}", payment()
    async with Worker(before, task_queue=queue, workflows=[PaymentWorkflow],
                      activities=saga.activities(), max_cached_workflows=0):
        handle = await before.start_workflow(PaymentWorkflow.run, inp, id=inp.payment_id,
                                             task_queue=queue)
        await eventually(lambda: handle.query(PaymentWorkflow.state),
                         lambda s: s.status == "failed")
    declining = False
    async with Worker(after, task_queue=queue, workflows=[PaymentWorkflow],
                      activities=saga.activities(), max_cached_workflows=0):
        rotated = after.get_workflow_handle(inp.payment_id, result_type=PaymentState)
        await rotated.execute_update(PaymentWorkflow.request_retry)
        result = await rotated.result()
    assert result.status == "completed"
    history = await rotated.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    completed = next(e for e in history.events if e.event_type
                     == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED)
    finished = completed.workflow_execution_completed_event_attributes.result.payloads[0]
    assert started.metadata["encryption-key-id"] == b"k1"
    assert finished.metadata["encryption-key-id"] == b"k2"
    # long enough not to turn up in ciphertext by chance (the two bytes of "u1" did, 1 run in ~100)
    assert inp.payment_id.encode() not in started.data
    assert b'"user_id"' not in started.data
