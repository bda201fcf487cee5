"""The event feed, the outbox and its relay, and the Prometheus metrics."""

from __future__ import annotations

import re
from typing import Any

import httpx
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from telemetry.metrics import WORKER_REGISTRY
from tests.system.conftest import System
from worker.outbox import relay_once


async def test_the_event_feed_is_ordered_and_resumable(sys_: System) -> None:
    wallet = await sys_.wallet(funds="50.00")
    pid = (await sys_.pay(wallet["user_id"], "5.00")).json()["id"]
    await sys_.settled(pid, "completed")
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 7}
    while True:  # the one list shape: has_more, and next_cursor as the next starting_after
        page = (await sys_.api.get("/v1/events", params=params)).json()
        seen.extend(page["items"])
        assert page["total"] is None  # the feed is not counted
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        assert page["next_cursor"] == str(page["items"][-1]["id"])
        params["starting_after"] = page["next_cursor"]
    ids = [e["id"] for e in seen]
    assert ids == sorted(ids)
    assert len(ids) == len(set(ids))
    mine = [e["type"] for e in seen if e["payment_id"] == pid]
    assert mine == ["payment.initiated", "payment.routed", "wallet.funds_reserved",
                    "gateway.payment_approved", "wallet.funds_deducted", "payment.completed"]
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
    after: int | None = 0
    while after is not None:  # the feed's older parameter still resumes after any id
        page = (await sys_.api.get("/v1/events", params={"after": after, "limit": 200})).json()
        feed.extend(page["items"])
        after = page["items"][-1]["id"] if page["has_more"] else None
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


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(sys_: System) -> tuple[Samples, set[str]]:
    """Every sample of the API's /metrics and the worker's registry, and which are counters."""
    text = (await sys_.api.get("/metrics", headers={"Authorization": ""})).text
    text += generate_latest(WORKER_REGISTRY).decode()
    samples: Samples = {}
    counters: set[str] = set()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
            if family.type in ("counter", "histogram") and not s.name.endswith("_created"):
                counters.add(s.name)
    return samples, counters


async def test_counters_only_go_up_through_a_decline_a_retry_and_a_success(sys_: System) -> None:
    await sys_.behave(decline_above="5", retry_success_rate=1.0)
    wallet = await sys_.wallet(funds="50.00")
    before, _ = await scrape(sys_)
    pid = (await sys_.pay(wallet["user_id"], "6.00")).json()["id"]
    await sys_.settled(pid, "failed")
    middle, _ = await scrape(sys_)
    retried = await sys_.api.post(f"/v1/payments/{pid}/retry", headers={"Prefer": "wait=10"})
    assert retried.json()["status"] == "completed"
    after, counters = await scrape(sys_)

    for earlier, later in ((before, middle), (middle, after)):
        for key, value in earlier.items():
            if key[0] in counters:
                assert later.get(key, 0) >= value, f"{key} went down: {value} -> {later.get(key)}"

    def grew(key: tuple[str, tuple[tuple[str, str], ...]], a: Samples, b: Samples) -> float:
        return b.get(key, 0) - a.get(key, 0)

    declined = ("paysaga_payment_failure_total", (("code", "gateway_declined"),))
    assert grew(declined, before, middle) == 1
    assert grew(declined, middle, after) == 0  # the retry's success does not undo the failure
    assert grew(("paysaga_payment_success_total", ()), middle, after) == 1
    calls = "paysaga_gateway_calls_total"
    assert grew((calls, (("connector", "primary"), ("operation", "charge"),
                         ("outcome", "declined"))), before, middle) == 1
    assert grew((calls, (("connector", "primary"), ("operation", "charge"),
                         ("outcome", "approved"))), middle, after) == 1
    took = "paysaga_payment_duration_seconds_count"
    assert grew((took, (("outcome", "failed"),)), before, middle) == 1
    assert grew((took, (("outcome", "completed"),)), middle, after) == 1
    assert grew(("paysaga_payment_amount_minor_total", (("currency", "USD"),
                                                       ("outcome", "completed"))), middle, after) == 600
    # what is true now is a gauge, and it may go down: the payment no longer needs attention
    attention = ("paysaga_payments_needing_attention", (("code", "gateway_declined"),))
    assert middle[attention] - after.get(attention, 0) == 1


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
