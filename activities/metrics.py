"""The worker's own Prometheus metrics (served on WORKER_METRICS_PORT), counted where things
happen, so they only ever go up (a worker's restart resets them, which `rate()` understands)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

WORKER_REGISTRY = CollectorRegistry()

GATEWAY_CALLS = Counter(
    "paysaga_gateway_calls", "gateway calls by connector, operation and outcome: approved, "
    "declined, 5xx, timeout, 429, circuit_open, unreachable, not_found",
    ["connector", "operation", "outcome"], registry=WORKER_REGISTRY)
GATEWAY_LATENCY = Histogram(
    "paysaga_gateway_call_duration_seconds", "gateway call latency by connector and operation",
    ["connector", "operation"], registry=WORKER_REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
PAYMENT_DURATION = Histogram(
    "paysaga_payment_duration_seconds", "a payment attempt's end to end time, from the payment's "
    "creation to its outcome being recorded, by outcome (completed, failed, exhausted, canceled)",
    ["outcome"], registry=WORKER_REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 86400, 259200))
REFUNDS = Counter("paysaga_refunds", "refunds by outcome (succeeded, failed)", ["outcome"],
                  registry=WORKER_REGISTRY)
