"""Refunds (full, partial, concurrent, idempotent) and `Prefer: wait`."""

from __future__ import annotations

import asyncio
import secrets
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from domain.fingerprint import fingerprint
from domain.ids import refund_id_before_v2
from tests.system.conftest import System


async def completed_payment(sys_: System, funds: str, amount: str) -> tuple[dict[str, Any], str]:
    wallet = await sys_.wallet(funds=funds)
    pid = (await sys_.pay(wallet["user_id"], amount)).json()["id"]
    assert (await sys_.settled(pid))["status"] == "completed"
    return wallet, pid


async def refund(sys_: System, pid: str, amount: str | None = None, key: str | None = None) -> Any:
    body = {} if amount is None else {"amount": amount}
    return await sys_.api.post(f"/v1/payments/{pid}/refunds", json=body,
                               headers={"Idempotency-Key": key or secrets.token_hex(6)})


async def test_a_full_refund_restores_the_wallet_exactly(sys_: System) -> None:
    wallet, pid = await completed_payment(sys_, "500.00", "100.50")
    created = await refund(sys_, pid)
    assert created.status_code == 202, created.text
    assert (created.json()["amount"], created.json()["fee"]) == ("100.50", "2.01")
    payment = await sys_.settled(pid, "refunded")
    assert payment["amount_refunded"] == "100.50"
    after = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()
    assert (after["balance"], after["held"]) == ("500.00", "0.00")
    moves = (await sys_.api.get(f"/v1/wallets/{wallet['id']}/transactions")).json()["items"]
    assert [(m["type"], m["amount"]) for m in moves[:2]] == [("fee_refund", "2.01"), ("refund", "100.50")]
    assert (await sys_.events(pid))[-1] == "payment.refunded"
    gateway = (await sys_.gateway.get("/charges", params={"payment_id": pid})).json()
    assert [(c["object"], c["amount"]) for c in gateway] == [("charge", "100.50"), ("refund", "100.50")]
    again = await refund(sys_, pid, "1.00")
    assert (again.status_code, again.json()["code"]) == (409, "CANNOT_REFUND_PAYMENT")


async def test_partial_refunds_return_the_whole_fee_and_no_more(sys_: System) -> None:
    wallet, pid = await completed_payment(sys_, "200.00", "100.00")  # fee 2.00
    first = await refund(sys_, pid, "33.33")
    assert first.status_code == 202
    assert (await sys_.settled(pid, "partially_refunded"))["amount_refunded"] == "33.33"
    for part in ("33.33", "33.34"):
        assert (await refund(sys_, pid, part)).status_code == 202
    await sys_.settled(pid, "refunded")
    after = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()
    assert after["balance"] == "200.00"
    refunds = (await sys_.api.get(f"/v1/payments/{pid}/refunds")).json()["items"]
    assert sum(Decimal(r["fee"]) for r in refunds) == Decimal("2.00")  # 0.67 + 0.67 + 0.66
    assert {r["status"] for r in refunds} == {"succeeded"}


async def test_refunds_never_exceed_the_payment_even_concurrently(sys_: System) -> None:
    _, pid = await completed_payment(sys_, "200.00", "100.00")
    over = await refund(sys_, pid, "100.01")
    assert (over.status_code, over.json()["code"]) == (409, "CANNOT_REFUND_PAYMENT")
    results = await asyncio.gather(refund(sys_, pid, "60.00"), refund(sys_, pid, "60.00"))
    assert sorted(r.status_code for r in results) == [202, 409]
    assert (await sys_.settled(pid, "partially_refunded"))["amount_refunded"] == "60.00"


async def test_refund_idempotency(sys_: System) -> None:
    _, pid = await completed_payment(sys_, "100.00", "10.00")
    first = await refund(sys_, pid, "5.00", key="refund-key")
    again = await refund(sys_, pid, "5.00", key="refund-key")
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await refund(sys_, pid, "4.00", key="refund-key")
    assert (other.status_code, other.json()["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert (await sys_.settled(pid, "partially_refunded"))["amount_refunded"] == "5.00"
    missing = await sys_.api.post(f"/v1/payments/{pid}/refunds", json={})
    assert missing.json()["code"] == "IDEMPOTENCY_KEY_MISSING"


async def test_a_refund_accepted_before_saga_v2_is_found_by_its_old_id(sys_: System) -> None:
    """Saga v1 is gone, its refunds' rows are not: the same request again answers with it."""
    _, pid = await completed_payment(sys_, "100.00", "10.00")
    old = refund_id_before_v2(pid, "v1-era-key")
    async with sys_.engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO refunds (id, payment_id, tenant_id, amount, fee, currency, status, "
            "fingerprint, failure_message) VALUES (:id, :p, :t, 500, 10, 'USD', 'failed', :fp, "
            "'the gateway refused the refund')"),
            {"id": old, "p": pid, "t": sys_.tenant,
             "fp": fingerprint({"amount": 500, "reason": None})})
    again = await refund(sys_, pid, "5.00", key="v1-era-key")
    assert again.status_code == 200, again.text
    assert (again.json()["id"], again.json()["status"]) == (old, "failed")
    assert again.headers["Idempotent-Replayed"] == "true"


async def test_a_failed_payment_cannot_be_refunded(sys_: System) -> None:
    await sys_.behave(decline_rate=1.0)
    wallet = await sys_.wallet(funds="100.00")
    pid = (await sys_.pay(wallet["user_id"], "10.00")).json()["id"]
    await sys_.settled(pid, "failed")
    response = await refund(sys_, pid)
    assert (response.status_code, response.json()["code"]) == (409, "CANNOT_REFUND_PAYMENT")


async def test_prefer_wait_answers_with_the_final_state(sys_: System) -> None:
    wallet = await sys_.wallet(funds="100.00")
    response = await sys_.api.post(
        "/v1/payments", headers={"Idempotency-Key": secrets.token_hex(6), "Prefer": "wait=10"},
        json={"user_id": wallet["user_id"], "service_id": "s", "amount": "10.00", "currency": "USD"})
    assert response.status_code == 201
    assert response.json()["status"] == "completed"
    assert response.headers["Preference-Applied"] == "wait=10"

    await sys_.behave(decline_above="5", retry_success_rate=1.0)
    pid = (await sys_.pay(wallet["user_id"], "6.00")).json()["id"]
    await sys_.settled(pid, "failed")
    retried = await sys_.api.post(f"/v1/payments/{pid}/retry", headers={"Prefer": "wait=10"})
    assert (retried.status_code, retried.json()["status"]) == (200, "completed")
