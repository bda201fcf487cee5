"""`python -m worker`: run a payments worker until interrupted (TEMPORAL_*, DATABASE_URL, GATEWAY_URL)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from datetime import timedelta
from typing import Any

from prometheus_client import Info, start_http_server
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from bus.jetstream import EventBus, stream_settings
from db.engine import make_engine
from settings import get_settings
from telemetry import heap, tracing
from telemetry.logs import configure
from telemetry.metrics import WORKER_REGISTRY
from temporal_client.codec import MissingKey, key_ring
from temporal_client.converter import data_converter
from worker.inbox import run_inbox
from worker.main import (
    build_worker,
    delivery_policy,
    deployment_version,
    gateway_connections,
    reconciliation_run,
)
from worker.outbox import Dispatch, run_relay
from worker.schedules import ensure_reconciliation, ensure_sweeper

try:  # libuv's event loop: the same asyncio, less CPU per I/O (not on Windows)
    from uvloop import run
except ImportError:  # pragma: no cover
    run = asyncio.run  # type: ignore[assignment]


async def relay_events(engine: Any, dispatch: Dispatch, s: Any) -> None:
    """The outbox relay, to JetStream when NATS_URL names a broker (connected, with the stream
    declared, as soon as the broker answers), else to the log."""
    bus = None
    while s.nats_url and bus is None:
        try:
            bus = await EventBus.connect(s.nats_url, stream_settings(s),
                                         name=s.worker_identity or "paysaga-worker")
        except Exception as err:  # the broker is not up yet: the events wait in the outbox
            logging.getLogger("paysaga.worker").warning("event bus at %s: %s; retrying",
                                                        s.nats_url, type(err).__name__)
            await asyncio.sleep(1)
    await run_relay(engine, dispatch, bus)


async def main() -> None:
    s = get_settings()
    configure()
    runtime = None
    if s.worker_sdk_metrics_port:
        runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(
            bind_address=f"{s.worker_metrics_host}:{s.worker_sdk_metrics_port}")))
    if s.worker_metrics_port:
        start_http_server(s.worker_metrics_port, addr=s.worker_metrics_host, registry=WORKER_REGISTRY)
    version = deployment_version(s)
    Info("paysaga_worker_build", "the Worker Deployment Version this worker polls as",
         registry=WORKER_REGISTRY).info({"deployment": version.deployment_name,
                                         "build_id": version.build_id})
    traced = tracing.setup("paysaga-worker")
    client = await Client.connect(s.temporal_address, namespace=s.temporal_namespace,
                                  runtime=runtime,
                                  interceptors=[TracingInterceptor()] if traced else [],
                                  identity=f"{s.worker_identity or 'worker'}@{os.getpid()}",
                                  data_converter=data_converter(key_ring(s)))
    engine = make_engine(s.database_url, pool_size=s.db_pool_size)
    async with gateway_connections(s, traced=traced) as gateways:
        worker = build_worker(client, engine, gateways, s)
        await ensure_sweeper(client, s.temporal_task_queue, timedelta(seconds=s.sweeper_interval_seconds))
        await ensure_reconciliation(client, s.temporal_task_queue,
                                    timedelta(seconds=s.reconciliation_interval_seconds),
                                    reconciliation_run(s))
        logging.getLogger("paysaga.worker").info("worker polling %s", s.temporal_task_queue)
        relay = asyncio.create_task(relay_events(engine, Dispatch(
            client, s.temporal_task_queue, delivery_policy(s)), s))
        inbox = asyncio.create_task(run_inbox(engine, client, s.temporal_task_queue))
        heap.settle()
        try:
            await worker.run()
        finally:
            relay.cancel()
            inbox.cancel()
            await engine.dispose()


if __name__ == "__main__":
    try:
        key_ring(get_settings())
    except MissingKey as err:
        print(f"paysaga worker: {err}", file=sys.stderr)
        sys.exit(2)
    with contextlib.suppress(KeyboardInterrupt):
        run(main())
