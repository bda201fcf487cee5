"""The worker's Prometheus registry (served on WORKER_METRICS_PORT): the gateway client, the
breakers and the activities count into it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

WORKER_REGISTRY = CollectorRegistry()
