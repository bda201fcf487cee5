"""Charges and refunds by idempotency key, with a fault profile replaced through PUT /behavior.

The same idempotency key never charges twice: a repeated request answers the stored outcome.
A "timeout" records the charge first and then hangs past the caller's timeout, as a real
gateway that charged but whose answer was lost would.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field


class Behavior(BaseModel):
    fail_rate: float = Field(default=0.1, ge=0, le=1)
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    rate_limit_rate: float = Field(default=0.0, ge=0, le=1)
    decline_rate: float = Field(default=0.0, ge=0, le=1)
    decline_above: Decimal | None = None
    retry_success_rate: float | None = Field(default=None, ge=0, le=1)
    latency_ms: int = Field(default=0, ge=0, le=60_000)
    down: bool = False
    seed: int | None = None
    timeout_hang_seconds: float = Field(default=60.0, ge=0, le=600)


class ChargeIn(BaseModel):
    idempotency_key: str = Field(min_length=1, max_length=300)
    payment_id: str
    amount: Decimal
    currency: str = Field(min_length=3, max_length=3)


class RefundIn(BaseModel):
    idempotency_key: str = Field(min_length=1, max_length=300)
    charge_id: str
    amount: Decimal


class Gateway:
    def __init__(self, behavior: Behavior) -> None:
        self.lock = asyncio.Lock()
        self.accepted: list[dict[str, Any]] = []  # charges and refunds, in order
        self.by_key: dict[str, dict[str, Any]] = {}  # every outcome, declines too
        self.declined_payments: set[str] = set()
        self.set_behavior(behavior)

    def set_behavior(self, behavior: Behavior) -> None:
        self.behavior = behavior
        self.rng = random.Random(behavior.seed)

    def roll(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    def decide_charge(self, body: ChargeIn) -> dict[str, Any]:
        b = self.behavior
        declined_before = body.payment_id in self.declined_payments
        if declined_before and b.retry_success_rate is not None:
            decline = not self.roll(b.retry_success_rate)
        else:
            decline = (b.decline_above is not None and body.amount > b.decline_above) or self.roll(
                b.decline_rate)
        record = {
            "id": "ch_" + secrets.token_hex(10),
            "object": "charge",
            "idempotency_key": body.idempotency_key,
            "payment_id": body.payment_id,
            "amount": str(body.amount),
            "currency": body.currency,
            "status": "declined" if decline else "succeeded",
            "decline_code": "do_not_honor" if decline else None,
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        self.by_key[body.idempotency_key] = record
        if decline:
            self.declined_payments.add(body.payment_id)
        else:
            self.accepted.append(record)
        return record


def _answer(record: dict[str, Any], replay: bool) -> JSONResponse:
    if record["status"] == "declined":
        return JSONResponse(record, status_code=402)
    return JSONResponse(record, status_code=200 if replay else 201)


def create_app(behavior: Behavior | None = None) -> FastAPI:
    app = FastAPI(title="paysaga fake gateway")
    gw = Gateway(behavior or Behavior())
    app.state.gateway = gw

    async def faults() -> JSONResponse | None:
        b = gw.behavior
        if b.latency_ms:
            await asyncio.sleep(b.latency_ms / 1000)
        if b.down:
            return JSONResponse({"error": "service unavailable"}, status_code=503)
        if gw.roll(b.rate_limit_rate):
            return JSONResponse({"error": "rate limited"}, status_code=429,
                                headers={"Retry-After": "1"})
        if gw.roll(b.fail_rate):
            return JSONResponse({"error": "internal error"}, status_code=500)
        return None

    @app.post("/charges")
    async def charge(body: ChargeIn) -> JSONResponse:
        fault = await faults()
        if fault is not None:
            return fault
        async with gw.lock:
            existing = gw.by_key.get(body.idempotency_key)
            record = existing or gw.decide_charge(body)
            hang = existing is None and gw.roll(gw.behavior.timeout_rate)
        if hang:
            await asyncio.sleep(gw.behavior.timeout_hang_seconds)
        return _answer(record, replay=existing is not None)

    @app.get("/charges/by-key/{key}")
    async def lookup(key: str) -> JSONResponse:
        if gw.behavior.latency_ms:
            await asyncio.sleep(gw.behavior.latency_ms / 1000)
        if gw.behavior.down:
            return JSONResponse({"error": "service unavailable"}, status_code=503)
        record = gw.by_key.get(key)
        if record is None:
            return JSONResponse({"error": "no such charge"}, status_code=404)
        return JSONResponse(record)

    @app.post("/refunds")
    async def refund(body: RefundIn) -> JSONResponse:
        fault = await faults()
        if fault is not None:
            return fault
        async with gw.lock:
            existing = gw.by_key.get(body.idempotency_key)
            if existing is not None:
                return JSONResponse(existing, status_code=200)
            charged = next((c for c in gw.accepted if c["id"] == body.charge_id), None)
            if charged is None:
                return JSONResponse({"error": "no such charge", "code": "unknown_charge"},
                                    status_code=404)
            record = {
                "id": "re_" + secrets.token_hex(10), "object": "refund",
                "idempotency_key": body.idempotency_key, "payment_id": charged["payment_id"],
                "charge_id": charged["id"], "amount": str(body.amount),
                "currency": charged["currency"], "status": "succeeded",
                "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            }
            gw.by_key[body.idempotency_key] = record
            gw.accepted.append(record)
        return JSONResponse(record, status_code=201)

    @app.get("/charges")
    async def charges(request: Request) -> list[dict[str, Any]]:
        payment = request.query_params.get("payment_id")
        return [c for c in gw.accepted if payment is None or c["payment_id"] == payment]

    @app.get("/behavior")
    async def get_behavior() -> Behavior:
        return gw.behavior

    @app.put("/behavior")
    async def put_behavior(behavior: Behavior) -> Behavior:
        gw.set_behavior(behavior)
        return behavior

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
