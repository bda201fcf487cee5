"""Prometheus metrics: HTTP latency measured here, business figures read from the database.

The business figures (seed 002's collector: events by type, amounts by currency, successes,
failures by code; plus holds outstanding and outbox lag) are computed from the tables at scrape
time, so every API process reports the same, whole-system truth.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import text

from api.deps import StateDep

router = APIRouter(tags=["operations"])
REGISTRY = CollectorRegistry()
HTTP_LATENCY = Histogram("paysaga_http_request_duration_seconds", "HTTP request latency",
                         ["method", "route", "status"], registry=REGISTRY,
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


def install(app: FastAPI) -> None:
    @app.middleware("http")
    async def measure(request: Request,
                      call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        HTTP_LATENCY.labels(request.method, path, str(response.status_code)).observe(
            time.perf_counter() - started)
        return response


class _Snapshot:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


async def business_metrics(state: Any) -> list[Metric]:
    events = CounterMetricFamily("paysaga_events", "domain events written, by type", labels=["type"])
    amounts = CounterMetricFamily("paysaga_payment_amount_minor", "payment amounts in minor units",
                                  labels=["currency", "status"])
    successes = CounterMetricFamily("paysaga_payment_success", "payments that completed")
    failures = CounterMetricFamily("paysaga_payment_failure", "payments failed, by failure code",
                                   labels=["code"])
    holds = GaugeMetricFamily("paysaga_holds_outstanding", "active holds", labels=["currency"])
    held = GaugeMetricFamily("paysaga_holds_outstanding_minor", "amount held", labels=["currency"])
    pending = GaugeMetricFamily("paysaga_outbox_pending", "events not yet published")
    lag = GaugeMetricFamily("paysaga_outbox_lag_seconds", "age of the oldest unpublished event")
    async with state.engine.connect() as conn:
        for r in (await conn.execute(text("SELECT type, count(*) AS n FROM events GROUP BY type"))):
            events.add_metric([r.type], r.n)
        ok = 0
        for r in (await conn.execute(text(
                "SELECT currency, status, sum(amount) AS total, count(*) AS n FROM payments "
                "GROUP BY currency, status"))):
            amounts.add_metric([r.currency, r.status], r.total)
            if r.status in ("completed", "partially_refunded", "refunded"):
                ok += r.n
        successes.add_metric([], ok)
        for r in (await conn.execute(text(
                "SELECT failure_code, count(*) AS n FROM payments WHERE status IN "
                "('failed', 'exhausted') GROUP BY failure_code"))):
            failures.add_metric([r.failure_code or "unknown"], r.n)
        for r in (await conn.execute(text(
                "SELECT a.currency, count(*) AS n, sum(h.amount) AS total FROM holds h "
                "JOIN accounts a ON a.id = h.wallet_id WHERE h.status = 'active' GROUP BY a.currency"))):
            holds.add_metric([r.currency], r.n)
            held.add_metric([r.currency], r.total)
        row = (await conn.execute(text(
            "SELECT count(*) AS n, EXTRACT(EPOCH FROM now() - min(created_at)) AS age "
            "FROM events WHERE published_at IS NULL"))).one()
        pending.add_metric([], row.n)
        lag.add_metric([], float(row.age or 0))
    return [events, amounts, successes, failures, holds, held, pending, lag]


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}})
async def metrics(state: StateDep) -> Response:
    snapshot = CollectorRegistry()
    snapshot.register(_Snapshot(await business_metrics(state)))
    body = generate_latest(REGISTRY) + generate_latest(snapshot)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
