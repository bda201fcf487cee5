"""End-to-end figures on the embedded defaults: the same parts `make dev` runs, as processes.

Prints, and writes to bench-results.json:
- throughput: payments completed per second at 20 in flight (POST with `Prefer: wait`), against a
  bare Temporal workflow of 4 regular no-op activities on the same server in the same run;
- one payment at a time: POST + `Prefer: wait` until `completed`, p50/p95/p99;
- the 202 path: POST p50/p95/p99 at half the measured maximum rate (open loop);
- the worker's RSS after 0, 1,000 and 5,000 completed payments, and with 1,000 parked in `failed`;
- the Running workflows after the bench, by type and payment status;
- authorize + capture pairs/s at 20 in flight and the capture's round trip (manual capture);
- a hot-wallet run, list latency with 100,000 payments in the table, and a reconciliation of
  100,000 gateway records with the worker's peak RSS (extras).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import json
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from benchmarks import bus, capture, inbox, money
from benchmarks.bare import BareWorkflow, noop
from benchmarks.reconciliation import reconcile_bench, worker_rss_mb
from benchmarks.stack import PORTS, Stack, start_stack
from db import seed
from telemetry import heap
from temporal_client.codec import KeyRing
from temporal_client.converter import data_converter
from workflows.search import PAYMENT_STATUS

IN_FLIGHT = 20
# The API client drops idle connections before the API's keep-alive (uvicorn's 5 s) closes them:
# at httpx's default (also 5 s) a step that began about 5 s after the last one's requests could
# send on a connection the server was closing (httpx.ReadError).
API_KEEPALIVE_SECONDS = 2.0
SETTLED = ("completed", "failed", "exhausted", "canceled")


@contextlib.contextmanager
def collected_as_paysaga_collects() -> Iterator[None]:
    """This process's garbage collector as paysaga's API and worker run it (`telemetry.heap`:
    start-up frozen, the youngest generation every 10,000 allocations), then as it was. The codec
    runs in those processes; measured in this one with the defaults, encryption (a new payload
    object for each payload) made the collector run more often, and that work, not the codec's,
    was most of its cost: 1.6-2.3 ms more CPU per bare workflow with the defaults, none beyond
    the noise (0.3 ms) with paysaga's tuning. The other comparators keep the SDK's defaults."""
    threshold = gc.get_threshold()
    heap.settle()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _public(figures: Any) -> Any:
    """The figures without the raw latencies kept for merging chunks (keys starting `_`)."""
    if isinstance(figures, dict):
        return {k: _public(v) for k, v in figures.items() if not str(k).startswith("_")}
    return figures


def _merged(chunks: list[dict[str, Any]]) -> dict[str, float]:
    return summary([x for chunk in chunks for x in chunk["_raw"]])


def summary(latencies: list[float]) -> dict[str, float]:
    return {f"p{p}": round(pct(latencies, p) * 1000, 1) for p in (50, 95, 99)}


class Bench:
    def __init__(self, api: httpx.AsyncClient, gateway: httpx.AsyncClient, temporal: Client,
                 stack_pid: int) -> None:
        self.api, self.gateway, self.temporal, self.stack_pid = api, gateway, temporal, stack_pid
        self.rate_limited = 0  # 429s met (and waited out): the per-key limit is on, as shipped
        self.posted = 0  # payments accepted: a 202 comes before the workflow has made its row

    async def wallets(self, n: int, funds: str = "1000000") -> list[dict[str, Any]]:
        made = []
        for _ in range(n):
            w = (await self.api.post("/v1/wallets", json={
                "user_id": f"bench-{secrets.token_hex(4)}", "currency": "USD"})).json()
            r = await self.api.post(f"/v1/wallets/{w['id']}/deposits", json={"amount": funds},
                                    headers={"Idempotency-Key": secrets.token_hex(8)})
            r.raise_for_status()
            made.append(w)
        return made

    async def post(self, wallet: dict[str, Any], wait: float | None = None) -> httpx.Response:
        headers = {"Idempotency-Key": secrets.token_hex(8)}
        if wait is not None:
            headers["Prefer"] = f"wait={wait:g}"
        body = {"user_id": wallet["user_id"], "service_id": "bench", "amount": "1.00",
                "currency": "USD"}
        r = await self.api.post("/v1/payments", headers=headers, json=body)
        while r.status_code == 429:  # as a careful client does: the same key after Retry-After
            self.rate_limited += 1
            await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
            r = await self.api.post("/v1/payments", headers=headers, json=body)
        r.raise_for_status()
        self.posted += 1
        return r

    async def settle(self, pid: str) -> str:
        """Poll one payment until it settles (only for answers that came back before it did)."""
        while True:
            status = str((await self.api.get(f"/v1/payments/{pid}")).json()["status"])
            if status in SETTLED:
                return status
            await asyncio.sleep(0.1)

    async def payments(self, wallets: list[dict[str, Any]], count: int,
                       concurrency: int = IN_FLIGHT) -> dict[str, Any]:
        """`count` payments, `concurrency` in flight, each POST waiting for its outcome."""
        gate = asyncio.Semaphore(concurrency)
        latencies: list[float] = []
        statuses: dict[str, int] = {}

        async def one(i: int) -> None:
            async with gate:
                t0 = time.perf_counter()
                body = (await self.post(wallets[i % len(wallets)], wait=30)).json()
                status = body["status"]
                if status not in SETTLED:
                    status = await self.settle(body["id"])
                latencies.append(time.perf_counter() - t0)
                statuses[status] = statuses.get(status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        elapsed = time.perf_counter() - started
        return {"payments": count, "in_flight": concurrency, "wallets": len(wallets),
                "seconds": round(elapsed, 2), "per_second": round(count / elapsed, 1),
                "latency_ms": summary(latencies), "statuses": statuses}

    async def bare(self, count: int, concurrency: int = IN_FLIGHT, client: Client | None = None,
                   activities: int = 4) -> dict[str, Any]:
        """The bare workflow of `activities` no-op activities; `client` (with its data
        converter) instead of the plain one, e.g. with the payload codec."""
        elapsed, latencies = await self._bare_run(count, concurrency, client, activities)
        return {"workflows": count, "activities": activities, "in_flight": concurrency,
                "seconds": round(elapsed, 2), "per_second": round(count / elapsed, 1),
                "latency_ms": summary(latencies), "_raw": latencies}

    async def beside_bare(self, run: Callable[[int], Awaitable[dict[str, Any]]], count: int,
                          chunks: int = 4) -> dict[str, float]:
        """Items/s of `run` (given how many to do) and of the bare 4-activity workflow, in
        alternating chunks (a b b a ...): the comparator measured in the same minutes, not at
        the start of the bench (the server's speed drifts over a run; a kind measured minutes
        after its comparator read 1.20 in one run and 1.44 in the next)."""
        seconds = {"items": 0.0, "bare": 0.0}
        per_chunk = max(1, count // chunks)
        for i in range(chunks):
            for side in (("items", "bare") if i % 2 == 0 else ("bare", "items")):
                done = await (run(per_chunk) if side == "items" else self.bare(per_chunk))
                seconds[side] += done["seconds"]
        done_each = per_chunk * chunks
        return {"per_second": round(done_each / seconds["items"], 1),
                "bare_per_second": round(done_each / seconds["bare"], 1)}

    async def bare_pair(self, count: int, concurrency: int, a: Client, b: Client,
                        chunks: int = 4) -> tuple[dict[str, Any], dict[str, Any]]:
        """The bare 4-activity workflow through client `a` and through client `b`, in
        alternating chunks (a b b a a b b a): the server's speed drifts over a run (its history
        grows, the machine's clock varies), and alternating lays the drift on both alike."""
        sides: dict[int, tuple[float, list[float]]] = {0: (0.0, []), 1: (0.0, [])}
        per_chunk = max(1, count // chunks)
        for i in range(chunks):
            for side in ((0, 1) if i % 2 == 0 else (1, 0)):
                elapsed, latencies = await self._bare_run(per_chunk, concurrency, (a, b)[side], 4)
                sides[side] = (sides[side][0] + elapsed, sides[side][1] + latencies)
        made = []
        for side in (0, 1):
            elapsed, latencies = sides[side]
            made.append({"workflows": len(latencies), "activities": 4, "in_flight": concurrency,
                         "seconds": round(elapsed, 2),
                         "per_second": round(len(latencies) / elapsed, 1),
                         "latency_ms": summary(latencies)})
        return made[0], made[1]

    async def _bare_run(self, count: int, concurrency: int, client: Client | None,
                        activities: int) -> tuple[float, list[float]]:
        temporal = client or self.temporal
        queue = f"bare-{secrets.token_hex(3)}"
        gate = asyncio.Semaphore(concurrency)
        latencies: list[float] = []

        async def one(i: int) -> None:
            async with gate:
                t0 = time.perf_counter()
                await temporal.execute_workflow(BareWorkflow.run, args=[i, activities],
                                                id=f"{queue}-{i}", task_queue=queue)
                latencies.append(time.perf_counter() - t0)

        # unsandboxed, as paysaga's worker runs its sagas: the cheapest the SDK offers, so the
        # comparator is the hand-written workflow at its fastest, not the sandbox's cost
        async with Worker(temporal, task_queue=queue, workflows=[BareWorkflow],
                          activities=[noop], workflow_runner=UnsandboxedWorkflowRunner()):
            started = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(count)))
            elapsed = time.perf_counter() - started
        return elapsed, latencies

    async def one_at_a_time(self, wallet: dict[str, Any], count: int) -> dict[str, Any]:
        latencies: list[float] = []
        answered: dict[str, int] = {}
        for _ in range(count):
            t0 = time.perf_counter()
            r = await self.post(wallet, wait=10)
            status = r.json()["status"]
            if status not in SETTLED:
                status = await self.settle(r.json()["id"])
            latencies.append(time.perf_counter() - t0)
            answered[f"{r.status_code} {status}"] = answered.get(f"{r.status_code} {status}", 0) + 1
        return {"payments": count, "latency_ms": summary(latencies), "answers": answered,
                "_raw": latencies}

    async def one_at_a_time_beside_bare(self, wallet: dict[str, Any], count: int,
                                        chunks: int = 4) -> tuple[dict[str, Any], dict[str, Any]]:
        """Payments one at a time and the bare 4-activity workflow one at a time, in alternating
        chunks, so the comparison meets the same server at the same moment of the run."""
        paid: list[dict[str, Any]] = []
        bare: list[dict[str, Any]] = []
        per_chunk = max(1, count // chunks)
        for i in range(chunks):
            for side in (("pay", "bare") if i % 2 == 0 else ("bare", "pay")):
                if side == "pay":
                    paid.append(await self.one_at_a_time(wallet, per_chunk))
                else:
                    bare.append(await self.bare(per_chunk, concurrency=1))
        answers: dict[str, int] = {}
        for chunk in paid:
            for k, n in chunk["answers"].items():
                answers[k] = answers.get(k, 0) + n
        return ({"payments": per_chunk * chunks, "latency_ms": _merged(paid), "answers": answers},
                {"workflows": per_chunk * chunks, "latency_ms": _merged(bare)})

    async def open_loop(self, wallets: list[dict[str, Any]], rate: float,
                        seconds: float) -> dict[str, Any]:
        """POST without waiting at a fixed rate; the latency of the 202 answers."""
        latencies: list[float] = []
        tasks = []

        async def one(i: int) -> None:
            t0 = time.perf_counter()
            await self.post(wallets[i % len(wallets)])
            latencies.append(time.perf_counter() - t0)

        started = time.perf_counter()
        count = int(rate * seconds)
        for i in range(count):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        await self.wait_idle()
        return {"rate_per_second": round(rate, 1), "posts": count, "post_ms": summary(latencies)}

    async def completed(self) -> int:
        page = (await self.api.get("/v1/payments", params={"status": "completed", "limit": 1})).json()
        return int(page["total"])

    async def wait_idle(self) -> None:
        """Until every payment the bench posted has its row (its workflow has run its first step:
        a 202 answers before that) and none is still on its way (pending, reserved, processing)."""
        while True:
            made = (await self.api.get("/v1/payments", params={"limit": 1})).json()["total"]
            busy = max(0, self.posted - int(made))
            for status in ("pending", "reserved", "processing"):
                page = (await self.api.get("/v1/payments", params={"status": status, "limit": 1})).json()
                busy += int(page["total"])
            if busy == 0:
                return
            await asyncio.sleep(0.5)

    def worker_rss_mb(self) -> float:
        return worker_rss_mb(self.stack_pid)

    async def rss_after_completed(self, wallets: list[dict[str, Any]],
                                  milestones: list[int]) -> dict[str, float]:
        figures: dict[str, float] = {}
        for target in milestones:
            missing = target - await self.completed()
            if missing > 0:
                print(f"  completing {missing} more payments to reach {target} ...", flush=True)
                await self.payments(wallets, missing)
            await self.wait_idle()
            figures[str(target)] = self.worker_rss_mb()
            print(f"  worker RSS after {await self.completed()} completed: "
                  f"{figures[str(target)]} MB", flush=True)
        return figures

    async def parked(self, wallet: dict[str, Any], count: int) -> dict[str, Any]:
        """Worker memory with `count` payments failed and parked, waiting for a manual retry."""
        before = self.worker_rss_mb()
        await self.gateway.put("/behavior", json={"fail_rate": 0.0, "decline_rate": 1.0})
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def one() -> None:
            async with gate:
                await self.post(wallet)

        await asyncio.gather(*(one() for _ in range(count)))
        await self.wait_idle()
        await self.gateway.put("/behavior", json={"fail_rate": 0.0})
        return {"parked": count, "worker_rss_mb_before": before,
                "worker_rss_mb_after": self.worker_rss_mb()}

    async def running_workflows(self, parked: int = 0) -> dict[str, Any]:
        """Running workflows by type and PaymentStatus, once visibility (eventually consistent)
        has caught up with the parked payments (listed, each with its last status), or after 30 s."""
        deadline = time.monotonic() + 30
        while True:
            counts: dict[str, int] = {}
            async for wf in self.temporal.list_workflows("ExecutionStatus = 'Running'"):
                status = wf.typed_search_attributes.get(PAYMENT_STATUS) or "-"
                name = f"{wf.workflow_type} {status}"
                counts[name] = counts.get(name, 0) + 1
            moving = sum(n for name, n in counts.items() if name.endswith(("pending", "processing")))
            if (not moving and sum(counts.values()) >= parked) or time.monotonic() > deadline:
                return {"total": sum(counts.values()), "by_type_and_status": counts}
            await asyncio.sleep(1)


async def list_latency(api: httpx.AsyncClient, database_url: str, rows: int) -> dict[str, Any]:
    """GET /v1/payments latency with `rows` payments in the table (inserted directly)."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    await seed.plant_payments(conn, rows)
    await conn.close()
    figures: dict[str, Any] = {"rows": rows}
    deep = min(5000, rows // 2)
    for name, params in (("newest", {}), ("status=failed", {"status": "failed"}),
                         ("user_id", {"user_id": "user-7"}),
                         (f"offset {deep}", {"offset": deep}),
                         (f"cursor after {deep}", {"starting_after": f"pay_bench_{deep}"}),
                         ("status=failed,exhausted", {"status": "failed,exhausted"})):
        latencies = []
        for _ in range(30):
            t0 = time.perf_counter()
            (await api.get("/v1/payments", params={"limit": 50, **params})).raise_for_status()
            latencies.append(time.perf_counter() - t0)
        figures[name] = summary(latencies)
    return figures


async def rate_limit_cost(database_url: str, calls: int = 500) -> dict[str, Any]:
    """What the per-key rate limit adds to each request: one statement on PostgreSQL."""
    from db import rate_limits
    from db.engine import make_engine

    engine = make_engine(database_url, pool_size=2)
    latencies = []
    try:
        for _ in range(calls):
            t0 = time.perf_counter()
            await rate_limits.take(engine, "bench-key", "read", 1e9, 10**9)
            latencies.append(time.perf_counter() - t0)
    finally:
        await engine.dispose()
    return {"calls": calls, "ms": summary(latencies)}


@dataclass(frozen=True)
class Size:
    """How much each step does: `FULL` is `make bench`; `SMALL` runs every step in a minute, so
    a bench that no longer runs fails `make test` (tests/bench)."""

    payments: int = 300
    milestones: tuple[int, ...] = (1000, 5000)
    warm_up: int = 40
    one_at_a_time: int = 100
    bare_one_at_a_time: int = 50
    # the codec's pair, per side, in 8 alternating chunks: with 300 in 4 its ratio read 0.94-1.03
    # across runs of one build, while its cost is about 5 us a payload (a few a workflow)
    codec_pair: int = 600
    money_one_at_a_time: int = 50
    relay_events: int = 50_000
    inbox_events: int = 2000
    event_to_status: int = 50
    # per kind, in 4 rotating rounds: with 200 (50 a round) worker + API / bare-1's swung
    # 1.87-2.05 between two runs of one build; work a chunk leaves (the relay's, evictions) is
    # counted in the next, less so in longer chunks
    cpu_items: int = 600
    open_loop_seconds: float = 20
    parked: int = 1000
    list_rows: int = 100_000
    rate_limit_calls: int = 500
    failover: int = 50
    reconciliation_records: int = 100_000


SMALL = Size(payments=20, milestones=(100, 120), warm_up=4, one_at_a_time=5, bare_one_at_a_time=5,
             codec_pair=20,
             money_one_at_a_time=5, relay_events=500, inbox_events=50, event_to_status=3,
             cpu_items=10, open_loop_seconds=2, parked=10, list_rows=1000, rate_limit_calls=20,
             failover=3, reconciliation_records=500)


async def main(size: Size, extras: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="paysaga-bench-") as tmp:
        print(f"starting the make dev stack under {tmp} ...", flush=True)
        stack, key = await start_stack(Path(tmp))
        try:
            return _public(await _steps(stack, key, size, extras))
        except (httpx.HTTPError, OSError, RPCError) as err:
            died = stack.died()  # a part of the stack died: say which, with its log
            if died is not None:
                raise died from err
            raise
        finally:
            stack.stop()


async def _steps(stack: Stack, key: str, size: Size, extras: bool) -> dict[str, Any]:
    count, tmp = size.payments, stack.data_dir
    api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORTS['API_PORT']}", timeout=60,
                            headers={"Authorization": f"Bearer {key}"},
                            limits=httpx.Limits(max_connections=200,
                                                keepalive_expiry=API_KEEPALIVE_SECONDS))
    gateway = httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORTS['GATEWAY_PORT']}")
    await gateway.put("/behavior", json={"fail_rate": 0.0})
    secondary = httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORTS['GATEWAY_SECONDARY_PORT']}")
    await secondary.put("/behavior", json={"fail_rate": 0.0})
    temporal = await Client.connect(f"127.0.0.1:{PORTS['TEMPORAL_PORT']}")
    database_url = f"postgresql://postgres@127.0.0.1:{PORTS['EMBEDDED_PG_PORT']}/paysaga"
    bench = Bench(api, gateway, temporal, stack.pid)
    results: dict[str, Any] = {"size": asdict(size),
                               "worker_rss_mb_after_completed": {"0": bench.worker_rss_mb()}}
    spread = await bench.wallets(20)
    print("warm-up ...", flush=True)
    await bench.payments(spread, size.warm_up)
    for n in (4, 1, 0):
        await bench.bare(size.warm_up, activities=n)

    print(f"throughput: {count} payments over 20 wallets, {IN_FLIGHT} in flight (the outbox lag "
          "sampled meanwhile) ...", flush=True)
    results["paysaga"], results["outbox_lag"] = await bus.lag_while(
        database_url, bench.payments(spread, count))
    print(f"  outbox lag while it ran: {results['outbox_lag']}", flush=True)
    print(f"  {results['paysaga']}", flush=True)
    for n, name in ((4, "bare"), (1, "bare_1"), (0, "bare_0")):
        print(f"bare workflow: {count} x {n} regular no-op activities, {IN_FLIGHT} in flight ...",
              flush=True)
        results[name] = await bench.bare(count, activities=n)
        print(f"  {results[name]}", flush=True)
    results["ratio"] = round(results["paysaga"]["per_second"] / results["bare"]["per_second"], 2)
    print("the payload codec's cost: the bare workflow with paysaga's converter, its payloads "
          "plain and encrypted, in alternating chunks, this process's garbage collector tuned "
          "as paysaga's processes tune theirs ...", flush=True)
    ours = Client(temporal.service_client, namespace=temporal.namespace,
                  data_converter=data_converter(None))
    encrypted = Client(temporal.service_client, namespace=temporal.namespace,
                       data_converter=data_converter(KeyRing.parse(KeyRing.new_key("b"))))
    with collected_as_paysaga_collects():
        results["bare_plain_paired"], results["bare_encrypted"] = await bench.bare_pair(
            size.codec_pair, IN_FLIGHT, ours, encrypted, chunks=8)
        plain, sealed = await bench.bare_pair(size.bare_one_at_a_time, 1, ours, encrypted)
    results["bare_one_at_a_time"] = {"plain": plain["latency_ms"],
                                     "encrypted": sealed["latency_ms"]}
    print(f"  plain {results['bare_plain_paired']}; encrypted {results['bare_encrypted']}; "
          f"one at a time {results['bare_one_at_a_time']}", flush=True)

    print(f"relay throughput to JetStream: {size.relay_events:,} events planted in the outbox "
          "...", flush=True)
    results["relay"] = await bus.relay_throughput(database_url, size.relay_events)
    print(f"  {results['relay']}", flush=True)

    print(f"money in and out: {count} top-ups and {count} withdrawals, {IN_FLIGHT} in flight, then "
          "each again in chunks alternating with the bare 4-activity workflow ...", flush=True)
    for kind in ("top_up", "withdrawal"):
        results[kind] = await money.throughput(api, kind, spread, count, IN_FLIGHT)
        print(f"  {results[kind]}", flush=True)
        results[f"{kind}_beside_bare"] = paired = await bench.beside_bare(
            functools.partial(money.throughput, api, kind, spread, concurrency=IN_FLIGHT), count)
        results[f"{kind}_ratio"] = round(paired["per_second"] / paired["bare_per_second"], 2)
        print(f"  in chunks alternating with the bare 4-activity workflow: {paired}", flush=True)
        results[f"{kind}_one_at_a_time"] = await money.one_at_a_time(
            api, kind, spread[1], size.money_one_at_a_time)
        print(f"  one at a time: {results[f'{kind}_one_at_a_time']}", flush=True)

    print(f"authorize now, capture later: {count} authorize + capture pairs, {IN_FLIGHT} in "
          "flight, and the capture's round trip ...", flush=True)
    results["capture_pairs"] = await capture.pairs(api, spread, count, IN_FLIGHT)
    results["capture_pairs_ratio"] = round(
        results["capture_pairs"]["per_second"] / results["bare"]["per_second"], 2)
    print(f"  {results['capture_pairs']}", flush=True)
    results["capture_one_at_a_time"] = await capture.capture_round_trip(
        api, spread[2], size.money_one_at_a_time)
    print(f"  one at a time: {results['capture_one_at_a_time']}", flush=True)

    print("outcomes that arrive later: the inbox's throughput, and from a processor's event to "
          "the payment's new status ...", flush=True)
    hook_secret = inbox.secret_of(tmp)
    results["inbox"] = await inbox.throughput(api, hook_secret, size.inbox_events)
    print(f"  {results['inbox']}", flush=True)
    results["event_to_status"] = await inbox.event_to_status(
        api, gateway, hook_secret, spread[0], size.event_to_status)
    print(f"  {results['event_to_status']}", flush=True)

    print("CPU per operation by process ...", flush=True)
    n = size.cpu_items
    kinds: dict[str, Callable[[int], Awaitable[Any]]] = {
        "payment": lambda k: bench.payments(spread, k),
        "top_up": lambda k: money.throughput(api, "top_up", spread, k, IN_FLIGHT),
        "withdrawal": lambda k: money.throughput(api, "withdrawal", spread, k, IN_FLIGHT),
        **{f"bare, {a} activities": (lambda k, a=a: bench.bare(k, activities=a))  # type: ignore[misc]
           for a in (4, 1, 0)}}
    results["cpu_ms_per_operation"] = await money.cpu_per_operation_alternating(
        stack.pid, n, kinds)
    for what, parts in results["cpu_ms_per_operation"].items():
        print(f"  {what}: {parts}", flush=True)

    print("one payment at a time, POST + Prefer: wait ...", flush=True)
    results["one_at_a_time"], results["bare_one_at_a_time_paired"] = \
        await bench.one_at_a_time_beside_bare(spread[0], size.one_at_a_time)
    print(f"  {results['one_at_a_time']}", flush=True)

    half = results["paysaga"]["per_second"] / 2
    print(f"the 202 path at half the maximum rate ({half:.1f}/s) for {size.open_loop_seconds:g} s "
          "...", flush=True)
    results["post_202"] = await bench.open_loop(spread, half, size.open_loop_seconds)
    print(f"  {results['post_202']}", flush=True)

    print("worker memory as completed payments accumulate ...", flush=True)
    results["worker_rss_mb_after_completed"].update(
        await bench.rss_after_completed(spread, list(size.milestones)))

    print(f"{size.parked:,} payments parked in failed, waiting for a retry ...", flush=True)
    results["parked"] = await bench.parked((await bench.wallets(1))[0], size.parked)
    print(f"  {results['parked']}", flush=True)

    results["rate_limited_429s"] = bench.rate_limited
    results["running_workflows"] = await bench.running_workflows(parked=size.parked)
    print(f"Running workflows: {results['running_workflows']}", flush=True)

    if extras:
        print(f"hot wallet: {count} payments on 1 wallet, {IN_FLIGHT} in flight ...", flush=True)
        results["hot"] = await bench.payments(await bench.wallets(1), count)
        print(f"  {results['hot']}", flush=True)
        print(f"list latency with {size.list_rows:,} payments in the table ...", flush=True)
        results["list"] = await list_latency(api, database_url, size.list_rows)
        print(f"  {results['list']}", flush=True)
        print("the per-key rate limit's cost per request ...", flush=True)
        results["rate_limit"] = await rate_limit_cost(database_url, size.rate_limit_calls)
        print(f"  {results['rate_limit']}", flush=True)
        print("failover, one at a time: primary soft-declines, secondary charges ...",
              flush=True)
        await gateway.put("/behavior", json={
            "fail_rate": 0.0, "decline_rate": 1.0, "decline_code": "processor_unavailable"})
        results["failover"] = await bench.one_at_a_time(spread[0], size.failover)
        await gateway.put("/behavior", json={"fail_rate": 0.0})
        print(f"  {results['failover']}", flush=True)
        print(f"reconciliation of {size.reconciliation_records:,} gateway records ...",
              flush=True)
        async with httpx.AsyncClient(  # reconciliation is platform-wide: the operator's key
                base_url=str(api.base_url), timeout=60,
                headers={"Authorization": f"Bearer {stack.key('dev_operator_key')}"}) as operator:
            results["reconciliation"] = await reconcile_bench(
                operator, tmp, database_url, stack.pid, size.reconciliation_records)
        print(f"  {results['reconciliation']}", flush=True)
    await api.aclose()
    await gateway.aclose()
    await secondary.aclose()
    return results


BENCH_PART = money.BENCH


def goals(r: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """Issue 31's figures, each against its comparator from the same run: a payment's CPU (every
    process of the stack) against the bare 4-activity workflow's (the server and the bench
    process, which is its worker and client), and the worker + API against the bare 1-activity
    workflow's worker + client."""
    if "cpu_ms_per_operation" not in r or "bare, 1 activities" not in r["cpu_ms_per_operation"]:
        return []
    cpu = r["cpu_ms_per_operation"]
    pay = cpu["payment"]
    paysaga = sum(v for k, v in pay.items() if k != BENCH_PART)
    bare4 = cpu["bare, 4 activities"]
    bare4_total = bare4.get("temporal server", 0) + bare4.get(BENCH_PART, 0)
    ours = pay.get("worker", 0) + pay.get("api", 0)
    sdk = cpu["bare, 1 activities"].get(BENCH_PART, 0)
    one = r["one_at_a_time"]["latency_ms"]["p50"]
    beside = r.get("bare_one_at_a_time_paired")  # measured in chunks alternating with it
    bare_one = (beside["latency_ms"] if beside else r["bare_one_at_a_time"]["plain"])["p50"]
    return [
        ("CPU per payment, all processes / bare-4's", _ratio(paysaga, bare4_total), "<= 0.75"),
        ("  ms: payment / bare-4", f"{paysaga:.1f} / {bare4_total:.1f}", ""),
        ("worker + API per payment / bare-1's worker+client", _ratio(ours, sdk), "<= 2"),
        ("  ms: worker + API / bare-1 worker + client", f"{ours:.1f} / {sdk:.1f}", ""),
        ("POST + wait one at a time p50 / bare-4's", _ratio(one, bare_one), "<= 0.8"),
    ]


def _ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else float("nan")


def report(r: dict[str, Any]) -> None:
    one, post = r["one_at_a_time"]["latency_ms"], r["post_202"]["post_ms"]
    rss = " / ".join(str(v) for v in r["worker_rss_mb_after_completed"].values())
    rows = [
        (f"paysaga / bare, {IN_FLIGHT} in flight", r["ratio"], ">= 1.25"),
        ("  paysaga payments/s", r["paysaga"]["per_second"], ""),
        ("  bare 4-activity workflows/s", r["bare"]["per_second"], ""),
        ("POST + Prefer: wait, one at a time, p50 / p99 ms", f"{one['p50']} / {one['p99']}",
         "<= 100 / 200"),
        (f"POST 202 at {r['post_202']['rate_per_second']}/s, p99 ms", post["p99"], "< 50"),
        ("worker RSS MB after 0 / 1k / 5k completed", rss, "flat within 20%"),
        (f"worker RSS MB, {r['parked']['parked']:,} parked in failed",
         r["parked"]["worker_rss_mb_after"], "< 200"),
        ("Running workflows after the bench", r["running_workflows"]["total"],
         "only those waiting"),
    ]
    if "bare_encrypted" in r:
        one = r["bare_one_at_a_time"]
        plain = r.get("bare_plain_paired", r["bare"])  # alternated with the encrypted runs
        rows += [("codec: bare workflows/s encrypted / plain",
                  round(r["bare_encrypted"]["per_second"] / plain["per_second"], 2),
                  ">= 0.95"),
                 ("codec: one at a time p50 ms, encrypted - plain",
                  round(one["encrypted"]["p50"] - one["plain"]["p50"], 1), "<= 5")]
    if "relay" in r:
        rows += [("relay to JetStream, events/s", r["relay"]["events_per_second"], ">= 10,000"),
                 ("outbox lag during the payment bench, p99 ms", r["outbox_lag"]["p99_ms"],
                  "< 1,000")]
    for kind in ("top_up", "withdrawal"):
        if kind in r:
            o = r[f"{kind}_one_at_a_time"]["latency_ms"]
            rows += [(f"{kind}s / bare, {IN_FLIGHT} in flight", r[f"{kind}_ratio"], ">= 1.25"),
                     (f"  {kind}s/s", r[kind]["per_second"], ""),
                     (f"{kind} POST + Prefer: wait, one at a time, p50 ms", o["p50"], "<= 60")]
    if "capture_pairs" in r:
        c = r["capture_one_at_a_time"]["latency_ms"]
        rows += [(f"authorize + capture pairs / bare, {IN_FLIGHT} in flight",
                  r["capture_pairs_ratio"], ""),
                 ("  authorize + capture pairs/s", r["capture_pairs"]["per_second"], ""),
                 ("POST capture, one at a time, p50 / p99 ms", f"{c['p50']} / {c['p99']}", "")]
    if "inbox" in r:
        e = r["event_to_status"]["latency_ms"]
        rows += [("processor inbox, verified events/s", r["inbox"]["per_second"], ">= 100"),
                 ("processor event -> payment completed, p50 / p99 ms",
                  f"{e['p50']} / {e['p99']}", "<= 100 / 500")]
    rows += goals(r)
    print(f"\n{'figure':<50} {'value':<24} target")
    for name, value, target in rows:
        print(f"{name:<50} {value!s:<24} {target}")
    print(f"  Running by type and status: {r['running_workflows']['by_type_and_status']}")
    if "cpu_ms_per_operation" in r:
        cpu = r["cpu_ms_per_operation"]
        parts = list(next(iter(cpu.values())))
        print(f"\nCPU ms per operation   {'  '.join(f'{p[:14]:>14}' for p in parts)}")
        for what, by_part in cpu.items():
            print(f"  {what:<20} {'  '.join(f'{by_part.get(p, 0):>14}' for p in parts)}")
    if "failover" in r:
        f = r["failover"]["latency_ms"]
        print(f"{'failover (primary soft-declines), p50 / p99 ms':<50} {f['p50']} / {f['p99']}")
    if "reconciliation" in r:
        rec = r["reconciliation"]
        label = f"reconciliation of {rec['records']:,} records: s / records/s"
        print(f"{label:<50} "
              f"{rec['seconds']} / {rec['records_per_second']:<15} "
              f"worker RSS MB {rec['worker_rss_mb']['before']} -> peak {rec['worker_rss_mb']['peak']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--payments", type=int, default=300)
    parser.add_argument("--completed", default="1000,5000",
                        help="completed-payment counts at which the worker's RSS is measured")
    parser.add_argument("--out", default="bench-results.json")
    parser.add_argument("--no-extras", action="store_true", help="skip hot wallet and list latency")
    parser.add_argument("--small", action="store_true",
                        help="every step, small (a minute): proves the bench still runs")
    args = parser.parse_args()
    size = SMALL if args.small else replace(
        Size(), payments=args.payments,
        milestones=tuple(int(c) for c in args.completed.split(",")))
    figures = asyncio.run(main(size, not args.no_extras))
    report(figures)
    Path(args.out).write_text(json.dumps(figures, indent=2))
    print(f"\nwritten to {args.out}")
