"""Prometheus metrics: HTTP latency measured here, business figures read from the database.

The business figures (seed 002's collector: events by type, amounts by currency, successes,
failures by code; plus payments by status, those needing attention, holds outstanding and outbox
lag) are computed from the tables at scrape time, so every API process reports the same,
whole-system truth. The worker serves what it counts itself (gateway calls by outcome, payment and
gateway latency, refunds): activities/metrics.py.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import text
from temporalio.service import RPCError

from api.deps import StateDep
from domain.money import currency_exponent
from domain.reconciliation import SEVERITY
from domain.status import FailureCode
from workflows.client import workers_polling

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
    """Counters count append-only facts (the outbox's events), so they never go down; what is
    true right now (payments by status, those needing attention, holds, outbox lag) is a gauge."""
    events = CounterMetricFamily("paysaga_events", "domain events written, by type", labels=["type"])
    successes = CounterMetricFamily("paysaga_payment_success", "payment attempts that completed")
    failures = CounterMetricFamily("paysaga_payment_failure",
                                   "payment attempts that failed, by failure code", labels=["code"])
    amounts = CounterMetricFamily("paysaga_payment_amount_minor",
                                  "money moved in minor units, by currency and outcome "
                                  "(completed, refunded)", labels=["currency", "outcome"])
    refunds = CounterMetricFamily("paysaga_refund", "refunds by outcome (succeeded, failed)",
                                  labels=["outcome"])
    payments = GaugeMetricFamily("paysaga_payments", "payments by current status", labels=["status"])
    attention = GaugeMetricFamily("paysaga_payments_needing_attention",
                                  "failed payments waiting for an operator, by failure code",
                                  labels=["code"])
    holds = GaugeMetricFamily("paysaga_holds_outstanding", "active holds", labels=["currency"])
    held = GaugeMetricFamily("paysaga_holds_outstanding_minor", "amount held", labels=["currency"])
    oldest = GaugeMetricFamily("paysaga_payments_oldest_in_flight_seconds",
                               "age of the oldest payment still pending, reserved or processing")
    polling = GaugeMetricFamily("paysaga_workers_polling",
                                "workers that polled the payments task queue in the last 2 minutes")
    found = CounterMetricFamily("paysaga_reconciliation_findings",
                                "reconciliation findings (each gateway record and class once), "
                                "by class and severity", labels=["class", "severity"])
    heals = CounterMetricFamily("paysaga_reconciliation_heals",
                                "findings reconciliation healed, by heal (capture, refund, post)",
                                labels=["heal"])
    exceptions = GaugeMetricFamily("paysaga_reconciliation_open_exceptions",
                                   "reconciliation findings waiting for an operator, by severity",
                                   labels=["severity"])
    last_run = GaugeMetricFamily("paysaga_reconciliation_last_completed_timestamp_seconds",
                                 "when the last reconciliation run completed (0: never)")
    pending = GaugeMetricFamily("paysaga_outbox_pending", "events not yet published")
    lag = GaugeMetricFamily("paysaga_outbox_lag_seconds", "age of the oldest unpublished event")
    async with state.engine.connect() as conn:
        counted = {r.type: r.n for r in await conn.execute(text(
            "SELECT type, count(*) AS n FROM events GROUP BY type"))}
        for kind, n in counted.items():
            events.add_metric([kind], n)
        successes.add_metric([], counted.get("payment.completed", 0))
        refunds.add_metric(["succeeded"], counted.get("payment.refunded", 0))
        refunds.add_metric(["failed"], counted.get("payment.refund_failed", 0))
        failed = {code.value: 0 for code in FailureCode}  # every code, 0 until it happens
        for r in await conn.execute(text(
                "SELECT data->>'code' AS code, count(*) AS n FROM events "
                "WHERE type = 'payment.failed' GROUP BY 1")):
            failed[r.code or "unknown"] = r.n
        for code, n in failed.items():
            failures.add_metric([code], n)
        moved: dict[tuple[str, str], int] = {}
        for r in await conn.execute(text(
                """
                SELECT data->>'currency' AS currency, type, jsonb_typeof(data->'amount') AS form,
                       sum((data->>'amount')::numeric) AS total
                FROM events WHERE type IN ('payment.completed', 'payment.refunded')
                  AND data ? 'currency' GROUP BY 1, 2, 3
                """)):
            # events before the money format change carried minor units as numbers
            minor = int(r.total if r.form == "number"
                        else r.total.scaleb(currency_exponent(r.currency)))
            key = (r.currency, "completed" if r.type == "payment.completed" else "refunded")
            moved[key] = moved.get(key, 0) + minor
        for (currency, outcome), total in sorted(moved.items()):
            amounts.add_metric([currency, outcome], total)
        for r in await conn.execute(text("SELECT status, count(*) AS n FROM payments GROUP BY status")):
            payments.add_metric([r.status], r.n)
        waiting = {code.value: 0 for code in FailureCode}
        for r in await conn.execute(text(
                "SELECT failure_code, count(*) AS n FROM payments WHERE status = 'failed' "
                "GROUP BY failure_code")):
            waiting[r.failure_code or "unknown"] = r.n
        for code, n in waiting.items():
            attention.add_metric([code], n)
        for r in (await conn.execute(text(  # every wallet currency, 0 when nothing is held
                "SELECT a.currency, count(h.id) AS n, COALESCE(sum(h.amount), 0) AS total "
                "FROM accounts a LEFT JOIN holds h ON h.wallet_id = a.id AND h.status = 'active' "
                "WHERE a.kind = 'wallet' GROUP BY a.currency"))):
            holds.add_metric([r.currency], r.n)
            held.add_metric([r.currency], r.total)
        age = (await conn.execute(text(
            "SELECT EXTRACT(EPOCH FROM now() - min(created_at)) FROM payments "
            "WHERE status IN ('pending', 'reserved', 'processing')"))).scalar()
        oldest.add_metric([], float(age or 0))
        row = (await conn.execute(text(
            "SELECT count(*) AS n, EXTRACT(EPOCH FROM now() - min(created_at)) AS age "
            "FROM events WHERE published_at IS NULL"))).one()
        by_class = {(k, sev): 0 for k, sev in SEVERITY.items()}  # every class, 0 until found
        for r in await conn.execute(text(
                "SELECT data->>'class' AS class, data->>'severity' AS severity, count(*) AS n "
                "FROM events WHERE type = 'reconciliation.finding' GROUP BY 1, 2")):
            by_class[(r[0], r.severity)] = r.n
        for (klass, severity), n in by_class.items():
            found.add_metric([klass, severity], n)
        healed = {"capture": 0, "refund": 0, "post": 0}
        for r in await conn.execute(text(
                "SELECT data->>'heal' AS heal, count(*) AS n FROM events "
                "WHERE type = 'reconciliation.healed' GROUP BY 1")):
            healed[r.heal] = r.n
        for heal, n in healed.items():
            heals.add_metric([heal], n)
        open_by = {"critical": 0}
        for r in await conn.execute(text(
                "SELECT severity, count(*) AS n FROM reconciliation_findings "
                "WHERE status IN ('open', 'healing') GROUP BY 1")):
            open_by[r.severity] = r.n
        for severity, n in open_by.items():
            exceptions.add_metric([severity], n)
        last = (await conn.execute(text(
            "SELECT EXTRACT(EPOCH FROM max(completed_at)) FROM reconciliations"))).scalar()
        last_run.add_metric([], float(last or 0))
        pending.add_metric([], row.n)
        lag.add_metric([], float(row.age or 0))
    try:
        polling.add_metric([], await workers_polling(state.temporal, state.settings.temporal_task_queue))
    except RPCError:
        polling.add_metric([], 0)  # Temporal unreachable: no worker can be polling either
    return [events, successes, failures, amounts, refunds, payments, attention, oldest, polling,
            holds, held, pending, lag, found, heals, exceptions, last_run]


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}})
async def metrics(state: StateDep) -> Response:
    snapshot = CollectorRegistry()
    snapshot.register(_Snapshot(await business_metrics(state)))
    body = generate_latest(REGISTRY) + generate_latest(snapshot)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
