"""Reconciliation against the gateway's report, with each mismatch class planted through the fake
gateway's behaviour or its own endpoints, then classified, healed where that is safe, and
resolved by an operator where it is not."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Any

from contracts.reconciliation import ReconcileRun
from tests.conftest import eventually
from tests.system.conftest import System
from worker.schedules import RECONCILIATION_ID, ensure_reconciliation


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


async def reconcile(sys_: System, start: str, end: str | None = None) -> dict[str, Any]:
    created = await sys_.operator.post("/v1/reconciliations", json={"from": start, "to": end or now()},
                                  headers={"Idempotency-Key": secrets.token_hex(8)})
    assert created.status_code == 202, created.text
    rid = created.json()["id"]

    async def run() -> dict[str, Any]:
        return dict((await sys_.operator.get(f"/v1/reconciliations/{rid}")).json())

    return await eventually(run, lambda r: r.get("status") == "completed", timeout=60)


async def findings(sys_: System, rid: str) -> dict[str, dict[str, Any]]:
    """The run's findings by gateway key, every page."""
    seen: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = (await sys_.operator.get(f"/v1/reconciliations/{rid}", params=params)
                ).json()["findings"]
        seen |= {f["gateway_key"]: f for f in page["items"]}
        if not page["has_more"]:
            return seen
        params["starting_after"] = page["next_cursor"]


async def completed(sys_: System, wallet: dict[str, Any], amount: str) -> dict[str, Any]:
    created = await sys_.pay(wallet["user_id"], amount)
    assert created.status_code == 202, created.text
    return await sys_.settled(created.json()["id"], "completed")


async def test_a_clean_window_matches_every_charge_and_refund(sys_: System) -> None:
    start = now()
    wallet = await sys_.wallet(funds="100.00")
    paid = [await completed(sys_, wallet, "10.00") for _ in range(3)]
    refund = await sys_.api.post(f"/v1/payments/{paid[0]['id']}/refunds", json={"amount": "4.00"},
                                 headers={"Idempotency-Key": secrets.token_hex(8)})
    assert refund.status_code == 202, refund.text
    await eventually(lambda: sys_.api.get(f"/v1/payments/{paid[0]['id']}/refunds"),
                     lambda r: r.json()["items"][0]["status"] == "succeeded")

    run = await reconcile(sys_, start)

    assert run["counts"] == {"matched": 4}  # three charges and a refund
    assert run["critical"] == 0
    assert run["findings"] == {"items": [], "has_more": False, "next_cursor": None, "limit": 50,
                               "offset": 0, "total": None}
    listed = (await sys_.operator.get("/v1/reconciliations", params={"limit": 5})).json()
    assert listed["items"][0]["id"] == run["id"]


async def test_planted_mismatches_are_classified_and_the_safe_ones_healed(sys_: System) -> None:
    start = now()
    wallet = await sys_.wallet(funds="500.00")

    # a charge made at the gateway with no payment at all
    foreign = f"foreign-{secrets.token_hex(4)}"
    r = await sys_.gateway.post("/charges", json={"idempotency_key": foreign, "payment_id": "none",
                                                  "amount": "7.00", "currency": "USD"})
    assert r.status_code == 201
    # the processor charges a cent more, then in another currency
    await sys_.behave(amount_skew="0.01")
    skewed = await completed(sys_, wallet, "11.00")
    await sys_.behave(charge_currency="EUR")
    foreign_currency = await completed(sys_, wallet, "12.00")
    await sys_.behave()
    # a refund nobody asked paysaga for, and a charge the processor voided after the capture
    rogue = f"rogue-{secrets.token_hex(4)}"
    refunded = await completed(sys_, wallet, "13.00")
    r = await sys_.gateway.post("/refunds", json={"idempotency_key": rogue, "amount": "13.00",
                                                  "charge_id": refunded["gateway_reference"]})
    assert r.status_code == 201
    voided = await completed(sys_, wallet, "14.00")
    assert (await sys_.gateway.post(f"/charges/{voided['gateway_reference']}/void")).status_code == 200

    # a late charge: the gateway failed every call, the payment failed and released its hold; the
    # charge landed afterwards under the payment's own key
    await sys_.behave(fail_rate=1.0)
    failed = await sys_.settled((await sys_.pay(wallet["user_id"], "15.00")).json()["id"], "failed")
    await sys_.behave()
    late = await sys_.gateway.post("/charges", json={
        "idempotency_key": f"{failed['id']}:a0:primary", "payment_id": failed["id"], "amount": "15.00",
        "currency": "USD"})
    assert late.status_code == 201

    # charged while its hold is active, but its workflow was terminated before the capture
    await sys_.behave(latency_ms=1500)
    orphan = (await sys_.pay(wallet["user_id"], "16.00")).json()
    await sys_.settled(orphan["id"], "processing")
    await sys_.temporal.client.get_workflow_handle(orphan["id"]).terminate("operator mistake")
    await eventually(lambda: sys_.charges(orphan["id"]), lambda c: len(c) == 1, timeout=10)
    await sys_.behave()
    before = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()

    run = await reconcile(sys_, start)
    found = await findings(sys_, run["id"])

    def key(payment: dict[str, Any]) -> str:
        return f"{payment['id']}:a0:primary"

    classes = {k: (f["class"], f["status"], f["heal"]) for k, f in found.items()}
    assert classes == {
        foreign: ("unknown_charge", "open", "none"),
        key(skewed): ("amount_mismatch", "open", "none"),
        key(foreign_currency): ("currency_mismatch", "open", "none"),
        rogue: ("refund_mismatch", "open", "none"),
        key(voided): ("captured_without_charge", "open", "none"),
        key(failed): ("charged_not_captured", "healed", "refund"),
        key(orphan): ("charged_not_captured", "healed", "capture"),
    }
    assert run["critical"] == 7
    assert found[key(skewed)]["evidence"]["gateway"]["amount"] == "11.01"
    assert found[key(skewed)]["evidence"]["ledger"]["amount"] == "11.00"

    # the heals: the late charge was refunded at the gateway, the orphan's hold captured
    refunds = [c for c in (await sys_.gateway.get("/charges", params={"payment_id": failed["id"]})).json()
               if c["object"] == "refund"]
    assert [(x["amount"], x["charge_id"]) for x in refunds] == [("15.00", late.json()["id"])]
    assert (await sys_.payment(failed["id"]))["status"] == "failed"
    healed = await sys_.payment(orphan["id"])
    assert healed["status"] == "completed"
    assert healed["gateway_reference"] == found[key(orphan)]["gateway_reference"]
    after = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()
    assert (before["balance"], before["held"]) == ("449.00", "16.32")
    assert (after["balance"], after["held"]) == ("432.68", "0.00")  # 16.00 + 0.32 fee debited
    assert "reconciliation.healed" in await sys_.events(orphan["id"])
    assert "reconciliation.finding" in await sys_.events(skewed["id"])

    # a second run over the same window: the heals hold, nothing is reported twice
    again = await reconcile(sys_, start)
    # matched now: the refunded payment's charge, the orphan's (captured) and the heal's refund
    assert again["counts"] == {"matched": 3, "reversed": 1, "unknown_charge": 1,
                               "amount_mismatch": 1, "currency_mismatch": 1, "refund_mismatch": 1,
                               "captured_without_charge": 1}
    seen_again = await findings(sys_, again["id"])
    assert {f["id"] for f in seen_again.values()} <= {f["id"] for f in found.values()}
    assert all(f["times_seen"] == 2 for f in seen_again.values())

    # an operator resolves the exceptions with a note; a healed finding is not theirs to resolve
    listed = (await sys_.operator.get("/v1/reconciliations/findings",
                                 params={"status": "open", "limit": 200})).json()["items"]
    assert {f["gateway_key"] for f in listed} >= {foreign, rogue, key(voided)}
    for f in found.values():
        answer = await sys_.operator.post(f"/v1/reconciliations/findings/{f['id']}/resolve",
                                     json={"note": "planted by the test"})
        if f["status"] == "open":
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "resolved"
        else:
            assert answer.status_code == 409
            assert answer.json()["code"] == "CANNOT_RESOLVE_FINDING"
    metrics = (await sys_.api.get("/metrics")).text
    assert 'paysaga_reconciliation_open_exceptions{severity="critical"} 0.0' in metrics


async def test_a_payment_still_in_flight_is_left_for_the_next_run(sys_: System) -> None:
    start = now()
    wallet = await sys_.wallet(funds="50.00")
    # the charge is recorded, its answer lost; then the gateway goes down, so the payment waits
    await sys_.behave(timeout_rate=1.0, timeout_hang_seconds=20)
    paying = (await sys_.pay(wallet["user_id"], "5.00")).json()
    await eventually(lambda: sys_.charges(paying["id"]), lambda c: len(c) == 1, timeout=10)
    await sys_.behave(down=True)

    run = await reconcile(sys_, start)
    assert run["counts"] == {"in_flight": 1}
    assert run["findings"]["items"] == []

    await sys_.behave()
    await sys_.settled(paying["id"], "completed", timeout=90)
    assert (await reconcile(sys_, start))["counts"] == {"matched": 1}


async def test_the_schedule_runs_it_and_temporal_schedule_trigger_runs_it_now(
        sys_: System) -> None:
    from datetime import timedelta

    s = sys_.settings
    await ensure_reconciliation(sys_.temporal.client, s.temporal_task_queue, timedelta(hours=1),
                                ReconcileRun(lookback_seconds=600, settle_seconds=0))
    try:
        from devstack.temporal import temporal_binary

        proc = await asyncio.create_subprocess_exec(
            temporal_binary(), "schedule", "trigger", "--schedule-id", RECONCILIATION_ID,
            "--address", s.temporal_address)
        assert await proc.wait() == 0

        async def scheduled() -> list[dict[str, Any]]:
            items = (await sys_.operator.get("/v1/reconciliations", params={"limit": 5})).json()["items"]
            return [r for r in items if r["trigger"] == "schedule" and r["status"] == "completed"]

        runs = await eventually(scheduled, bool, timeout=60)
        assert runs[0]["id"].startswith(f"{RECONCILIATION_ID}-run")
    finally:
        await sys_.temporal.client.get_schedule_handle(RECONCILIATION_ID).delete()


async def test_posting_a_released_charge_when_so_declared(sys_: System) -> None:
    """RECONCILIATION_RELEASED_CHARGE=post: a late charge of a payment whose workflow has ended is
    debited from the wallet (the payment completes); one whose payment still waits for a retry is
    left to an operator, since a retry would charge again."""
    from temporalio.testing import ActivityEnvironment

    from activities.reconciliation import ReconciliationActivities
    from contracts.reconciliation import ReportPage
    from gateway.breaker import CircuitBreaker
    from gateway.client import ConnectorClient, Gateways, session

    start = now()
    wallet = await sys_.wallet(funds="40.00")
    await sys_.behave(fail_rate=1.0)
    ended = await sys_.settled((await sys_.pay(wallet["user_id"], "10.00")).json()["id"], "failed")
    waiting = await sys_.settled((await sys_.pay(wallet["user_id"], "5.00")).json()["id"], "failed")
    await sys_.behave()
    canceled = await sys_.api.post(f"/v1/payments/{ended['id']}/cancel")
    assert canceled.status_code == 200, canceled.text
    await eventually(lambda: sys_.temporal.client.get_workflow_handle(ended["id"]).describe(),
                     lambda d: d.close_time is not None)
    for p, amount in ((ended, "10.00"), (waiting, "5.00")):
        late = await sys_.gateway.post("/charges", json={
            "idempotency_key": f"{p['id']}:a0:primary", "payment_id": p["id"], "amount": amount,
            "currency": "USD"})
        assert late.status_code == 201

    async with Gateways([ConnectorClient(name, session(str(client.base_url)),
                                         CircuitBreaker(10_000))
                         for name, client in sys_.gateways.items()]) as gateways:
        posting = ReconciliationActivities(sys_.engine, gateways, sys_.temporal.client, "post")
        env = ActivityEnvironment()
        page = await env.run(posting.reconcile_page,
                             ReportPage("rec_post_test", start, now(), 0, 100))
        outcomes = {f: await env.run(posting.heal_finding, f) for f in page.to_heal}

    assert sorted(outcomes.values()) == ["healed", "open"]
    posted = await sys_.payment(ended["id"])
    assert posted["status"] == "completed"
    assert (await sys_.payment(waiting["id"]))["status"] == "failed"
    after = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()
    assert (after["balance"], after["held"]) == ("29.80", "0.00")  # 10.00 + 0.20 fee
    left = (await sys_.operator.get("/v1/reconciliations/findings",
                               params={"status": "open", "class": "charged_not_captured"})).json()
    mine = [f for f in left["items"] if f["payment_id"] == waiting["id"]]
    assert len(mine) == 1
    assert "workflow still runs" in mine[0]["outcome"]
    resolved = await sys_.operator.post(f"/v1/reconciliations/findings/{mine[0]['id']}/resolve",
                                   json={"note": "refunded at the processor by hand"})
    assert resolved.status_code == 200
