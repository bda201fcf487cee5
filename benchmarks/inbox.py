"""Outcomes that arrive later, measured: the processors' inbox's throughput (signed events
verified and stored per second, 20 in flight) and the time from a processor's event to the
payment's new status (p50/p99): payments answered `processing` (the gateway set never to settle
them itself), each settled by a signed event the bench sends as the processor would."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from benchmarks.money import summary


def _signed(secret: str, event: dict[str, Any]) -> tuple[str, dict[str, str]]:
    body, now = json.dumps(event), datetime.now(UTC)
    return body, {"webhook-id": event["id"], "webhook-timestamp": str(int(now.timestamp())),
                  "webhook-signature": Webhook(secret).sign(event["id"], now, body),
                  "content-type": "application/json"}


def secret_of(data_dir: Path) -> str:
    return str(json.loads((data_dir / "processor_webhook_secrets").read_text())["primary"])


async def throughput(api: httpx.AsyncClient, secret: str, count: int,
                     concurrency: int = 20) -> dict[str, Any]:
    """Signed events about nothing paysaga knows (kept `unmatched`): verified and stored."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        event = {"id": f"evt_bench_{secrets.token_hex(6)}", "type": "charge.succeeded",
                 "data": {"object": {"id": f"ch_bench_{i}", "payment_id": f"pay_bench_in_{i}",
                                     "status": "succeeded"}}}
        body, headers = _signed(secret, event)
        async with gate:
            (await api.post("/v1/processor-webhooks/primary", content=body,
                            headers=headers)).raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.perf_counter() - started
    return {"events": count, "seconds": round(elapsed, 2), "per_second": round(count / elapsed)}


async def event_to_status(api: httpx.AsyncClient, gateway: httpx.AsyncClient, secret: str,
                          wallet: dict[str, Any], count: int) -> dict[str, Any]:
    """From the moment a signed event is sent to the moment the payment reads `completed`."""
    await gateway.put("/behavior", json={"fail_rate": 0.0, "async_rate": 1.0,
                                         "async_settle_seconds": 3600})
    latencies = []
    try:
        for _ in range(count):
            answer = await api.post("/v1/payments", json={
                "user_id": wallet["user_id"], "service_id": "bench-debit", "amount": "1.00",
                "currency": "USD"}, headers={"Idempotency-Key": secrets.token_hex(8)})
            pid = answer.json()["id"]
            payment = answer.json()
            while payment["gateway_reference"] is None or payment["status"] != "processing":
                await asyncio.sleep(0.02)
                payment = (await api.get(f"/v1/payments/{pid}")).json()
            event = {"id": f"evt_{secrets.token_hex(8)}", "type": "charge.succeeded",
                     "data": {"object": {"id": payment["gateway_reference"], "payment_id": pid,
                                         "status": "succeeded"}}}
            body, headers = _signed(secret, event)
            t0 = time.perf_counter()
            (await api.post("/v1/processor-webhooks/primary", content=body,
                            headers=headers)).raise_for_status()
            status = "processing"
            while status != "completed":
                await asyncio.sleep(0.005)
                status = (await api.get(f"/v1/payments/{pid}")).json()["status"]
            latencies.append(time.perf_counter() - t0)
    finally:
        await gateway.put("/behavior", json={"fail_rate": 0.0})
    return {"payments": count, "latency_ms": summary(latencies)}
