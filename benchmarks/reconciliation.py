"""Reconciliation at scale: 100,000 gateway records against the ledger, on the make dev stack.

The records are planted where each side keeps them (the fake gateway's SQLite file, PostgreSQL's
payments and capture journals), in a window of their own; then one reconciliation runs over it
through the API. Prints the time, the rate and the worker's resident memory before and at its
peak (sampled every 100 ms), so bounded memory is measured, not assumed.

`python -m benchmarks.reconciliation` runs it alone; `make bench` runs it with the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from benchmarks.stack import PORTS, start_stack
from db import seed

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def _when(i: int) -> datetime:
    return BASE + timedelta(milliseconds=i)


def plant_gateway(path: Path, n: int) -> None:
    db = sqlite3.connect(path)
    rows = []
    for i in range(n):
        key = f"pay_rb{i:07d}:a0"
        created = _when(i).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        rows.append((key, created, json.dumps({
            "id": f"ch_rb{i:07d}", "object": "charge", "idempotency_key": key,
            "payment_id": f"pay_rb{i:07d}", "amount": "1.00", "currency": "USD",
            "status": "succeeded", "decline_code": None, "created_at": created})))
    db.executemany("INSERT OR IGNORE INTO records (key, created_at, record) VALUES (?, ?, ?)", rows)
    db.commit()
    db.close()


async def plant_ledger(database_url: str, n: int) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await seed.plant_captured_payments(conn, n, BASE)
    finally:
        await conn.close()


def worker_rss_mb(stack_pid: int) -> float:
    import psutil

    total = 0.0
    for child in psutil.Process(stack_pid).children(recursive=True):
        try:  # a short-lived child (a database backend, say) may be gone by now
            if "worker" in " ".join(child.cmdline()[-2:]):
                total += child.memory_info().rss / 2**20
        except psutil.Error:
            continue
    return round(total, 1)


async def reconcile_bench(api: httpx.AsyncClient, data_dir: Path, database_url: str,
                          stack_pid: int, n: int = 100_000) -> dict[str, Any]:
    plant_gateway(data_dir / "gateway.sqlite", n)
    await plant_ledger(database_url, n)
    before = worker_rss_mb(stack_pid)
    peak = before
    started = time.perf_counter()
    made = await api.post("/v1/reconciliations", headers={"Idempotency-Key": secrets.token_hex(8)},
                          json={"from": BASE.isoformat(),
                                "to": (_when(n) + timedelta(seconds=1)).isoformat()})
    made.raise_for_status()
    rid = made.json()["id"]
    run: dict[str, Any] = {}
    while run.get("status") != "completed":
        await asyncio.sleep(0.1)
        peak = max(peak, worker_rss_mb(stack_pid))
        run = (await api.get(f"/v1/reconciliations/{rid}", params={"limit": 1})).json()
    seconds = time.perf_counter() - started
    return {"records": n, "seconds": round(seconds, 1), "records_per_second": round(n / seconds),
            "worker_rss_mb": {"before": before, "peak": peak}, "counts": run["counts"]}


async def main(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="paysaga-bench-") as tmp:
        print(f"starting the make dev stack under {tmp} ...", flush=True)
        stack, _ = await start_stack(Path(tmp))
        key = stack.key("dev_operator_key")  # reconciliation is platform-wide
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORTS['API_PORT']}",
                                         headers={"Authorization": f"Bearer {key}"},
                                         timeout=60) as api:
                print(f"reconciling {n:,} gateway records ...", flush=True)
                return await reconcile_bench(
                    api, Path(tmp), f"postgresql://postgres@127.0.0.1:{PORTS['EMBEDDED_PG_PORT']}"
                    "/paysaga", stack.pid, n)
        finally:
            stack.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    figures = asyncio.run(main(parser.parse_args().records))
    print(json.dumps(figures, indent=2))
