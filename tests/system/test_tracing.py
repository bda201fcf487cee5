"""With tracing on, one trace runs from the HTTP request through the workflow to the gateway call."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor

from api.app import create_app
from telemetry import tracing
from tests.system.conftest import System
from worker.main import build_worker, gateway_connections

EXPORTER = InMemorySpanExporter()


@pytest_asyncio.fixture(scope="module")
async def traced(system: System) -> AsyncIterator[System]:
    """A second API and worker, on a task queue of their own, with tracing on."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)
    settings = system.settings.model_copy(update={"temporal_task_queue": "paysaga-traced"})
    client = await Client.connect(settings.temporal_address, interceptors=[TracingInterceptor()])
    app = create_app(settings, temporal=client, tracing=True)
    async with gateway_connections(settings, traced=True) as gateways, \
            build_worker(client, system.engine, gateways, settings), \
            app.router.lifespan_context(app), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api",
                              headers={"Authorization": f"Bearer {system.key}"}) as api:
        yield dataclasses.replace(system, api=api, settings=settings)


def spans_of(trace_id: int) -> list[ReadableSpan]:
    return [s for s in EXPORTER.get_finished_spans() if s.context.trace_id == trace_id]


async def test_spans_connect_request_workflow_and_gateway(traced: System) -> None:
    await traced.behave()
    wallet = await traced.wallet(funds="20.00")
    EXPORTER.clear()
    pid = (await traced.api.post("/v1/payments", headers={"Idempotency-Key": secrets.token_hex(6)},
                                 json={"user_id": wallet["user_id"], "service_id": "s",
                                       "amount": "2.00", "currency": "USD"})).json()["id"]
    await traced.settled(pid, "completed")
    server = next(s for s in EXPORTER.get_finished_spans()
                  if s.kind == SpanKind.SERVER and "POST /v1/payments" in s.name)
    assert server.context is not None
    names = [s.name for s in spans_of(server.context.trace_id)]
    assert "StartWorkflow:Payment" in names
    assert "RunWorkflow:Payment" in names
    assert "RunActivity:charge_gateway" in names
    by_id = {s.context.span_id: s for s in spans_of(server.context.trace_id) if s.context}
    gateway_call = next(s for s in spans_of(server.context.trace_id)
                        if s.kind == SpanKind.CLIENT and s.name.startswith("POST"))
    ancestors = []
    parent = gateway_call.parent
    while parent is not None and parent.span_id in by_id:
        ancestors.append(by_id[parent.span_id].name)
        parent = by_id[parent.span_id].parent
    assert "RunActivity:charge_gateway" in ancestors
    assert ancestors[-1] == server.name  # the chain reaches the HTTP request that started it


def test_tracing_is_off_unless_the_environment_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(var, raising=False)
    assert tracing.enabled() is False
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert tracing.enabled() is True
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert tracing.enabled() is False
