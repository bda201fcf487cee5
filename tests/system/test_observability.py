"""The event feed, the outbox and its relay, and the Prometheus metrics."""

from __future__ import annotations

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
