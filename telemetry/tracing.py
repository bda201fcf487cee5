"""OpenTelemetry tracing: off by default, on with the standard variables.

Set OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_TRACES_EXPORTER=otlp|console) and each part exports
spans: the API's HTTP requests, the Temporal client and worker (temporalio.contrib.opentelemetry:
StartWorkflow, RunWorkflow, StartActivity, RunActivity), and the worker's calls to the gateway,
all in one trace per request. OTEL_SERVICE_NAME names the part.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter


def enabled() -> bool:
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").lower()
    if exporter == "none" or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return bool(exporter or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def setup(service_name: str) -> bool:
    """Install a tracer provider when the environment asks for one; True if tracing is on."""
    if not enabled():
        return False
    exporter: SpanExporter
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").lower() == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    name = os.environ.get("OTEL_SERVICE_NAME", service_name)
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return True
