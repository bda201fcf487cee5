"""Prometheus metrics: HTTP latency measured here, business figures read from the database
(db/metrics.py).

The business figures (seed 002's collector: events by type, amounts by currency, successes,
failures by code; plus payments by status, those needing attention, holds outstanding and outbox
lag) are computed from the tables at scrape time, so every API process reports the same,
whole-system truth. The worker serves what it counts itself (gateway calls by outcome, payment and
gateway latency, refunds): activities/metrics.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.service import RPCError

from api.deps import StateDep
from db import metrics as db_metrics
from domain.reconciliation import SEVERITY
from domain.status import FailureCode
from temporal_client.ask import workers_polling

router = APIRouter(tags=["operations"])
REGISTRY = CollectorRegistry()
HTTP_LATENCY = Histogram("paysaga_http_request_duration_seconds", "HTTP request latency",
                         ["method", "route", "status"], registry=REGISTRY,
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


PROCESSOR_EVENTS = Counter("paysaga_processor_events_received",
                           "processors' webhooks received by this API process, by outcome "
                           "(verified, duplicate, bad_signature)", ["outcome"],
                           registry=REGISTRY)
for _outcome in ("verified", "duplicate", "bad_signature"):  # every series from the start
    PROCESSOR_EVENTS.labels(_outcome)


class Measure:
    """Each request's latency by method, route and status. Plain ASGI: a `@app.middleware`
    (BaseHTTPMiddleware) costs a task and a pair of memory streams on every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            HTTP_LATENCY.labels(scope["method"], path, str(status)).observe(
                time.perf_counter() - started)


def install(app: FastAPI) -> None:
    app.add_middleware(Measure)


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
    captures = CounterMetricFamily("paysaga_captures", "manual-capture authorizations by how "
                                   "they ended (captured, voided, expired)", labels=["outcome"])
    inbox = GaugeMetricFamily("paysaga_processor_events", "processors' events stored, by what "
                              "became of them (received: not yet carried to their saga, "
                              "delivered, unmatched: about nothing paysaga knows)",
                              labels=["status"])
    waiting = GaugeMetricFamily("paysaga_payments_waiting_on_processor",
                                "payments whose charge's outcome arrives later (processing, or "
                                "requires_action)")
    waiting_age = GaugeMetricFamily("paysaga_payments_waiting_on_processor_oldest_seconds",
                                    "how long the longest of them has waited")
    expiring = GaugeMetricFamily("paysaga_authorizations_expiring_soon",
                                 "authorizations waiting for a capture that lapse within 24 h")
    disputes = GaugeMetricFamily("paysaga_disputes_by_status", "disputes by status "
                                 "(needs_response, under_review, won, lost)", labels=["status"])
    due_soon = GaugeMetricFamily("paysaga_disputes_evidence_due_soon",
                                 "disputes needing a response whose evidence is due within 24 h")
    pending = GaugeMetricFamily("paysaga_outbox_pending", "events not yet published")
    lag = GaugeMetricFamily("paysaga_outbox_lag_seconds", "age of the oldest unpublished event")
    async with state.engine.connect() as conn:
        f = await db_metrics.figures(conn)
    for kind, n in f.events.items():
        events.add_metric([kind], n)
    successes.add_metric([], f.events.get("payment.completed", 0))
    refunds.add_metric(["succeeded"], f.events.get("payment.refunded", 0))
    refunds.add_metric(["failed"], f.events.get("payment.refund_failed", 0))
    # every code, class and heal is reported, 0 until it happens
    for code, n in ({code.value: 0 for code in FailureCode} | f.failures).items():
        failures.add_metric([code], n)
    for (currency, outcome), total in sorted(f.moved.items()):
        amounts.add_metric([currency, outcome], total)
    for status, n in f.payments.items():
        payments.add_metric([status], n)
    for code, n in ({code.value: 0 for code in FailureCode} | f.waiting).items():
        attention.add_metric([code], n)
    for currency, (n, total) in f.holds.items():
        holds.add_metric([currency], n)
        held.add_metric([currency], total)
    oldest.add_metric([], f.oldest_in_flight_seconds)
    for (klass, severity), n in ({(k, sev): 0 for k, sev in SEVERITY.items()}
                                 | f.findings).items():
        found.add_metric([klass, severity], n)
    for heal, n in ({"capture": 0, "refund": 0, "post": 0} | f.heals).items():
        heals.add_metric([heal], n)
    for severity, n in ({"critical": 0} | f.open_exceptions).items():
        exceptions.add_metric([severity], n)
    last_run.add_metric([], f.last_reconciliation)
    pending.add_metric([], f.outbox_pending)
    lag.add_metric([], f.outbox_lag_seconds)
    for outcome, n in f.captures.items():
        captures.add_metric([outcome], n)
    expiring.add_metric([], f.expiring_soon)
    for status, n in ({"received": 0, "delivered": 0, "unmatched": 0} | f.processor_events).items():
        inbox.add_metric([status], n)
    waiting.add_metric([], f.waiting_on_processor)
    waiting_age.add_metric([], f.waiting_on_processor_oldest_seconds)
    for status, n in ({s: 0 for s in ("needs_response", "under_review", "won", "lost")}
                      | f.disputes).items():
        disputes.add_metric([status], n)
    due_soon.add_metric([], f.disputes_due_soon)
    try:
        polling.add_metric([], await workers_polling(state.temporal, state.settings.temporal_task_queue))
    except RPCError:
        polling.add_metric([], 0)  # Temporal unreachable: no worker can be polling either
    return [events, successes, failures, amounts, refunds, payments, attention, oldest, polling,
            holds, held, pending, lag, found, heals, exceptions, last_run, captures, expiring,
            inbox, waiting, waiting_age, disputes, due_soon]


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}})
async def metrics(state: StateDep) -> Response:
    snapshot = CollectorRegistry()
    snapshot.register(_Snapshot(await business_metrics(state)))
    body = generate_latest(REGISTRY) + generate_latest(snapshot)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
