"""Money in and out (issue 19): top-ups charge a source through the gateway and credit the wallet
exactly the amount; withdrawals hold amount + fee, pay out through the gateway, then debit the hold
or release it. Both sagas against the real fake gateways, under their faults."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus

from tests.conftest import eventually
from tests.system.conftest import System

CARD = {"type": "card", "token": "tok_visa"}
BANK = {"type": "bank_account", "token": "ba_123"}
SETTLED = ("succeeded", "failed")


async def top_up(sys_: System, wallet: dict[str, Any], amount: str, *, key: str | None = None,
                 wait: str | None = None, source: dict[str, str] | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key or secrets.token_hex(6)}
    if wait:
        headers["Prefer"] = f"wait={wait}"
    return await sys_.api.post(f"/v1/wallets/{wallet['id']}/top-ups", headers=headers,
                               json={"amount": amount, "source": source or CARD})


async def withdraw(sys_: System, wallet: dict[str, Any], amount: str, *, key: str | None = None,
                   wait: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key or secrets.token_hex(6)}
    if wait:
        headers["Prefer"] = f"wait={wait}"
    return await sys_.api.post(f"/v1/wallets/{wallet['id']}/withdrawals", headers=headers,
                               json={"amount": amount, "destination": BANK})


async def settled(sys_: System, path: str, *statuses: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        return dict((await sys_.api.get(path)).json())
    return await eventually(probe, lambda t: t.get("status") in (statuses or SETTLED), timeout=30)


async def balance(sys_: System, wallet: dict[str, Any]) -> tuple[str, str]:
    w = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()
    return w["balance"], w["held"]


async def gateway(sys_: System, owner: str, kind: str) -> list[dict[str, Any]]:
    return [r for r in await sys_.records(owner) if r.get("object") == kind]


async def status_of(sys_: System, workflow_id: str) -> WorkflowExecutionStatus | None:
    desc = await sys_.temporal.client.get_workflow_handle(workflow_id).describe()
    return desc.status


async def local_steps(sys_: System, workflow_id: str) -> int:
    """The local activities the saga ran (its steps and its first tries at the gateway), from
    its history."""
    history = await sys_.temporal.client.get_workflow_handle(workflow_id).fetch_history()
    return sum(1 for e in history.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
               and e.marker_recorded_event_attributes.marker_name == "core_local_activity")


async def test_a_top_up_charges_the_source_and_credits_the_wallet_the_amount(sys_: System) -> None:
    wallet = await sys_.wallet()
    answer = await top_up(sys_, wallet, "40.00", wait="10")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["id"].startswith("tup_")
    assert (body["status"], body["amount"], body["fee"], body["currency"]) == (
        "succeeded", "40.00", "0.80", "USD")
    assert body["wallet_id"] == wallet["id"]
    assert await balance(sys_, wallet) == ("40.00", "0.00")
    charges = await gateway(sys_, body["id"], "charge")
    assert [(c["amount"], c["payment_id"]) for c in charges] == [("40.80", body["id"])]
    moves = (await sys_.api.get(f"/v1/wallets/{wallet['id']}/transactions")).json()["items"]
    assert [(m["type"], m["amount"]) for m in moves] == [("top_up", "40.00")]
    assert (await sys_.api.get(f"/v1/top-ups/{body['id']}")).json()["status"] == "succeeded"
    listed = (await sys_.api.get(f"/v1/wallets/{wallet['id']}/top-ups")).json()
    assert [t["id"] for t in listed["items"]] == [body["id"]]
    assert await status_of(sys_, body["id"]) == WorkflowExecutionStatus.COMPLETED
    # the opening, and the charge's first try, which credited the wallet itself
    assert await local_steps(sys_, body["id"]) == 2
    feed: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 200}
    while True:  # the tenant's whole feed, by cursor
        page = (await sys_.api.get("/v1/events", params=params)).json()
        feed += page["items"]
        if not page["has_more"]:
            break
        params["starting_after"] = page["next_cursor"]
    mine = [e for e in feed if e["data"].get("top_up_id") == body["id"]]
    assert [e["type"] for e in mine] == ["top_up.initiated", "top_up.succeeded"]
    assert mine[-1]["data"]["amount"] == "40.00"
    assert mine[-1]["data"]["fee"] == "0.80"
    assert mine[-1]["data"]["balance_after"] == "40.00"


async def test_a_top_up_is_idempotent_by_key(sys_: System) -> None:
    wallet = await sys_.wallet()
    key = secrets.token_hex(6)
    answers = await asyncio.gather(*[top_up(sys_, wallet, "5.00", key=key) for _ in range(5)])
    assert sorted(a.status_code for a in answers).count(202) >= 1
    assert {a.json()["id"] for a in answers} == {answers[0].json()["id"]}
    tid = answers[0].json()["id"]
    await settled(sys_, f"/v1/top-ups/{tid}")
    again = await top_up(sys_, wallet, "5.00", key=key)
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (200, "true")
    other = await top_up(sys_, wallet, "6.00", key=key)
    assert (other.status_code, other.json()["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert len(await gateway(sys_, tid, "charge")) == 1
    assert await balance(sys_, wallet) == ("5.00", "0.00")


async def test_a_declined_top_up_fails_and_credits_nothing(sys_: System) -> None:
    await sys_.behave(decline_rate=1.0, decline_code="insufficient_funds")
    wallet = await sys_.wallet()
    body = (await top_up(sys_, wallet, "10.00", wait="10")).json()
    assert body["status"] == "failed"
    assert body["failure"]["code"] == "gateway_declined"
    assert "insufficient_funds" in body["failure"]["message"]
    assert await balance(sys_, wallet) == ("0.00", "0.00")
    assert await status_of(sys_, body["id"]) == WorkflowExecutionStatus.FAILED


async def test_a_top_up_whose_answer_was_lost_is_looked_up_and_credited_once(sys_: System) -> None:
    await sys_.behave(fail_after_charge_rate=1.0)
    wallet = await sys_.wallet()
    tid = (await top_up(sys_, wallet, "12.00")).json()["id"]
    done = await settled(sys_, f"/v1/top-ups/{tid}")
    assert done["status"] == "succeeded"
    assert len(await gateway(sys_, tid, "charge")) == 1
    assert await balance(sys_, wallet) == ("12.00", "0.00")


async def test_a_top_up_at_a_processor_that_is_down_waits_and_never_fails_unknown(
        sys_: System) -> None:
    await sys_.behave(down=True)
    wallet = await sys_.wallet()
    answer = await top_up(sys_, wallet, "7.00", wait="1")
    assert (answer.status_code, answer.headers["Preference-Applied"]) == (202, "wait=1")
    tid = answer.json()["id"]
    assert (await sys_.api.get(f"/v1/top-ups/{tid}")).json()["status"] in ("pending", "processing")
    await sys_.behave()
    assert (await settled(sys_, f"/v1/top-ups/{tid}"))["status"] == "succeeded"
    assert await balance(sys_, wallet) == ("7.00", "0.00")


async def test_a_withdrawal_holds_pays_out_and_debits(sys_: System) -> None:
    wallet = await sys_.wallet(funds="100.00")
    answer = await withdraw(sys_, wallet, "30.00", wait="10")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["id"].startswith("wdr_")
    assert (body["status"], body["amount"], body["fee"]) == ("succeeded", "30.00", "0.60")
    assert await balance(sys_, wallet) == ("69.40", "0.00")
    payouts = await gateway(sys_, body["id"], "payout")
    assert [(p["amount"], p["withdrawal_id"]) for p in payouts] == [("30.00", body["id"])]
    moves = (await sys_.api.get(f"/v1/wallets/{wallet['id']}/transactions")).json()["items"]
    assert [(m["type"], m["amount"], m["balance_after"]) for m in moves[:2]] == [
        ("withdrawal_fee", "-0.60", "69.40"), ("withdrawal", "-30.00", "70.00")]
    listed = (await sys_.api.get(f"/v1/wallets/{wallet['id']}/withdrawals")).json()
    assert [w["id"] for w in listed["items"]] == [body["id"]]
    await eventually(lambda: status_of(sys_, body["id"]),
                     lambda s: s == WorkflowExecutionStatus.COMPLETED)
    # the opening, and the payout's first try, which debited the hold itself
    assert await local_steps(sys_, body["id"]) == 2


async def test_a_withdrawal_the_wallet_cannot_pay_is_refused_at_once(sys_: System) -> None:
    wallet = await sys_.wallet(funds="10.00")
    refused = await withdraw(sys_, wallet, "10.00")  # 10.00 + 0.20 fee > 10.00
    assert refused.status_code == 422
    assert (refused.json()["code"], refused.json()["available"]) == ("INSUFFICIENT_FUNDS", "10.00")
    assert (await sys_.api.get(f"/v1/wallets/{wallet['id']}/withdrawals")).json()["items"] == []
    assert await balance(sys_, wallet) == ("10.00", "0.00")


async def test_concurrent_withdrawals_never_overdraw(sys_: System) -> None:
    wallet = await sys_.wallet(funds="50.00")
    answers = await asyncio.gather(*[withdraw(sys_, wallet, "20.00") for _ in range(4)])
    started = [a.json()["id"] for a in answers if a.status_code == 202]
    outcomes = [(await settled(sys_, f"/v1/withdrawals/{w}")) for w in started]
    succeeded = [o for o in outcomes if o["status"] == "succeeded"]
    assert len(succeeded) == 2  # 2 x 20.40 fits in 50.00, a third does not
    assert all(o["failure"]["code"] == "insufficient_funds" for o in outcomes
               if o["status"] == "failed")
    assert await balance(sys_, wallet) == ("9.20", "0.00")


async def test_a_declined_payout_releases_the_hold(sys_: System) -> None:
    wallet = await sys_.wallet(funds="50.00")
    await sys_.behave(decline_rate=1.0)
    body = (await withdraw(sys_, wallet, "20.00", wait="10")).json()
    assert (body["status"], body["failure"]["code"]) == ("failed", "gateway_declined")
    assert await balance(sys_, wallet) == ("50.00", "0.00")
    assert await gateway(sys_, body["id"], "payout") == []
    assert await status_of(sys_, body["id"]) == WorkflowExecutionStatus.FAILED


async def test_a_payout_whose_answer_was_lost_is_looked_up_and_made_once(sys_: System) -> None:
    wallet = await sys_.wallet(funds="50.00")
    await sys_.behave(fail_after_charge_rate=1.0)
    wid = (await withdraw(sys_, wallet, "20.00")).json()["id"]
    assert (await settled(sys_, f"/v1/withdrawals/{wid}"))["status"] == "succeeded"
    assert len(await gateway(sys_, wid, "payout")) == 1
    assert await balance(sys_, wallet) == ("29.60", "0.00")


async def test_a_payout_at_a_processor_that_is_down_keeps_the_hold_until_it_answers(
        sys_: System) -> None:
    wallet = await sys_.wallet(funds="50.00")
    await sys_.behave(down=True)
    answer = await withdraw(sys_, wallet, "20.00", wait="1")
    assert answer.status_code == 202
    wid = answer.json()["id"]
    await eventually(lambda: balance(sys_, wallet), lambda b: b == ("50.00", "20.40"))
    await sys_.behave()
    assert (await settled(sys_, f"/v1/withdrawals/{wid}"))["status"] == "succeeded"
    assert await balance(sys_, wallet) == ("29.60", "0.00")


async def test_unknown_top_ups_and_withdrawals_are_404_and_another_tenants_wallet_too(
        sys_: System) -> None:
    for path, code in (("/v1/top-ups/tup_nope", "TOP_UP_NOT_FOUND"),
                       ("/v1/withdrawals/wdr_nope", "WITHDRAWAL_NOT_FOUND")):
        answer = await sys_.api.get(path)
        assert (answer.status_code, answer.json()["code"]) == (404, code)
    answer = await top_up(sys_, {"id": "wal_nope"}, "1.00")
    assert (answer.status_code, answer.json()["code"]) == (404, "WALLET_NOT_FOUND")
    wallet = await sys_.wallet()
    bad = await top_up(sys_, wallet, "1.001")
    assert (bad.status_code, bad.json()["code"]) == (400, "VALIDATION_ERROR")
    odd = await sys_.api.post(f"/v1/wallets/{wallet['id']}/top-ups", json={
        "amount": "1.00", "source": {"type": "card", "number": "4242424242424242"}},
        headers={"Idempotency-Key": secrets.token_hex(4)})
    assert odd.status_code == 400  # a card number is never taken: tokens only


async def test_reconciliation_matches_money_in_and_out_and_reports_a_stray_payout(
        sys_: System) -> None:
    from tests.system.test_reconciliation import now, reconcile

    start = now()
    wallet = await sys_.wallet(funds="100.00")
    tid = (await top_up(sys_, wallet, "40.00", wait="10")).json()["id"]
    wid = (await withdraw(sys_, wallet, "30.00", wait="10")).json()["id"]
    assert (await sys_.api.get(f"/v1/top-ups/{tid}")).json()["status"] == "succeeded"
    assert (await sys_.api.get(f"/v1/withdrawals/{wid}")).json()["status"] == "succeeded"
    stray = f"wdr_{secrets.token_hex(6)}"  # paid out at the processor, no withdrawal of ours
    made = await sys_.gateway.post("/payouts", json={
        "idempotency_key": f"{stray}:a0:primary", "withdrawal_id": stray, "amount": "5.00",
        "currency": "USD"})
    assert made.status_code == 201

    run = await reconcile(sys_, start)

    assert run["counts"] == {"matched": 2, "unknown_payout": 1}  # top-up charge, payout; stray
    assert run["critical"] == 1
    [finding] = run["findings"]["items"]
    assert (finding["class"], finding["heal"], finding["status"]) == ("unknown_payout", "none",
                                                                       "open")
    assert finding["evidence"]["gateway"]["amount"] == "5.00"
    resolved = await sys_.operator.post(f"/v1/reconciliations/findings/{finding['id']}/resolve",
                                        json={"note": "a payout made by hand at the processor"})
    assert resolved.json()["status"] == "resolved"
