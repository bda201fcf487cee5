"""Saga v2's lifecycle as Temporal shows it: a payment's workflow closes when its money has
settled, refunds are workflows of their own, `Prefer: wait` is answered by the workflow, and
payments started under saga v1 still finish after the upgrade."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.sweeper import SweeperActivities
from contracts.refund import RefundStep
from db import refunds
from gateway.breaker import CircuitBreaker
from gateway.client import single
from temporal_client.start import start_refund
from tests.conftest import eventually
from tests.system.conftest import System


async def workflow_status(sys_: System, workflow_id: str) -> WorkflowExecutionStatus | None:
    return (await sys_.temporal.client.get_workflow_handle(workflow_id).describe()).status


async def closed(sys_: System, workflow_id: str) -> WorkflowExecutionStatus | None:
    return await eventually(lambda: workflow_status(sys_, workflow_id),
                            lambda s: s != WorkflowExecutionStatus.RUNNING)


async def test_a_completed_payment_closes_its_workflow(sys_: System) -> None:
    wallet = await sys_.wallet(funds="50.00")
    pid = (await sys_.pay(wallet["user_id"], "10.00")).json()["id"]
    await sys_.settled(pid, "completed")
    assert await closed(sys_, pid) == WorkflowExecutionStatus.COMPLETED
    history = await sys_.temporal.client.get_workflow_handle(pid).fetch_history()
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
                 if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert scheduled == []  # no activity task: the opening and the charge's first try ran local
    tasks = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]
    assert len(tasks) == 1
    local = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
             and e.marker_recorded_event_attributes.marker_name == "core_local_activity"]
    assert len(local) == 2  # the opening and the charge, which captured the charge itself
    after = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()
    assert (after["balance"], after["held"]) == ("39.80", "0.00")  # 10.00 and its 0.20 fee


async def test_a_failed_payment_waits_and_an_exhausted_one_fails_its_workflow(sys_: System) -> None:
    await sys_.behave(decline_rate=1.0)
    wallet = await sys_.wallet(funds="50.00")
    pid = (await sys_.pay(wallet["user_id"], "1.00")).json()["id"]
    await sys_.settled(pid, "failed")
    assert await workflow_status(sys_, pid) == WorkflowExecutionStatus.RUNNING  # waits for an operator
    for _ in range(3):
        retried = await sys_.api.post(f"/v1/payments/{pid}/retry", headers={"Prefer": "wait=10"})
        assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "exhausted"
    assert await closed(sys_, pid) == WorkflowExecutionStatus.FAILED
    with pytest.raises(WorkflowFailureError) as err:
        await sys_.temporal.client.get_workflow_handle(pid).result()
    assert isinstance(err.value.cause, ApplicationError)
    assert err.value.cause.type == "gateway_declined"  # the failure code, searchable in the UI


async def test_a_canceled_payment_closes_its_workflow(sys_: System) -> None:
    await sys_.behave(decline_rate=1.0)
    wallet = await sys_.wallet(funds="50.00")
    pid = (await sys_.pay(wallet["user_id"], "1.00")).json()["id"]
    await sys_.settled(pid, "failed")
    canceled = await sys_.api.post(f"/v1/payments/{pid}/cancel")
    assert canceled.json()["status"] == "canceled"
    assert await closed(sys_, pid) == WorkflowExecutionStatus.COMPLETED


async def test_prefer_wait_is_answered_by_the_workflow(sys_: System) -> None:
    wallet = await sys_.wallet(funds="50.00")
    key = secrets.token_hex(6)
    response = await sys_.api.post(
        "/v1/payments", headers={"Idempotency-Key": key, "Prefer": "wait=10"},
        json={"user_id": wallet["user_id"], "service_id": "s", "amount": "3.00", "currency": "USD"})
    assert (response.status_code, response.json()["status"]) == (201, "completed")
    history = await sys_.temporal.client.get_workflow_handle(response.json()["id"]).fetch_history()
    updates = [e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
               for e in history.events
               if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]
    assert updates == ["outcome"]  # started together with the update that answered


async def test_a_refund_is_a_workflow_of_its_own(sys_: System) -> None:
    wallet = await sys_.wallet(funds="50.00")
    pid = (await sys_.pay(wallet["user_id"], "10.00")).json()["id"]
    await sys_.settled(pid, "completed")
    created = await sys_.api.post(f"/v1/payments/{pid}/refunds", json={"amount": "4.00"},
                                  headers={"Idempotency-Key": secrets.token_hex(6)})
    assert created.status_code == 202, created.text
    rid = created.json()["id"]
    assert rid.startswith("rfd_")
    assert await closed(sys_, rid) == WorkflowExecutionStatus.COMPLETED
    assert (await sys_.payment(pid))["status"] == "partially_refunded"
    assert await workflow_status(sys_, pid) == WorkflowExecutionStatus.COMPLETED  # not reopened


async def test_a_refused_refund_fails_its_workflow_and_frees_the_amount(sys_: System) -> None:
    wallet = await sys_.wallet(funds="50.00")
    pid = (await sys_.pay(wallet["user_id"], "10.00")).json()["id"]
    await sys_.settled(pid, "completed")
    async with sys_.engine.begin() as conn:
        step = await refunds.reserve(conn, refund_id=f"rfd_{secrets.token_hex(6)}", payment_id=pid,
                                     tenant_id=sys_.tenant, amount=0, fingerprint="fp", reason=None)
    assert isinstance(step, RefundStep)
    step.gateway_reference = "ch_unknown"  # the gateway has no such charge: it refuses
    await start_refund(sys_.temporal.client, sys_.settings, step)
    assert await closed(sys_, step.refund_id) == WorkflowExecutionStatus.FAILED
    listed = (await sys_.api.get(f"/v1/payments/{pid}/refunds")).json()["items"]
    assert [(r["status"], r["amount"]) for r in listed] == [("failed", "10.00")]
    again = await sys_.api.post(f"/v1/payments/{pid}/refunds", json={},
                                headers={"Idempotency-Key": secrets.token_hex(6)})
    assert (again.status_code, again.json()["amount"]) == (202, "10.00")  # refundable again
    await sys_.settled(pid, "refunded")


async def test_the_sweeper_starts_a_refund_left_without_its_workflow(sys_: System) -> None:
    from sqlalchemy import text

    wallet = await sys_.wallet(funds="50.00")
    pid = (await sys_.pay(wallet["user_id"], "10.00")).json()["id"]
    await sys_.settled(pid, "completed")
    rid = f"rfd_{secrets.token_hex(6)}"
    async with sys_.engine.begin() as conn:  # the API stopped between reserving and starting
        await refunds.reserve(conn, refund_id=rid, payment_id=pid, tenant_id=sys_.tenant, amount=0,
                              fingerprint="fp", reason=None)
        await conn.execute(text("UPDATE refunds SET created_at = now() - interval '1 hour' "
                                "WHERE id = :id"), {"id": rid})
    async with single(sys_.settings.gateway_url, CircuitBreaker(1000)) as gateways:
        sweeper = SweeperActivities(sys_.temporal.client, sys_.engine, gateways, sys_.settings)
        assert await ActivityEnvironment().run(sweeper.sweep_orphaned_holds) >= 1
    assert await closed(sys_, rid) == WorkflowExecutionStatus.COMPLETED
    assert (await sys_.payment(pid))["status"] == "refunded"
    after = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()
    assert after["balance"] == "50.00"


async def test_failure_reasons_are_searchable(sys_: System) -> None:
    await sys_.behave(decline_rate=1.0)
    wallet = await sys_.wallet(funds="5.00")
    declined = (await sys_.pay(wallet["user_id"], "1.00")).json()["id"]
    poor = (await sys_.pay(wallet["user_id"], "100.00")).json()["id"]
    await sys_.settled(declined, "failed")
    await sys_.settled(poor, "failed")

    async def found(query: str) -> set[str]:
        return {wf.id async for wf in sys_.temporal.client.list_workflows(query)}

    wanted = {declined, poor}
    by_reason = await eventually(
        lambda: found(f"PaymentUserId='{sys_.user_hash(wallet['user_id'])}' "
                      "AND PaymentFailureCode='gateway_declined'"),
        lambda ids: declined in ids)
    assert by_reason & wanted == {declined}
    listed = await sys_.api.get("/v1/payments", params={
        "user_id": wallet["user_id"], "status": "failed,exhausted", "failure_code": "insufficient_funds"})
    assert [p["id"] for p in listed.json()["items"]] == [poor]
    both = await sys_.api.get("/v1/payments", params={"user_id": wallet["user_id"],
                                                      "status": "exhausted,failed"})
    assert {p["id"] for p in both.json()["items"]} == wanted


async def test_list_refuses_what_it_does_not_know_by_name(sys_: System) -> None:
    for params, field in (({"statuss": "failed"}, "statuss"),
                          ({"status": "failed,lost"}, "status"),
                          ({"failure_code": "bad_luck"}, "failure_code"),
                          ({"starting_after": "pay_nope"}, "starting_after")):
        response = await sys_.api.get("/v1/payments", params=params)
        assert response.status_code == 400, params
        assert response.json()["code"] == "VALIDATION_ERROR"
        assert [e["field"] for e in response.json()["errors"]] == [field]
    unknown = await sys_.api.get("/v1/wallets", params={"user": "x"})
    assert (unknown.status_code, unknown.json()["errors"][0]["field"]) == (400, "user")


async def test_cursor_pagination_walks_every_payment_once(sys_: System) -> None:
    wallet = await sys_.wallet(funds="50.00")
    made = [(await sys_.pay(wallet["user_id"], "1.00")).json()["id"] for _ in range(5)]
    for pid in made:
        await sys_.settled(pid)
    seen: list[str] = []
    params: dict[str, Any] = {"user_id": wallet["user_id"], "limit": 2}
    while True:
        page = (await sys_.api.get("/v1/payments", params=params)).json()
        seen.extend(p["id"] for p in page["items"])
        if "starting_after" in params:
            assert page["total"] is None  # the cursor path does not count
        if not page["has_more"]:
            break
        params["starting_after"] = page["items"][-1]["id"]
    assert seen == list(reversed(made))  # each once, newest first


async def test_declines_read_as_business_outcomes_in_the_history(sys_: System) -> None:
    await sys_.behave(decline_rate=1.0)
    wallet = await sys_.wallet(funds="50.00")
    pid = (await sys_.pay(wallet["user_id"], "1.00")).json()["id"]
    await sys_.settled(pid, "failed")
    handle = sys_.temporal.client.get_workflow_handle(pid)
    for _ in range(3):
        await sys_.api.post(f"/v1/payments/{pid}/retry", headers={"Prefer": "wait=10"})
    assert await closed(sys_, pid) == WorkflowExecutionStatus.FAILED
    history = await handle.fetch_history()
    kinds = [e.event_type for e in history.events]
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED not in kinds  # a decline is a result
    failed = next(e for e in history.events
                  if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED)
    failure = failed.workflow_execution_failed_event_attributes.failure
    assert failure.application_failure_info.type == "gateway_declined"
    assert failure.stack_trace == ""  # an outcome, not a crash
    # the headline an operator reads, in plain text (written from codes, never from user data)
    assert failure.message == "the gateway declined the charge (do_not_honor)"
    assert not failure.HasField("encoded_attributes")  # no trace hidden in the encrypted part
