"""The activities' own Prometheus metrics (served on WORKER_METRICS_PORT), counted where things
happen, so they only ever go up (a worker's restart resets them, which `rate()` understands)."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import Counter, Histogram

from telemetry.metrics import WORKER_REGISTRY

PAYMENT_DURATION = Histogram(
    "paysaga_payment_duration_seconds", "a payment attempt's end to end time, from the payment's "
    "creation to its outcome being recorded, by outcome (completed, failed, exhausted, canceled)",
    ["outcome"], registry=WORKER_REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 86400, 259200))
REFUNDS = Counter("paysaga_refunds", "refunds by outcome (succeeded, failed)", ["outcome"],
                  registry=WORKER_REGISTRY)


def took(created: datetime | None, outcome: str) -> None:
    """The payment attempt's end-to-end time, once its outcome is recorded (None: recorded
    before, by an earlier try of the step)."""
    if created is not None:
        PAYMENT_DURATION.labels(outcome).observe(
            max((datetime.now(UTC) - created).total_seconds(), 0.0))


TRANSFERS = Counter("paysaga_transfers", "top-ups and withdrawals by kind and outcome "
                    "(succeeded, failed)", ["kind", "outcome"], registry=WORKER_REGISTRY)
TRANSFER_DURATION = Histogram(
    "paysaga_transfer_duration_seconds", "a top-up's or withdrawal's end to end time, from its "
    "creation to its outcome being recorded", ["kind", "outcome"], registry=WORKER_REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600))
def transfer_settled(kind: str, succeeded: bool, created: datetime | None) -> None:
    """A transfer's outcome, counted once: when this call recorded it (not an earlier try)."""
    if created is None:
        return
    outcome = "succeeded" if succeeded else "failed"
    TRANSFERS.labels(kind, outcome).inc()
    TRANSFER_DURATION.labels(kind, outcome).observe(
        max((datetime.now(UTC) - created).total_seconds(), 0.0))


DISPUTES = Counter("paysaga_disputes", "disputes by transition (created, unexpected: not a "
                   "top-up's charge, won, lost)", ["transition"], registry=WORKER_REGISTRY)
