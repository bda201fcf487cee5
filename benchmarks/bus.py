"""The event bus, measured: the relay's throughput to JetStream (events/s, draining a backlog
through the running workers' relays) and the outbox lag while the payment bench runs."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

import asyncpg

from db import seed

T = TypeVar("T")


async def relay_throughput(database_url: str, n: int) -> dict[str, Any]:
    """Plant `n` unpublished events in the outbox and time the relays draining them."""
    db = await asyncpg.connect(database_url)
    try:
        await seed.plant_events(db, n, str(time.time()))
        started = time.perf_counter()
        waiting = n
        while waiting:  # polled: the relays run in the workers, out of this process
            await asyncio.sleep(0.05)
            waiting = await seed.unpublished_bench_events(db)
        seconds = time.perf_counter() - started
    finally:
        await db.close()
    return {"events": n, "seconds": round(seconds, 2), "events_per_second": round(n / seconds)}


async def lag_while(database_url: str, work: Awaitable[T]) -> tuple[T, dict[str, float]]:
    """Run `work`, sampling the outbox lag (the oldest unpublished event's age) every 100 ms."""
    db = await asyncpg.connect(database_url)
    samples: list[float] = []

    async def sample() -> None:
        while True:
            samples.append(await seed.outbox_lag(db))
            await asyncio.sleep(0.1)

    sampler = asyncio.create_task(sample())
    try:
        result = await work
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        await db.close()
    ordered = sorted(samples) or [0.0]

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000)

    return result, {"samples": len(samples), "p50_ms": pct(50), "p99_ms": pct(99),
                    "max_ms": round(ordered[-1] * 1000)}
