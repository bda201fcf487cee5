"""The FastAPI application: clients created once in the lifespan, routers, problem+json errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor

from api import errors, metrics
from api.deps import AppState
from api.edges import RequestIds
from api.query import known_query_only
from api.routes import (
    disputes,
    events,
    health,
    payments,
    processor_webhooks,
    reconciliations,
    refunds,
    transfers,
    wallets,
    webhooks,
)
from db.engine import make_engine
from settings import Settings
from temporal_client.codec import key_ring, search_key
from temporal_client.converter import data_converter


def create_app(settings: Settings, *, temporal: Client | None = None,
               tracing: bool = False) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ring, user_key = key_ring(settings), search_key(settings)  # MissingKey: stop, and say so
        engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
        client = temporal or await Client.connect(
            settings.temporal_address, namespace=settings.temporal_namespace,
            data_converter=data_converter(ring),
            interceptors=[TracingInterceptor()] if tracing else [])
        app.state.paysaga = AppState(settings, engine, client, {}, user_key)
        try:
            yield
        finally:
            await engine.dispose()

    # /docs and /redoc serve Swagger UI and ReDoc from the fastapi-offline wheel: no CDN, so they
    # render on a machine without internet access.
    app = FastAPIOffline(
        title="paysaga",
        version="0.1.0",
        description="Payments as durable Temporal sagas over a double-entry wallet ledger. "
                    "Every error is application/problem+json with a stable `code`; "
                    "every /v1 route needs `Authorization: Bearer <api key>`.",
        lifespan=lifespan,
        dependencies=[Depends(known_query_only)],
    )
    app.include_router(wallets.router)
    app.include_router(payments.router)
    app.include_router(refunds.router)
    app.include_router(transfers.router)
    app.include_router(events.router)
    app.include_router(webhooks.router)
    app.include_router(reconciliations.router)
    app.include_router(disputes.router)
    app.include_router(processor_webhooks.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    metrics.install(app)
    errors.install(app)
    _document_body_limit(app)
    app.add_middleware(RequestIds, max_body_bytes=settings.max_body_bytes)  # outermost
    if tracing:
        FastAPIInstrumentor.instrument_app(app, excluded_urls="health,metrics")
    return app


def _document_body_limit(app: FastAPI) -> None:
    """What the route declarations cannot say, said in the document: every operation that takes a
    body can answer 413; `Idempotency-Key` is required where it is taken (its absence answers
    400 IDEMPOTENCY_KEY_MISSING, not a generic validation error); validation errors are 400
    problems, never FastAPI's default 422."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    if not isinstance(operation, dict):
                        continue
                    if "requestBody" in operation:
                        operation["responses"].setdefault("413", {
                            "description": errors.WHY[413],
                            "content": {errors.PROBLEM: {"schema": {
                                "$ref": "#/components/schemas/ProblemBody"}}}})
                    unprocessable = operation["responses"].get("422", {})
                    if "HTTPValidationError" in str(unprocessable):
                        del operation["responses"]["422"]
                    for param in operation.get("parameters", []):
                        if param.get("name") == "Idempotency-Key":
                            param["required"] = True
                            param["schema"] = {"type": "string", "minLength": 1, "maxLength": 255,
                                               "pattern": r"^[A-Za-z0-9\-_.:]{1,255}$"}
            schema.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
            schema.get("components", {}).get("schemas", {}).pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
