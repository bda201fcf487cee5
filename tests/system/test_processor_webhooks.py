"""Outcomes that arrive later (issue 29) over real HTTP: the processors' signed events in
(`POST /v1/processor-webhooks/{connector}`), verified, stored once, carried to the saga as an
Update whose id is the event id; a bank debit that settles later; a lost event found by the
saga's own sync; duplicates and strays that change nothing."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from tests.conftest import eventually
from tests.system.conftest import System
from tests.system.test_money_movement import balance, top_up
from tests.system.test_reconciliation import findings, now, reconcile


def signed(secret: str, event: dict[str, Any], at: datetime | None = None) -> dict[str, str]:
    payload = json.dumps(event)
    at = at or datetime.now(UTC)
    return {"webhook-id": event["id"], "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(event["id"], at, payload),
            "content-type": "application/json"}


def event(owner: str = "pay_nobody", status: str = "succeeded") -> dict[str, Any]:
    return {"id": f"evt_{secrets.token_hex(6)}", "type": f"charge.{status}",
            "created": datetime.now(UTC).isoformat(),
            "data": {"object": {"id": "ch_x", "payment_id": owner, "status": status}}}


async def stored(sys_: System, event_id: str) -> list[Any]:
    async with sys_.engine.connect() as conn:
        return list((await conn.execute(text(
            "SELECT status, outcome FROM processor_events WHERE event_id = :e"),
            {"e": event_id})).all())


async def test_only_a_well_signed_event_is_stored_and_only_once(sys_: System) -> None:
    start = now()
    secret = sys_.settings.processor_webhook_secrets["primary"]
    path = "/v1/processor-webhooks/primary"
    ev = event()
    body = json.dumps(ev)
    forged = await sys_.api.post(path, content=body, headers=signed(
        "whsec_" + "A" * 32, ev))
    assert (forged.status_code, forged.json()["code"]) == (401, "INVALID_SIGNATURE")
    missing = await sys_.api.post(path, content=body, headers={"content-type": "application/json"})
    assert missing.status_code == 401
    stale = await sys_.api.post(path, content=body, headers=signed(
        secret, ev, datetime.now(UTC) - timedelta(minutes=6)))
    assert stale.status_code == 401
    assert await stored(sys_, ev["id"]) == []  # nothing kept from a refusal
    unknown = await sys_.api.post("/v1/processor-webhooks/nobody", content=body,
                                  headers=signed(secret, ev))
    assert (unknown.status_code, unknown.json()["code"]) == (404, "CONNECTOR_NOT_FOUND")
    huge = await sys_.api.post(path, content=b"x" * (sys_.settings.max_body_bytes + 1),
                               headers={"content-type": "application/json"})
    assert huge.status_code == 413
    first = await sys_.api.post(path, content=body, headers=signed(secret, ev))
    again = await sys_.api.post(path, content=body, headers=signed(secret, ev))
    assert (first.status_code, first.json()["duplicate"]) == (200, False)
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    # about nothing paysaga knows: kept and reported, never dropped
    def carried(rows: list[Any]) -> bool:
        return bool(rows) and rows[0][0] != "received"

    [(status, outcome)] = await eventually(lambda: stored(sys_, ev["id"]), carried)
    assert (status, outcome) == ("unmatched", "no payment or top-up pay_nobody")
    metrics = (await sys_.api.get("/metrics")).text
    assert 'paysaga_processor_events{status="unmatched"}' in metrics
    # ... and in the reconciliation of its window: a warning an operator reads, not money
    run = await reconcile(sys_, start)
    assert run["counts"].get("unmatched_processor_event") == 1
    found = (await findings(sys_, run["id"]))[f"event:primary:{ev['id']}"]
    assert (found["class"], found["severity"], found["status"]) == (
        "unmatched_processor_event", "warning", "open")
    assert found["evidence"]["detail"] == "charge.succeeded: no payment or top-up pay_nobody"


async def test_a_bank_debit_top_up_settles_later_by_the_processors_event(sys_: System) -> None:
    wallet = await sys_.wallet()
    await sys_.behave(async_settle_seconds=1)
    answer = await top_up(sys_, wallet, "25.00", wait="0.5",
                          source={"type": "bank_account", "token": "ba_debit"})
    tid = answer.json()["id"]
    assert answer.json()["status"] in ("pending", "processing")
    done = await eventually(lambda: sys_.api.get(f"/v1/top-ups/{tid}"),
                            lambda r: r.json()["status"] != "processing"
                            and r.json()["status"] != "pending", timeout=30)
    assert done.json()["status"] == "succeeded"
    assert (await balance(sys_, wallet))[0] == "25.00"
    async def outcomes() -> list[str | None]:
        async with sys_.engine.connect() as conn:
            return [r.outcome for r in await conn.execute(text(
                "SELECT outcome FROM processor_events WHERE subject = :s"), {"s": tid})]

    # the event settled it, not a sync (the relay writes the saga's answer once it has it)
    assert await eventually(outcomes, lambda o: o != [None]) == ["applied"]


async def test_an_async_payment_whose_event_is_lost_is_settled_by_the_sync(sys_: System) -> None:
    wallet = await sys_.wallet(funds="30.00")
    await sys_.behave(async_rate=1.0, async_settle_seconds=0.5, webhook_loss_rate=1.0)
    pid = (await sys_.pay(wallet["user_id"], "10.00")).json()["id"]
    paid = await sys_.settled(pid, "completed", timeout=40)
    assert paid["amount_captured"] == "10.00"
    assert "payment.processing" in await sys_.events(pid)
    assert await balance(sys_, wallet) == ("19.80", "0.00")


async def test_duplicated_and_delayed_events_capture_once(sys_: System) -> None:
    wallet = await sys_.wallet(funds="50.00")
    await sys_.behave(async_rate=1.0, async_settle_seconds=0.2, webhook_duplicate_rate=1.0,
                      webhook_delay_seconds=0.5)
    pids = [(await sys_.pay(wallet["user_id"], "2.00")).json()["id"] for _ in range(3)]
    for pid in pids:
        await sys_.settled(pid, "completed", timeout=40)
    assert await balance(sys_, wallet) == ("43.88", "0.00")  # 3 x (2.00 + 0.04), once each
    rows = await eventually(lambda: _events_of(sys_, pids), lambda r: len(r) >= 3 and all(
        x.status != "received" for x in r), timeout=30)
    assert sorted(r.subject for r in rows) == sorted(pids)  # one each: the copies deduped


async def _events_of(sys_: System, pids: list[str]) -> list[Any]:
    async with sys_.engine.connect() as conn:
        return list((await conn.execute(text(
            "SELECT subject, status, outcome FROM processor_events "
            "WHERE subject = ANY(CAST(:p AS TEXT[]))"), {"p": pids})).all())


async def test_a_3ds_payment_answers_its_next_action_then_settles_when_authenticated(
        sys_: System) -> None:
    wallet = await sys_.wallet(funds="30.00")
    await sys_.behave(three_ds_rate=1.0)
    answer = await sys_.api.post(
        "/v1/payments", json={"user_id": wallet["user_id"], "service_id": "shop",
                              "amount": "5.00", "currency": "USD"},
        headers={"Idempotency-Key": secrets.token_hex(8), "Prefer": "wait=10"})
    assert answer.status_code == 201, answer.text  # the outcome for now
    body = answer.json()
    assert body["status"] == "requires_action"
    assert body["next_action"]["type"] == "redirect_to_url"
    assert "payment.requires_action" in await sys_.events(body["id"])
    async with httpx.AsyncClient() as browser:  # the customer, at the processor's page
        page = await browser.get(body["next_action"]["url"], params={"result": "success"})
    assert page.status_code == 200
    paid = await sys_.settled(body["id"], "completed", timeout=30)
    assert paid["next_action"] is None
    assert await balance(sys_, wallet) == ("24.90", "0.00")


async def test_a_failed_3ds_authentication_declines_and_releases(sys_: System) -> None:
    wallet = await sys_.wallet(funds="30.00")
    await sys_.behave(three_ds_rate=1.0)
    pid = (await sys_.pay(wallet["user_id"], "4.00")).json()["id"]
    waiting = await sys_.settled(pid, "requires_action", timeout=20)
    async with httpx.AsyncClient() as browser:
        await browser.get(waiting["next_action"]["url"], params={"result": "fail"})
    failed = await sys_.settled(pid, "failed", timeout=30)
    assert failed["failure"]["code"] == "gateway_declined"
    assert "authentication_failed" in failed["failure"]["message"]
    assert await balance(sys_, wallet) == ("30.00", "0.00")
