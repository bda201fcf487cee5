"""The event feed, the outbox and its relay, and the Prometheus metrics."""

from __future__ import annotations

import re
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from tests.system.conftest import System
from worker.outbox import relay_once


async def test_the_event_feed_is_ordered_and_resumable(sys_: System) -> None:
    wallet = await sys_.wallet(funds="50.00")
    pid = (await sys_.pay(wallet["user_id"], "5.00")).json()["id"]
    await sys_.settled(pid, "completed")
    seen: list[dict[str, Any]] = []
    after = 0
    while True:
        page = (await sys_.api.get("/v1/events", params={"after": after, "limit": 7})).json()
        seen.extend(page["items"])
        if page["next_after"] is None:
            break
        after = page["next_after"]
    ids = [e["id"] for e in seen]
    assert ids == sorted(ids)
    assert len(ids) == len(set(ids))
    mine = [e["type"] for e in seen if e["payment_id"] == pid]
    assert mine == ["payment.initiated", "wallet.funds_reserved", "gateway.payment_approved",
                    "wallet.funds_deducted", "payment.completed"]
    assert "wallet.funds_deposited" in [e["type"] for e in seen if e["wallet_id"] == wallet["id"]]


MONEY_FIELDS = {"amount", "fee", "balance_after", "wallet_balance_after"}


async def test_events_carry_money_as_decimal_strings_with_their_currency(sys_: System) -> None:
    await sys_.behave(decline_above="900")
    wallet = await sys_.wallet(funds="3000.00")
    pid = (await sys_.pay(wallet["user_id"], "100.50")).json()["id"]
    await sys_.settled(pid, "completed")
    await sys_.api.post(f"/v1/payments/{pid}/refunds", json={"amount": "0.50"},
                        headers={"Idempotency-Key": f"r-{pid}"})
    await sys_.settled(pid, "partially_refunded")
    declined = (await sys_.pay(wallet["user_id"], "950.00")).json()["id"]
    poor = (await sys_.pay(wallet["user_id"], "5000.00")).json()["id"]
    await sys_.settled(declined, "failed")
    await sys_.settled(poor, "failed")
    feed: list[dict[str, Any]] = []
    after = 0
    while after is not None:
        page = (await sys_.api.get("/v1/events", params={"after": after, "limit": 200})).json()
        feed.extend(page["items"])
        after = page["next_after"]
    mine = [e for e in feed if e["payment_id"] in (pid, declined, poor)
            or e["wallet_id"] == wallet["id"]]
    with_money = [e for e in mine if MONEY_FIELDS & set(e["data"])]
    assert {e["type"] for e in with_money} >= {
        "wallet.funds_deposited", "payment.initiated", "wallet.funds_reserved",
        "gateway.payment_approved", "wallet.funds_deducted", "payment.completed",
        "payment.refunded", "wallet.funds_released", "wallet.reservation_failed"}
    for event in with_money:
        assert event["data"]["currency"] == "USD", event
        for name in MONEY_FIELDS & set(event["data"]):
            assert isinstance(event["data"][name], str), event
            assert re.fullmatch(r"-?\d+\.\d{2}", event["data"][name]), event
    initiated = next(e for e in with_money if e["type"] == "payment.initiated")
    assert (initiated["data"]["amount"], initiated["data"]["fee"]) == ("100.50", "2.01")
    timeline = (await sys_.api.get(f"/v1/payments/{pid}/events")).json()["items"]
    assert timeline[-1]["data"]["amount"] == "0.50"  # the same form on the payment's timeline


async def test_the_relay_publishes_the_outbox(sys_: System) -> None:
    wallet = await sys_.wallet(funds="50.00")
    await sys_.settled((await sys_.pay(wallet["user_id"], "5.00")).json()["id"])
    before = (await sys_.api.get("/v1/outbox/stats")).json()
    assert before["pending"] > 0
    assert before["oldest_pending_age_seconds"] is not None
    while await relay_once(sys_.engine):
        pass
    after = (await sys_.api.get("/v1/outbox/stats")).json()
    assert (after["pending"], after["published"]) == (0, after["total"])
    assert after["oldest_pending_age_seconds"] is None


async def test_metrics_expose_business_figures_and_latency(sys_: System) -> None:
    await sys_.behave(decline_rate=1.0)
    wallet = await sys_.wallet(funds="50.00")
    await sys_.settled((await sys_.pay(wallet["user_id"], "5.00")).json()["id"], "failed")
    response = await sys_.api.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 200
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(response.text)
               for s in family.samples}
    assert samples[("paysaga_payment_failure_total", (("code", "gateway_declined"),))] >= 1
    assert samples[("paysaga_events_total", (("type", "payment.failed"),))] >= 1
    assert samples[("paysaga_payment_success_total", ())] >= 1
    assert any(name == "paysaga_http_request_duration_seconds_count"
               and dict(labels).get("route") == "/v1/payments" for name, labels in samples)


async def test_health_is_503_when_no_worker_polls(sys_: System) -> None:
    lonely = sys_.settings.model_copy(update={"temporal_task_queue": "nobody-polls-this"})
    app = create_app(lonely, temporal=sys_.temporal.client)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api") as api:
        response = await api.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["worker"] == "no worker is polling the task queue"
