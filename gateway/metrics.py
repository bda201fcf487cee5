"""Gateway calls, counted where they happen (they only ever go up)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from telemetry.metrics import WORKER_REGISTRY

GATEWAY_CALLS = Counter(
    "paysaga_gateway_calls", "gateway calls by connector, operation and outcome: approved, "
    "declined, 5xx, timeout, 429, circuit_open, unreachable, not_found",
    ["connector", "operation", "outcome"], registry=WORKER_REGISTRY)
GATEWAY_LATENCY = Histogram(
    "paysaga_gateway_call_duration_seconds", "gateway call latency by connector and operation",
    ["connector", "operation"], registry=WORKER_REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
