"""Authorize now, capture later, measured: authorize + capture pairs per second at 20 in flight
(each authorization waits for `requires_capture`, then its capture answers `completed`), and the
capture's own round trip one at a time (POST /capture, p50/p99), beside the bare workflow."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import httpx

from benchmarks.money import summary


async def _post(api: httpx.AsyncClient, path: str, body: dict[str, Any],
                headers: dict[str, str] | None = None) -> httpx.Response:
    r = await api.post(path, json=body, headers=headers or {})
    while r.status_code == 429:  # the per-key limit is on, as shipped: wait it out
        await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
        r = await api.post(path, json=body, headers=headers or {})
    r.raise_for_status()
    return r


async def authorize(api: httpx.AsyncClient, wallet: dict[str, Any]) -> str:
    """A manual payment, answered once it is `requires_capture`."""
    r = await _post(api, "/v1/payments", {
        "user_id": wallet["user_id"], "service_id": "bench-hotel", "amount": "2.00",
        "currency": "USD", "capture_method": "manual"},
        {"Idempotency-Key": secrets.token_hex(8), "Prefer": "wait=30"})
    pid, status = r.json()["id"], r.json()["status"]
    while status != "requires_capture":
        if status in ("failed", "exhausted", "canceled", "expired"):
            raise RuntimeError(f"{pid} was not authorized: {status}")
        await asyncio.sleep(0.1)
        status = (await api.get(f"/v1/payments/{pid}")).json()["status"]
    return str(pid)


async def capture(api: httpx.AsyncClient, pid: str) -> str:
    return str((await _post(api, f"/v1/payments/{pid}/capture", {"amount": "1.50"})).json()[
        "status"])


async def pairs(api: httpx.AsyncClient, wallets: list[dict[str, Any]], count: int,
                concurrency: int) -> dict[str, Any]:
    gate = asyncio.Semaphore(concurrency)
    statuses: dict[str, int] = {}

    async def one(i: int) -> None:
        async with gate:
            status = await capture(api, await authorize(api, wallets[i % len(wallets)]))
            statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.perf_counter() - started
    return {"pairs": count, "in_flight": concurrency, "seconds": round(elapsed, 2),
            "per_second": round(count / elapsed, 1), "statuses": statuses}


async def capture_round_trip(api: httpx.AsyncClient, wallet: dict[str, Any],
                             count: int) -> dict[str, Any]:
    """POST /capture one at a time, each on an authorization made beforehand."""
    parked = [await authorize(api, wallet) for _ in range(count)]
    latencies = []
    for pid in parked:
        t0 = time.perf_counter()
        await capture(api, pid)
        latencies.append(time.perf_counter() - t0)
    return {"captures": count, "latency_ms": summary(latencies)}
