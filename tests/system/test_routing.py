"""Two processors, `primary` then `secondary` (the tests' route): failover happens only when the
primary is known not to have charged, and never charges twice."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.gateway import GatewayActivities
from contracts.saga import ChargeRequest
from gateway.breaker import CircuitBreaker
from gateway.client import single
from tests.system.conftest import System


async def failovers(sys_: System, pid: str) -> list[dict[str, Any]]:
    events = (await sys_.api.get(f"/v1/payments/{pid}/events")).json()["items"]
    return [e["data"] for e in events if e["type"] == "gateway.failover"]


async def test_primary_down_the_payment_completes_on_secondary_with_one_charge(
        sys_: System) -> None:
    wallet = await sys_.wallet(funds="100.00")
    await sys_.servers.stop("primary")  # connections refused: nothing can have been sent
    try:
        paid = [(await sys_.pay(wallet["user_id"], "10.00")).json()["id"] for _ in range(3)]
        done = [await sys_.settled(pid, "completed") for pid in paid]
    finally:
        await sys_.servers.start("primary")
    for payment in done:
        assert payment["connector"] == "secondary"
        assert payment["routing_reason"] == "default order"
        charges = await sys_.charges(payment["id"])
        assert [(c["connector"], c["idempotency_key"]) for c in charges] == [
            ("secondary", f"{payment['id']}:a0:secondary")]
        assert payment["gateway_reference"] == charges[0]["id"]
        [moved] = await failovers(sys_, payment["id"])
        assert (moved["from"], moved["to"]) == ("primary", "secondary")
        assert "nothing was sent" in moved["reason"]


async def test_a_lost_answer_after_a_charge_is_looked_up_not_failed_over(sys_: System) -> None:
    wallet = await sys_.wallet(funds="100.00")
    await sys_.behave_at("primary", fail_after_charge_rate=1.0)  # charged, then every answer 500
    pid = (await sys_.pay(wallet["user_id"], "12.00")).json()["id"]
    payment = await sys_.settled(pid, "completed")
    charges = await sys_.charges(pid)
    assert [c["connector"] for c in charges] == ["primary"]
    assert payment["connector"] == "primary"
    assert payment["gateway_reference"] == charges[0]["id"]
    assert await failovers(sys_, pid) == []


async def test_a_soft_decline_fails_over_and_the_secondary_charges(sys_: System) -> None:
    wallet = await sys_.wallet(funds="100.00")
    await sys_.behave_at("primary", decline_rate=1.0, decline_code="processor_unavailable")
    pid = (await sys_.pay(wallet["user_id"], "13.00")).json()["id"]
    payment = await sys_.settled(pid, "completed")
    assert payment["connector"] == "secondary"
    assert [c["connector"] for c in await sys_.charges(pid)] == ["secondary"]
    [moved] = await failovers(sys_, pid)
    assert moved["reason"] == "soft decline processor_unavailable"
    # the Web UI's history says where each charge went and why it moved on (each a first try)
    client = sys_.temporal.client
    history = await client.get_workflow_handle(pid).fetch_history()
    summaries = [(await client.data_converter.decode([e.user_metadata.summary], [str]))[0]
                 for e in history.events if e.HasField("user_metadata")]
    assert "charge attempt 1 at primary" in summaries
    assert "primary: soft decline processor_unavailable; on to secondary" in summaries
    assert "charge attempt 1 at secondary" in summaries


async def test_a_hard_decline_never_fails_over(sys_: System) -> None:
    wallet = await sys_.wallet(funds="100.00")
    await sys_.behave_at("primary", decline_rate=1.0, decline_code="insufficient_funds")
    pid = (await sys_.pay(wallet["user_id"], "14.00")).json()["id"]
    payment = await sys_.settled(pid, "failed")
    assert payment["failure"]["code"] == "gateway_declined"
    assert "insufficient_funds" in payment["failure"]["message"]
    assert payment["connector"] == "primary"
    assert await sys_.charges(pid) == []
    assert (await sys_.gateways["secondary"].get("/charges", params={"payment_id": pid})).json() == []
    assert await failovers(sys_, pid) == []


async def test_a_refund_goes_back_to_the_connector_that_charged(sys_: System) -> None:
    wallet = await sys_.wallet(funds="100.00")
    await sys_.behave_at("primary", decline_rate=1.0, decline_code="try_again_later")
    pid = (await sys_.pay(wallet["user_id"], "20.00")).json()["id"]
    await sys_.settled(pid, "completed")
    await sys_.behave()
    refund = await sys_.api.post(f"/v1/payments/{pid}/refunds", json={"amount": "5.00"},
                                 headers={"Idempotency-Key": f"r-{pid}"})
    assert refund.status_code == 202, refund.text
    await sys_.settled(pid, "partially_refunded")
    records = await sys_.records(pid)
    refunds = [(r["connector"], r["amount"]) for r in records if r["object"] == "refund"]
    assert refunds == [("secondary", "5.00")]


async def test_an_open_circuit_fails_over_before_anything_is_sent(sys_: System) -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=60, connector="primary")
    breaker.failed()
    async with single(sys_.settings.gateway_url, breaker) as gateways:
        gateway = GatewayActivities(gateways)
        request = ChargeRequest("pay_circuit", sys_.tenant, 0, 100, "USD", "primary", fail_fast=True)
        charge = await ActivityEnvironment().run(gateway.charge_gateway, request)
        assert charge.status == "circuit_open"
        assert await sys_.charges("pay_circuit") == []
        # without a connector to fail over to, the open circuit is retried, not answered
        alone = ChargeRequest("pay_circuit", sys_.tenant, 0, 100, "USD", "primary", fail_fast=False)
        with pytest.raises(ApplicationError, match="circuit is open"):
            await ActivityEnvironment().run(gateway.charge_gateway, alone)
