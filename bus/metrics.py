"""The relay's publish outcomes (the lag is the API's `paysaga_outbox_lag_seconds`)."""

from __future__ import annotations

from prometheus_client import Counter

from telemetry.metrics import WORKER_REGISTRY

BUS_PUBLISHES = Counter(
    "paysaga_bus_publishes", "events published to JetStream by outcome: published, duplicate "
    "(already in the stream: dropped by its duplicate window), failed (kept in the outbox)",
    ["outcome"], registry=WORKER_REGISTRY)
for _outcome in ("published", "duplicate", "failed"):  # every series scrapes from the start
    BUS_PUBLISHES.labels(_outcome)
