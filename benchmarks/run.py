"""End-to-end figures on the embedded defaults: the same parts `make dev` runs, as processes.

Prints payments per second (POST -> completed) and latency percentiles at a few concurrency levels,
the ratio to a bare Temporal workflow with the same number of no-op activities on the same server,
and a hot-wallet run against a spread run. Writes bench-results.json too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from benchmarks.bare import BareWorkflow, noop

PORTS = {"API_PORT": 18000, "GATEWAY_PORT": 18001, "TEMPORAL_PORT": 17233,
         "TEMPORAL_UI_PORT": 18233, "EMBEDDED_PG_PORT": 15433}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(latencies: list[float]) -> dict[str, float]:
    return {f"p{p}": round(pct(latencies, p) * 1000, 1) for p in (50, 95, 99)}


async def start_stack(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = dict(os.environ, DATA_DIR=str(data_dir), **{k: str(v) for k, v in PORTS.items()})
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "devstack"], env=env,  # noqa: ASYNC220
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = (await asyncio.to_thread(proc.stdout.readline)).decode()
        if not line and proc.poll() is not None:
            raise RuntimeError("make dev's stack exited")
        if "paysaga is running" in line:
            return proc, (data_dir / "dev_api_key").read_text().strip()
    raise TimeoutError("stack did not start")


async def run_payments(api: httpx.AsyncClient, temporal: Client, wallets: list[dict[str, Any]],
                       count: int, concurrency: int) -> dict[str, Any]:
    gate = asyncio.Semaphore(concurrency)
    post_lat: list[float] = []
    saga_lat: list[float] = []
    statuses: dict[str, int] = {}

    async def one(i: int) -> None:
        wallet = wallets[i % len(wallets)]
        async with gate:
            t0 = time.perf_counter()
            r = await api.post("/v1/payments", headers={"Idempotency-Key": secrets.token_hex(8)},
                               json={"user_id": wallet["user_id"], "service_id": "bench",
                                     "amount": "1.00", "currency": "USD"})
            post_lat.append(time.perf_counter() - t0)
            r.raise_for_status()
            pid = r.json()["id"]
            while True:  # as a client would: poll the payment until the saga has settled
                status = (await api.get(f"/v1/payments/{pid}")).json()["status"]
                if status in ("completed", "failed", "exhausted", "canceled"):
                    break
                await asyncio.sleep(0.1)
            saga_lat.append(time.perf_counter() - t0)
            statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.perf_counter() - started
    return {"payments": count, "concurrency": concurrency, "wallets": len(wallets),
            "seconds": round(elapsed, 2), "per_second": round(count / elapsed, 1),
            "post_ms": summary(post_lat), "saga_ms": summary(saga_lat), "statuses": statuses}


async def run_bare(temporal: Client, count: int, concurrency: int) -> dict[str, Any]:
    queue = f"bare-{secrets.token_hex(3)}"
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(i: int) -> None:
        async with gate:
            t0 = time.perf_counter()
            await temporal.execute_workflow(BareWorkflow.run, i, id=f"bare-{queue}-{i}",
                                            task_queue=queue)
            latencies.append(time.perf_counter() - t0)

    async with Worker(temporal, task_queue=queue, workflows=[BareWorkflow], activities=[noop]):
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        elapsed = time.perf_counter() - started
    return {"workflows": count, "concurrency": concurrency, "seconds": round(elapsed, 2),
            "per_second": round(count / elapsed, 1), "saga_ms": summary(latencies)}


def worker_rss_mb(stack_pid: int) -> float:
    import psutil

    for child in psutil.Process(stack_pid).children(recursive=True):
        if "worker" in " ".join(child.cmdline()[-2:]):
            return round(child.memory_info().rss / 2**20, 1)
    return float("nan")


async def parked_memory(api: httpx.AsyncClient, gateway: httpx.AsyncClient, wallet: dict[str, Any],
                        stack_pid: int, count: int) -> dict[str, Any]:
    """Worker memory with `count` payments failed and parked, waiting for a manual retry."""
    before = worker_rss_mb(stack_pid)
    await gateway.put("/behavior", json={"fail_rate": 0.0, "decline_rate": 1.0})
    gate = asyncio.Semaphore(50)

    async def one() -> None:
        async with gate:
            r = await api.post("/v1/payments", headers={"Idempotency-Key": secrets.token_hex(8)},
                               json={"user_id": wallet["user_id"], "service_id": "bench",
                                     "amount": "1.00", "currency": "USD"})
            r.raise_for_status()

    await asyncio.gather(*(one() for _ in range(count)))
    while True:
        page = (await api.get("/v1/payments", params={"user_id": wallet["user_id"],
                                                      "status": "failed", "limit": 1})).json()
        print(f"  parked {page['total']}/{count}", flush=True)
        if page["total"] >= count:
            break
        await asyncio.sleep(3)
    await gateway.put("/behavior", json={"fail_rate": 0.0})
    return {"parked": count, "worker_rss_mb_before": before,
            "worker_rss_mb_after": worker_rss_mb(stack_pid)}


async def list_latency(api: httpx.AsyncClient, database_url: str, rows: int) -> dict[str, Any]:
    """GET /v1/payments latency with `rows` payments in the table (inserted directly)."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    await conn.execute(
        """
        INSERT INTO payments (id, tenant_id, idempotency_key, fingerprint, run_id, user_id,
            service_id, amount, fee, currency, status, created_at)
        SELECT 'pay_bench_' || g, 'default', 'bench-' || g, 'fp', 'run', 'user-' || (g % 1000),
            'svc', 100, 2, 'USD', (ARRAY['completed','failed','exhausted'])[1 + g % 3],
            now() - make_interval(secs => g)
        FROM generate_series(1, $1) AS g ON CONFLICT DO NOTHING
        """, rows)
    await conn.execute("ANALYZE payments")
    await conn.close()
    figures: dict[str, Any] = {"rows": rows}
    for name, params in (("newest", {}), ("status=failed", {"status": "failed"}),
                         ("user_id", {"user_id": "user-7"}),
                         ("offset 5000", {"offset": 5000})):
        latencies = []
        for _ in range(30):
            t0 = time.perf_counter()
            (await api.get("/v1/payments", params={"limit": 50, **params})).raise_for_status()
            latencies.append(time.perf_counter() - t0)
        figures[name] = summary(latencies)
    return figures


async def main(count: int, levels: list[int], extras: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="paysaga-bench-") as tmp:
        print(f"starting the make dev stack under {tmp} ...", flush=True)
        proc, key = await start_stack(Path(tmp))
        try:
            api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORTS['API_PORT']}", timeout=60,
                                    headers={"Authorization": f"Bearer {key}"},
                                    limits=httpx.Limits(max_connections=200))
            gateway = httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORTS['GATEWAY_PORT']}")
            await gateway.put("/behavior", json={"fail_rate": 0.0})
            temporal = await Client.connect(f"127.0.0.1:{PORTS['TEMPORAL_PORT']}")

            async def wallets(n: int) -> list[dict[str, Any]]:
                made = []
                for _ in range(n):
                    w = (await api.post("/v1/wallets", json={
                        "user_id": f"bench-{secrets.token_hex(4)}", "currency": "USD"})).json()
                    await api.post(f"/v1/wallets/{w['id']}/deposits", json={"amount": "100000"},
                                   headers={"Idempotency-Key": secrets.token_hex(8)})
                    made.append(w)
                return made

            results: dict[str, Any] = {"spread": [], "hot": [], "bare": []}
            spread = await wallets(20)
            hot = await wallets(1)
            print("warm-up ...", flush=True)
            await run_payments(api, temporal, spread, 40, 20)
            for level in levels:
                print(f"spread, {count} payments over 20 wallets, concurrency {level} ...", flush=True)
                results["spread"].append(await run_payments(api, temporal, spread, count, level))
                print(f"  {results['spread'][-1]}", flush=True)
                print(f"hot wallet, {count} payments on 1 wallet, concurrency {level} ...", flush=True)
                results["hot"].append(await run_payments(api, temporal, hot, count, level))
                print(f"  {results['hot'][-1]}", flush=True)
                print(f"bare workflow, {count} x 4 no-op activities, concurrency {level} ...", flush=True)
                results["bare"].append(await run_bare(temporal, count, level))
                print(f"  {results['bare'][-1]}", flush=True)
            if extras:
                print("1,000 payments parked in failed, waiting for a retry ...", flush=True)
                results["parked"] = await parked_memory(api, gateway, (await wallets(1))[0],
                                                        proc.pid, 1000)
                print(f"  {results['parked']}", flush=True)
                print("list latency with 100,000 payments in the table ...", flush=True)
                results["list"] = await list_latency(
                    api, f"postgresql://postgres@127.0.0.1:{PORTS['EMBEDDED_PG_PORT']}/paysaga", 100_000)
                print(f"  {results['list']}", flush=True)
            await api.aclose()
            await gateway.aclose()
        finally:
            proc.send_signal(2)
            proc.wait(60)
    return results


def report(results: dict[str, Any]) -> None:
    print("\nconcurrency  paysaga/s  bare/s  ratio  hot/s  hot/spread  "
          "POST p50/p95/p99 ms   saga p50/p95/p99 ms")
    for spread, hot, bare in zip(results["spread"], results["hot"], results["bare"], strict=True):
        post, saga = spread["post_ms"], spread["saga_ms"]
        print(f"{spread['concurrency']:>11}  {spread['per_second']:>9}  {bare['per_second']:>6}  "
              f"{spread['per_second'] / bare['per_second']:>5.2f}  {hot['per_second']:>5}  "
              f"{hot['per_second'] / spread['per_second']:>10.2f}  "
              f"{post['p50']:>5}/{post['p95']}/{post['p99']:<8}  {saga['p50']}/{saga['p95']}/{saga['p99']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--payments", type=int, default=200)
    parser.add_argument("--concurrency", default="10,50")
    parser.add_argument("--out", default="bench-results.json")
    parser.add_argument("--no-extras", action="store_true", help="skip parked memory and list latency")
    args = parser.parse_args()
    figures = asyncio.run(main(args.payments, [int(c) for c in args.concurrency.split(",")],
                               not args.no_extras))
    report(figures)
    Path(args.out).write_text(json.dumps(figures, indent=2))
    print(f"\nwritten to {args.out}")
