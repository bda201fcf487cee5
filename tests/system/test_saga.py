"""The saga end to end: real Temporal, real PostgreSQL, the fake gateway over HTTP."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.gateway import GatewayActivities
from contracts.saga import ChargeRequest
from db.engine import make_engine
from gateway.breaker import CircuitBreaker
from gateway.client import single
from tests.conftest import eventually
from tests.system.conftest import System


async def test_happy_path_moves_the_money_and_records_everything(sys_: System) -> None:
    wallet = await sys_.wallet(funds="500.00")
    created = await sys_.pay(wallet["user_id"], "100.50", reference="FAC-12345")
    assert created.status_code == 202
    body = created.json()
    assert body["status"] == "pending"
    assert body["fee"] == "2.01"
    assert created.headers["Location"] == f"/v1/payments/{body['id']}"
    assert body["links"]["temporal_ui"].endswith(f"/namespaces/default/workflows/{body['id']}")

    payment = await sys_.settled(body["id"])
    assert payment["status"] == "completed"
    assert payment["gateway_reference"].startswith("ch_")
    assert payment["reference"] == "FAC-12345"

    after = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()
    assert after["balance"] == "397.49"  # 500.00 - 100.50 - 2.01
    assert after["held"] == "0.00"
    assert after["available"] == "397.49"

    moves = (await sys_.api.get(f"/v1/wallets/{wallet['id']}/transactions")).json()["items"]
    assert [(m["type"], m["amount"], m["balance_after"]) for m in moves] == [
        ("fee", "-2.01", "397.49"), ("payment", "-100.50", "399.50"), ("deposit", "500.00", "500.00")]
    assert await sys_.events(body["id"]) == [
        "payment.initiated", "payment.routed", "wallet.funds_reserved", "gateway.payment_approved",
        "wallet.funds_deducted", "payment.completed"]
    charges = await sys_.charges(body["id"])
    assert [(c["amount"], c["currency"]) for c in charges] == [("100.50", "USD")]


async def test_insufficient_funds_fails_and_charges_nothing(sys_: System) -> None:
    wallet = await sys_.wallet(funds="100.00")
    created = (await sys_.pay(wallet["user_id"], "99.00")).json()  # 99.00 + 1.98 fee > 100
    payment = await sys_.settled(created["id"])
    assert payment["status"] == "failed"
    assert payment["failure"]["code"] == "insufficient_funds"
    assert await sys_.charges(created["id"]) == []
    after = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()
    assert (after["balance"], after["held"]) == ("100.00", "0.00")
    assert "wallet.reservation_failed" in await sys_.events(created["id"])


async def test_a_user_without_a_wallet_fails_with_wallet_not_found(sys_: System) -> None:
    created = (await sys_.pay("nobody-has-this-user", "10.00")).json()
    payment = await sys_.settled(created["id"])
    assert payment["failure"]["code"] == "wallet_not_found"


async def test_decline_releases_the_hold(sys_: System) -> None:
    await sys_.behave(decline_rate=1.0)
    wallet = await sys_.wallet(funds="200.00")
    created = (await sys_.pay(wallet["user_id"], "50.00")).json()
    payment = await sys_.settled(created["id"])
    assert payment["status"] == "failed"
    assert payment["failure"]["code"] == "gateway_declined"
    after = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()
    assert (after["balance"], after["held"], after["available"]) == ("200.00", "0.00", "200.00")
    events = await sys_.events(created["id"])
    assert events[-3:] == ["gateway.payment_rejected", "wallet.funds_released", "payment.failed"]
    assert await sys_.charges(created["id"]) == []


async def test_gateway_5xx_is_retried_and_charges_once(sys_: System) -> None:
    await sys_.behave(fail_rate=0.5, seed=11)
    wallet = await sys_.wallet(funds="1000.00")
    ids = [(await sys_.pay(wallet["user_id"], "10.00")).json()["id"] for _ in range(5)]
    for pid in ids:
        assert (await sys_.settled(pid))["status"] == "completed"
        assert len(await sys_.charges(pid)) == 1
    after = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()
    assert after["balance"] == "949.00"  # 5 x (10.00 + 0.20)


async def test_timeouts_are_retried_and_charge_once(sys_: System) -> None:
    # The gateway charges, then hangs past our 1 s timeout; the retry gets the stored charge.
    await sys_.behave(timeout_rate=1.0, timeout_hang_seconds=3)
    wallet = await sys_.wallet(funds="100.00")
    created = (await sys_.pay(wallet["user_id"], "10.00")).json()
    payment = await sys_.settled(created["id"])
    assert payment["status"] == "completed"
    assert len(await sys_.charges(created["id"])) == 1


async def test_unknown_outcome_is_looked_up_and_a_charge_that_happened_is_captured(
        sys_: System) -> None:
    await sys_.behave(timeout_rate=1.0, timeout_hang_seconds=3)
    wallet = await sys_.wallet(funds="100.00")
    created = (await sys_.pay(wallet["user_id"], "10.00")).json()
    await eventually(lambda: sys_.charges(created["id"]), lambda c: len(c) == 1)
    await sys_.behave(fail_rate=1.0)  # every later attempt fails: the outcome stays unknown
    payment = await sys_.settled(created["id"])
    assert payment["status"] == "completed"
    assert len(await sys_.charges(created["id"])) == 1
    after = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()
    assert (after["balance"], after["held"]) == ("89.80", "0.00")


async def test_gateway_that_never_answers_is_looked_up_then_released(sys_: System) -> None:
    await sys_.behave(fail_rate=1.0)
    wallet = await sys_.wallet(funds="100.00")
    created = (await sys_.pay(wallet["user_id"], "10.00")).json()
    payment = await sys_.settled(created["id"])
    assert payment["status"] == "failed"
    assert payment["failure"]["code"] == "gateway_unavailable"
    after = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()
    assert (after["balance"], after["held"]) == ("100.00", "0.00")


async def test_fifty_concurrent_payments_on_one_wallet_never_overdraw(sys_: System) -> None:
    wallet = await sys_.wallet(funds="306.00")  # exactly 30 payments of 10.00 + 0.20 fee
    responses = await asyncio.gather(*(sys_.pay(wallet["user_id"], "10.00") for _ in range(50)))
    assert all(r.status_code == 202 for r in responses)
    ids = [r.json()["id"] for r in responses]
    assert len(set(ids)) == 50
    final = await asyncio.gather(*(sys_.settled(pid, timeout=60) for pid in ids))
    statuses = [p["status"] for p in final]
    assert statuses.count("completed") == 30
    assert statuses.count("failed") == 20
    assert {p["failure"]["code"] for p in final if p["failure"]} == {"insufficient_funds"}
    after = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()
    assert (after["balance"], after["held"]) == ("0.00", "0.00")
    moves = (await sys_.api.get(f"/v1/wallets/{wallet['id']}/transactions",
                                params={"limit": 200})).json()
    assert moves["total"] == 61  # one deposit, 30 payments and 30 fees
    assert sum(Decimal(m["amount"]) for m in moves["items"]) == 0


async def test_one_idempotency_key_sent_fifty_times_at_once_pays_once(sys_: System) -> None:
    wallet = await sys_.wallet(funds="100.00")
    responses = await asyncio.gather(
        *(sys_.pay(wallet["user_id"], "10.00", key="same-key-50x") for _ in range(50)))
    assert {r.status_code for r in responses} <= {200, 202}
    assert [r.status_code for r in responses].count(202) == 1
    assert len({r.text for r in responses}) == 1  # fifty identical answers
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert all(r.headers.get("Idempotent-Replayed") == "true"
               for r in responses if r.status_code == 200)
    pid = ids.pop()
    assert (await sys_.settled(pid))["status"] == "completed"
    assert len(await sys_.charges(pid)) == 1
    after = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()
    assert after["balance"] == "89.80"


async def test_rate_limits_are_retried_after_retry_after_and_charge_once(sys_: System) -> None:
    await sys_.behave(rate_limit_rate=0.5, seed=5)
    wallet = await sys_.wallet(funds="100.00")
    created = (await sys_.pay(wallet["user_id"], "10.00")).json()
    payment = await sys_.settled(created["id"], timeout=60)
    assert payment["status"] == "completed"
    assert len(await sys_.charges(created["id"])) == 1


async def test_the_circuit_opens_on_a_down_gateway_and_fails_fast(sys_: System) -> None:
    breaker = CircuitBreaker(failure_threshold=2, cooldown_seconds=30)
    async with single(sys_.settings.gateway_url, breaker) as gateways:
        gateway = GatewayActivities(gateways)
        request = ChargeRequest("pay_breaker", sys_.tenant, 0, 100, "USD")
        await sys_.behave(down=True)
        messages = []
        for _ in range(3):
            with pytest.raises(ApplicationError) as err:
                await ActivityEnvironment().run(gateway.charge_gateway, request)
            messages.append(err.value.message)
    assert breaker.state == "open"
    assert messages[:2] == ["the gateway answered 503"] * 2
    assert "circuit is open" in messages[2]
    assert err.value.next_retry_delay is not None
    assert err.value.next_retry_delay.total_seconds() > 20


async def test_a_charge_its_activity_cannot_post_is_answered_for_the_capture_step(
        sys_: System) -> None:
    """The charge succeeded but the database is unreachable from its activity: the activity
    answers the charge unposted (it is not charged again for a posting), and the saga's capture
    step posts it. (Asked again for a completed payment's charge, under its own idempotency key:
    the gateway answers the charge it made, and no stray charge is left.)"""
    wallet = await sys_.wallet(funds="20.00")
    pid = (await sys_.pay(wallet["user_id"], "10.00")).json()["id"]
    paid = await sys_.settled(pid, "completed")
    unreachable = make_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        async with single(sys_.settings.gateway_url) as gateways:
            gateway = GatewayActivities(gateways, unreachable)
            request = ChargeRequest(pid, sys_.tenant, 0, 1000, "USD", paid["connector"],
                                    post="payment", post_fee=20)
            charge = await ActivityEnvironment().run(gateway.charge_gateway, request)
    finally:
        await unreachable.dispose()
    assert (charge.status, charge.posted) == ("succeeded", False)
    assert charge.gateway_reference == paid["gateway_reference"]
    assert len(await sys_.charges(pid)) == 1
