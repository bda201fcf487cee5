"""Authorize now, capture later (issue 28) over real HTTP, on the real servers: the hold follows
the authorization, a partial capture debits what it captured (and its fee) and releases the rest,
a cancel voids, a short window expires by itself, and every refusal says why."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from temporalio.client import WorkflowExecutionStatus

from tests.system.conftest import System, temporal_cli
from tests.system.test_money_movement import balance


async def authorize(sys_: System, wallet: dict[str, Any], amount: str,
                    **extra: Any) -> httpx.Response:
    return await sys_.api.post(
        "/v1/payments", json={"user_id": wallet["user_id"], "service_id": "hotel",
                              "amount": amount, "currency": "USD", "capture_method": "manual",
                              **extra},
        headers={"Idempotency-Key": secrets.token_hex(8), "Prefer": "wait=10"})


async def charge_record(sys_: System, pid: str) -> dict[str, Any]:
    [record] = await sys_.charges(pid)
    return record


async def events(sys_: System, pid: str) -> list[str]:
    return await sys_.events(pid)


async def test_authorize_then_capture_less_debits_what_was_captured(sys_: System) -> None:
    wallet = await sys_.wallet(funds="50.00")
    answer = await authorize(sys_, wallet, "10.00")
    assert answer.status_code == 201, answer.text  # the attempt's outcome for now
    payment = answer.json()
    pid = payment["id"]
    assert (payment["status"], payment["capture_method"]) == ("requires_capture", "manual")
    assert (payment["amount"], payment["amount_authorized"], payment["amount_captured"]) == (
        "10.00", "10.00", None)
    assert payment["capture_before"].endswith("Z")
    assert await balance(sys_, wallet) == ("50.00", "10.20")  # amount + fee held
    assert (await charge_record(sys_, pid))["status"] == "authorized"
    assert "payment.authorized" in await events(sys_, pid)
    desc = await sys_.temporal.client.get_workflow_handle(pid).describe()
    assert desc.status == WorkflowExecutionStatus.RUNNING  # the workflow is the authorization

    captured = await sys_.api.post(f"/v1/payments/{pid}/capture", json={"amount": "6.00"})
    assert captured.status_code == 200, captured.text
    done = captured.json()
    assert (done["status"], done["amount_captured"], done["fee"]) == ("completed", "6.00", "0.12")
    assert await balance(sys_, wallet) == ("43.88", "0.00")  # 6.00 + 0.12; the rest released
    record = await charge_record(sys_, pid)
    assert (record["status"], record["amount_captured"]) == ("succeeded", "6.00")
    again = await sys_.api.post(f"/v1/payments/{pid}/capture", json={})
    assert (again.status_code, again.json()["code"]) == (409, "CANNOT_CAPTURE_PAYMENT")
    # refunds up to the captured amount
    too_much = await sys_.api.post(f"/v1/payments/{pid}/refunds", json={"amount": "6.01"},
                                   headers={"Idempotency-Key": secrets.token_hex(6)})
    assert too_much.status_code == 409
    refund = await sys_.api.post(f"/v1/payments/{pid}/refunds", json={"amount": "6.00"},
                                 headers={"Idempotency-Key": secrets.token_hex(6)})
    assert refund.status_code == 202, refund.text
    await sys_.settled(pid, "refunded")
    assert await balance(sys_, wallet) == ("50.00", "0.00")


async def test_a_capture_above_the_authorization_is_refused_and_nothing_moves(
        sys_: System) -> None:
    wallet = await sys_.wallet(funds="50.00")
    pid = (await authorize(sys_, wallet, "5.00")).json()["id"]
    above = await sys_.api.post(f"/v1/payments/{pid}/capture", json={"amount": "5.01"})
    assert (above.status_code, above.json()["code"]) == (400, "VALIDATION_ERROR")
    assert above.json()["errors"][0]["field"] == "amount"
    assert (await sys_.payment(pid))["status"] == "requires_capture"
    automatic = (await sys_.pay(wallet["user_id"], "1.00")).json()["id"]
    await sys_.settled(automatic, "completed")
    refused = await sys_.api.post(f"/v1/payments/{automatic}/capture", json={})
    assert (refused.status_code, refused.json()["code"]) == (409, "CANNOT_CAPTURE_PAYMENT")


async def test_a_cancel_voids_the_authorization_and_releases_the_hold(sys_: System) -> None:
    wallet = await sys_.wallet(funds="20.00")
    pid = (await authorize(sys_, wallet, "8.00")).json()["id"]
    canceled = await sys_.api.post(f"/v1/payments/{pid}/cancel")
    assert (canceled.status_code, canceled.json()["status"]) == (200, "canceled")
    assert await balance(sys_, wallet) == ("20.00", "0.00")
    assert (await charge_record(sys_, pid))["status"] == "voided"
    assert "payment.voided" in await events(sys_, pid)
    late = await sys_.api.post(f"/v1/payments/{pid}/capture", json={})
    assert (late.status_code, late.json()["code"]) == (409, "CANNOT_CAPTURE_PAYMENT")


async def test_an_authorization_left_uncaptured_expires_by_itself(sys_: System) -> None:
    wallet = await sys_.wallet(funds="20.00")
    soon = (datetime.now(UTC) + timedelta(seconds=6)).isoformat()
    pid = (await authorize(sys_, wallet, "3.00", capture_before=soon)).json()["id"]
    expired = await sys_.settled(pid, "expired", timeout=40)
    assert expired["failure"]["code"] == "authorization_expired"
    assert await balance(sys_, wallet) == ("20.00", "0.00")
    assert (await charge_record(sys_, pid))["status"] == "voided"
    assert "payment.authorization_expired" in await events(sys_, pid)
    desc = await sys_.temporal.client.get_workflow_handle(pid).describe()
    assert desc.status == WorkflowExecutionStatus.COMPLETED


async def test_the_window_is_checked(sys_: System) -> None:
    wallet = await sys_.wallet(funds="20.00")
    now = datetime.now(UTC)
    for when in (now + timedelta(days=8), now + timedelta(seconds=2)):
        answer = await authorize(sys_, wallet, "1.00", capture_before=when.isoformat())
        assert (answer.status_code, answer.json()["errors"][0]["field"]) == (
            400, "capture_before"), answer.text
    automatic = await sys_.pay(wallet["user_id"], "1.00",
                               capture_before=(now + timedelta(days=1)).isoformat())
    assert (automatic.status_code, automatic.json()["code"]) == (400, "VALIDATION_ERROR")


async def test_the_temporal_cli_captures_and_says_why_it_refuses(sys_: System) -> None:
    wallet = await sys_.wallet(funds="20.00")
    pid = (await authorize(sys_, wallet, "7.00")).json()["id"]
    said = await temporal_cli(sys_, "workflow", "update", "execute", "--workflow-id", pid,
                              "--name", "capture", "--input", '{"amount": "6.00"}')
    assert "completed" in said
    assert (await sys_.payment(pid))["amount_captured"] == "6.00"
    refused = await temporal_cli(sys_, "workflow", "update", "execute", "--workflow-id", pid,
                                 "--name", "capture", ok=False)
    assert "cannot be captured" in refused or "completed" in refused.lower()
