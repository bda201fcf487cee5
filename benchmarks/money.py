"""Money in and out, measured: top-ups/s and withdrawals/s at 20 in flight (each POST waiting for
its outcome), one at a time (POST + `Prefer: wait`), and the CPU seconds each operation costs in
each process of the stack (Temporal server, API, worker, PostgreSQL, gateways), beside a payment's
and the bare workflow's: where the time goes."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import psutil

PATHS = {"top_up": ("top-ups", "source", {"type": "card", "token": "tok_bench"}),
         "withdrawal": ("withdrawals", "destination", {"type": "bank_account", "token": "ba_bench"})}
SETTLED = ("succeeded", "failed")
BENCH = "bench (client, bare worker)"  # this process: the load's client, the bare workflows' worker


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    return {f"p{p}": round(pct(p) * 1000, 1) for p in (50, 95, 99)}


async def transfer(api: httpx.AsyncClient, kind: str, wallet: dict[str, Any],
                   wait: float = 30) -> str:
    """One top-up or withdrawal, answered with its outcome (polled if it outlived the wait)."""
    path, field, instrument = PATHS[kind]
    headers = {"Idempotency-Key": secrets.token_hex(8), "Prefer": f"wait={wait:g}"}
    body = {"amount": "1.00", field: instrument}
    r = await api.post(f"/v1/wallets/{wallet['id']}/{path}", headers=headers, json=body)
    while r.status_code == 429:
        await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
        r = await api.post(f"/v1/wallets/{wallet['id']}/{path}", headers=headers, json=body)
    r.raise_for_status()
    status, tid = str(r.json()["status"]), r.json()["id"]
    while status not in SETTLED:
        await asyncio.sleep(0.1)
        status = str((await api.get(f"/v1/{path}/{tid}")).json()["status"])
    return status


async def throughput(api: httpx.AsyncClient, kind: str, wallets: list[dict[str, Any]], count: int,
                     concurrency: int) -> dict[str, Any]:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    statuses: dict[str, int] = {}

    async def one(i: int) -> None:
        async with gate:
            t0 = time.perf_counter()
            status = await transfer(api, kind, wallets[i % len(wallets)])
            latencies.append(time.perf_counter() - t0)
            statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.perf_counter() - started
    return {kind: count, "in_flight": concurrency, "seconds": round(elapsed, 2),
            "per_second": round(count / elapsed, 1), "latency_ms": summary(latencies),
            "statuses": statuses}


async def one_at_a_time(api: httpx.AsyncClient, kind: str, wallet: dict[str, Any],
                        count: int) -> dict[str, Any]:
    latencies = []
    for _ in range(count):
        t0 = time.perf_counter()
        await transfer(api, kind, wallet, wait=10)
        latencies.append(time.perf_counter() - t0)
    return {kind: count, "latency_ms": summary(latencies)}


def stack_processes(stack_pid: int) -> dict[str, list[psutil.Process]]:
    """The root process of each part of the stack, read from the command lines (a part's own
    children, PostgreSQL's backends say, are counted under it)."""
    parts: dict[str, list[psutil.Process]] = {}
    names = (("temporal", "temporal server"), ("-m api", "api"), ("-m worker", "worker"),
             ("postgres", "postgresql"), ("-m fakegateway", "gateways"), ("nats-server", "nats"))
    for child in psutil.Process(stack_pid).children():
        try:
            line = " ".join(child.cmdline())
        except psutil.Error:
            continue
        for needle, part in names:
            if needle in line:
                parts.setdefault(part, []).append(child)
                break
    if "postgresql" not in parts:  # pg_ctl daemonizes the postmaster: find it by its data dir
        for proc in psutil.process_iter(["name", "cmdline"]):
            line = " ".join(proc.info["cmdline"] or [])
            with contextlib.suppress(psutil.Error):
                if "postgres" in (proc.info["name"] or "") and " -D " in f" {line} " and \
                        "paysaga-bench" in line and "postgres" not in proc.parent().name():
                    parts.setdefault("postgresql", []).append(proc)
    parts[BENCH] = [psutil.Process()]
    return parts


def _cpu(processes: dict[str, list[psutil.Process]]) -> dict[str, float]:
    """CPU seconds of each part: its roots, their live descendants, and the descendants that
    ended (reaped into the roots' children times), so the figure only grows. The bench's own
    process is counted alone: the whole stack descends from it (it started `devstack`), and
    counting it there too made the bare workflows' worker and client look 3 to 5 times dearer."""
    total: dict[str, float] = {}
    for part, roots in processes.items():
        for root in roots:
            try:
                t = root.cpu_times()
                if part == BENCH:
                    total[part] = total.get(part, 0.0) + t.user + t.system
                    continue
                seconds = t.user + t.system + t.children_user + t.children_system
                for child in root.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        c = child.cpu_times()
                        seconds += c.user + c.system
            except psutil.Error:
                continue
            total[part] = total.get(part, 0.0) + seconds
    return total


async def cpu_per_operation_alternating(stack_pid: int, count: int,
                                        kinds: dict[str, Callable[[int], Awaitable[Any]]],
                                        chunks: int = 4) -> dict[str, dict[str, float]]:
    """CPU milliseconds per operation in each process for each kind, `count` operations each,
    run in `chunks` rounds that rotate the kinds' order: the server's speed drifts over a run,
    and rotating lays the drift on every kind alike."""
    processes = stack_processes(stack_pid)
    spent: dict[str, dict[str, float]] = {kind: {} for kind in kinds}
    per_chunk = max(1, count // chunks)
    order = list(kinds)
    for round_ in range(chunks):
        for kind in order[round_ % len(order):] + order[:round_ % len(order)]:
            before = _cpu(processes)
            await kinds[kind](per_chunk)
            after = _cpu(processes)
            for part in processes:
                spent[kind][part] = (spent[kind].get(part, 0.0)
                                     + after.get(part, 0.0) - before.get(part, 0.0))
    done = per_chunk * chunks
    return {kind: {part: round(seconds * 1000 / done, 2) for part, seconds in parts.items()}
            for kind, parts in spent.items()}
