"""Disputes over real HTTP (issue 30): a cardholder disputes a card top-up at the processor (the
fake gateway's lever), its signed `dispute.created` reaches the inbox, and the dispute's saga
takes the money back from the wallet (below zero: restricted) until the merchant's evidence and
the network's decision; won puts it back, lost keeps it gone, accepted loses it at once."""

from __future__ import annotations

import re
import secrets
from typing import Any

from db.api_keys import create_key
from tests.conftest import eventually
from tests.system.conftest import System
from tests.system.test_money_movement import top_up, withdraw


async def topped_up_and_spent(sys_: System, amount: str, spend: str | None
                              ) -> tuple[dict[str, Any], dict[str, Any]]:
    """A wallet topped up by card (amount + 2% fee charged), then `spend` paid out of it."""
    wallet = await sys_.wallet()
    made = await top_up(sys_, wallet, amount, wait="10")
    assert made.json()["status"] == "succeeded", made.text
    if spend:
        paid = await sys_.pay(wallet["user_id"], spend)
        await sys_.settled(paid.json()["id"], "completed")
    return wallet, made.json()


async def disputed(sys_: System, charge_id: str, **body: Any) -> dict[str, Any]:
    """The processor opens a dispute; paysaga's dispute once its saga recorded it."""
    opened = await sys_.gateway.post(f"/charges/{charge_id}/dispute", json=body)
    assert opened.status_code == 201, opened.text

    async def listed() -> list[dict[str, Any]]:
        found = await sys_.api.get("/v1/disputes", params={"limit": 50})
        return [d for d in found.json()["items"] if d["charge_id"] == charge_id]

    [dispute] = await eventually(listed, lambda d: len(d) == 1, timeout=30)
    return dict(dispute) | {"processor_id": opened.json()["id"]}


async def wallet_of(sys_: System, wallet: dict[str, Any]) -> dict[str, Any]:
    return dict((await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json())


async def dispute_now(sys_: System, did: str) -> dict[str, Any]:
    return dict((await sys_.api.get(f"/v1/disputes/{did}")).json())


async def test_a_disputed_top_up_restricts_the_wallet_until_the_dispute_is_won(
        sys_: System) -> None:
    await sys_.behave()
    wallet, made = await topped_up_and_spent(sys_, "40.00", spend="30.00")  # 40.00 - 30.60
    d = await disputed(sys_, made["gateway_reference"])
    assert (d["status"], d["amount"], d["fee"], d["from_wallet"], d["top_up_id"]) == (
        "needs_response", "40.80", "15.00", "40.00", made["id"])
    w = await wallet_of(sys_, wallet)
    assert (w["balance"], w["disputed"], w["restricted"]) == ("-30.60", "40.00", True)

    # restricted: no payment, no withdrawal (deposits still work)
    refused = await withdraw(sys_, wallet, "1.00")
    assert (refused.status_code, refused.json()["code"]) == (409, "WALLET_RESTRICTED")
    paid = await sys_.pay(wallet["user_id"], "1.00")
    failed = await sys_.settled(paid.json()["id"], "failed")
    assert failed["failure"]["code"] == "wallet_restricted"

    answer = await sys_.api.post(f"/v1/disputes/{d['id']}/evidence", json={
        "text": "signed delivery receipt", "files": ["file_1"]})
    assert (answer.status_code, answer.json()["status"]) == (200, "under_review"), answer.text
    again = await sys_.api.post(f"/v1/disputes/{d['id']}/evidence", json={"text": "more"})
    assert (again.status_code, again.json()["code"]) == (409, "DISPUTE_NOT_OPEN")
    at_gateway = (await sys_.gateway.get(f"/disputes/{d['processor_id']}")).json()
    assert at_gateway["evidence"] == {"text": "signed delivery receipt", "files": ["file_1"]}

    closed = await sys_.gateway.post(f"/disputes/{d['processor_id']}/close",
                                     json={"status": "won"})
    assert closed.status_code == 200
    won = await eventually(lambda: dispute_now(sys_, d["id"]), lambda x: x["status"] == "won",
                           timeout=30)
    assert [e["type"] for e in won["timeline"]] == [
        "dispute.created", "dispute.evidence_submitted", "dispute.won"]
    w = await wallet_of(sys_, wallet)
    assert (w["balance"], w["disputed"], w["restricted"]) == ("9.40", "0.00", False)


async def test_an_accepted_dispute_is_lost_and_the_money_stays_gone(sys_: System) -> None:
    await sys_.behave()
    wallet, made = await topped_up_and_spent(sys_, "20.00", spend=None)
    d = await disputed(sys_, made["gateway_reference"], amount="10.00")  # a partial dispute
    assert (d["amount"], d["from_wallet"]) == ("10.00", "10.00")
    accepted = await sys_.api.post(f"/v1/disputes/{d['id']}/accept")
    assert (accepted.status_code, accepted.json()["status"]) == (200, "lost"), accepted.text
    assert accepted.json()["outcome_reason"] == "accepted"
    w = await wallet_of(sys_, wallet)
    assert (w["balance"], w["disputed"], w["restricted"]) == ("10.00", "0.00", False)
    # another tenant sees nothing of it, and cannot answer it
    _, other = await create_key(sys_.engine, tenant_id="someone-else", name="other",
                                scopes=["wallets:read", "wallets:write"])
    as_other = {"Authorization": f"Bearer {other}"}
    hidden = await sys_.api.get(f"/v1/disputes/{d['id']}", headers=as_other)
    assert (hidden.status_code, hidden.json()["code"]) == (404, "DISPUTE_NOT_FOUND")
    refused = await sys_.api.post(f"/v1/disputes/{d['id']}/accept", headers=as_other)
    assert refused.status_code == 404
    assert (await sys_.api.get("/v1/disputes", headers=as_other)).json()["items"] == []
    at_gateway = (await sys_.gateway.get(f"/disputes/{d['processor_id']}")).json()
    assert at_gateway["status"] == "lost"
    # the processor's own dispute.closed then changes nothing
    lost = await eventually(lambda: dispute_now(sys_, d["id"]), lambda x: x["status"] == "lost")
    assert [e["type"] for e in lost["timeline"]] == ["dispute.created", "dispute.lost"]
    listed = await sys_.api.get("/v1/disputes", params={"status": "lost",
                                                        "wallet_id": wallet["id"]})
    assert [x["id"] for x in listed.json()["items"]] == [d["id"]]
    metrics = (await sys_.api.get("/metrics")).text
    lost_now = re.search(r'^paysaga_disputes_by_status\{status="lost"\} (\S+)$', metrics, re.M)
    assert lost_now is not None
    assert float(lost_now.group(1)) >= 1


async def test_a_dispute_on_a_payments_charge_is_recorded_unexpected_and_moves_nothing(
        sys_: System) -> None:
    await sys_.behave()
    wallet = await sys_.wallet(funds="20.00")
    paid = await sys_.pay(wallet["user_id"], "5.00")
    p = await sys_.settled(paid.json()["id"], "completed")
    d = await disputed(sys_, p["gateway_reference"])
    assert (d["unexpected"], d["payment_id"], d["from_wallet"]) == (True, p["id"], "0.00")
    assert (await wallet_of(sys_, wallet))["balance"] == "14.90"  # 20.00 - 5.00 - 0.10 only


async def test_unknown_disputes_and_bad_evidence_are_refused_clearly(sys_: System) -> None:
    missing = await sys_.api.get(f"/v1/disputes/dsp_{secrets.token_hex(4)}")
    assert (missing.status_code, missing.json()["code"]) == (404, "DISPUTE_NOT_FOUND")
    bad = await sys_.api.get("/v1/disputes", params={"status": "open"})
    assert bad.status_code == 400
    empty = await sys_.api.post(f"/v1/disputes/dsp_{secrets.token_hex(4)}/evidence",
                                json={"text": ""})
    assert empty.status_code == 400
    blank = await sys_.api.post(f"/v1/disputes/dsp_{secrets.token_hex(4)}/evidence",
                                json={"text": "  \n "})
    assert (blank.status_code, blank.json()["code"]) == (400, "VALIDATION_ERROR")


async def test_a_dispute_whose_event_was_lost_is_opened_by_reconciliation(sys_: System) -> None:
    from tests.system.test_reconciliation import findings, now, reconcile

    start = now()
    await sys_.behave()
    wallet, made = await topped_up_and_spent(sys_, "10.00", spend=None)
    await sys_.behave(webhook_loss_rate=1.0)  # the processor's dispute.created never arrives
    opened = await sys_.gateway.post(f"/charges/{made['gateway_reference']}/dispute", json={})
    assert opened.status_code == 201
    await sys_.behave()
    run = await reconcile(sys_, start)
    assert run["counts"].get("unrecorded_dispute") == 1
    found = (await findings(sys_, run["id"]))[f"dispute:{opened.json()['id']}"]
    assert (found["class"], found["severity"], found["status"], found["heal"]) == (
        "unrecorded_dispute", "critical", "healed", "replay")

    async def listed() -> list[dict[str, Any]]:
        answer = await sys_.api.get("/v1/disputes", params={"wallet_id": wallet["id"]})
        return list(answer.json()["items"])

    [d] = await eventually(listed, lambda x: len(x) == 1, timeout=30)  # its saga opened it
    assert (d["status"], d["from_wallet"]) == ("needs_response", "10.00")
    assert (await wallet_of(sys_, wallet))["balance"] == "0.00"
    again = await reconcile(sys_, start)
    assert again["counts"].get("matched", 0) >= 2  # the top-up's charge and its dispute
    assert "unrecorded_dispute" not in again["counts"]
