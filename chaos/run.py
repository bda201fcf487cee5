"""Chaos: API, worker and gateway as separate processes (as in production), several hundred
payments across a few hot wallets, while the worker is SIGKILLed and restarted, the Temporal dev
server (persistent file) and PostgreSQL are restarted once each, and the gateway goes through 5xx
storms, timeouts, 429s and a full outage. Afterwards every payment must have settled (or be waiting
for a manual retry) and the invariant checker must find nothing.

    make chaos                 # 300 payments
    python -m chaos.run --payments 60 --quick
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from db.engine import make_engine
from db.invariants import check
from devstack.__main__ import Part, create_dev_key, wait_port
from devstack.postgres import EmbeddedPostgres, ensure_database
from devstack.temporal import SEARCH_ATTRIBUTES, temporal_binary

PORTS = {"api": 28000, "gateway": 28001, "temporal": 27233, "ui": 28233, "pg": 25433}
SETTLED = {"completed", "failed", "exhausted", "canceled"}


class Stack:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pg = EmbeddedPostgres(root / "pg", PORTS["pg"], self.logs / "postgres.log")
        self.env = dict(os.environ, PYTHONUNBUFFERED="1",
                        TEMPORAL_ADDRESS=f"127.0.0.1:{PORTS['temporal']}",
                        GATEWAY_URL=f"http://127.0.0.1:{PORTS['gateway']}",
                        API_PORT=str(PORTS["api"]), GATEWAY_PORT=str(PORTS["gateway"]),
                        WORKER_METRICS_PORT="0", WORKER_SDK_METRICS_PORT="0",
                        GATEWAY_TIMEOUT_SECONDS="2", GATEWAY_RETRY_INITIAL_SECONDS="0.2",
                        GATEWAY_RETRY_MAX_INTERVAL_SECONDS="2", GATEWAY_RETRY_MAX_ATTEMPTS="6",
                        GATEWAY_BREAKER_COOLDOWN_SECONDS="2",
                        DATABASE_URL=self.pg.url("paysaga"))
        self.parts: dict[str, Part] = {}

    def part(self, name: str, argv: list[str]) -> Part:
        part = Part(name, argv, self.logs / f"{name}.log", self.env)
        part.start()
        self.parts[name] = part
        return part

    def start_temporal(self) -> None:
        part = self.part("temporal", [
            temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1", "--port",
            str(PORTS["temporal"]), "--ui-port", str(PORTS["ui"]), "--headless",
            "--db-filename", str(self.root / "temporal.db"), "--sqlite-pragma", "journal_mode=wal",
            "--sqlite-pragma", "synchronous=normal", "--log-level", "error",
            *[a for n, k in SEARCH_ATTRIBUTES.items() for a in ("--search-attribute", f"{n}={k}")]])
        wait_port(PORTS["temporal"], part, 60, "Temporal")

    def start_worker(self) -> None:
        self.part("worker", [sys.executable, "-m", "worker"])

    def up(self) -> str:
        self.pg.start()
        ensure_database(self.pg.url(), "paysaga")
        subprocess.run([sys.executable, "-m", "db.migrate"], env=self.env, check=True,
                       capture_output=True)
        key = create_dev_key(self.env, None, self.logs / "keys.log")
        self.start_temporal()
        self.part("gateway", [sys.executable, "-m", "fakegateway"])
        self.start_worker()
        api = self.part("api", [sys.executable, "-m", "api"])
        wait_port(PORTS["gateway"], self.parts["gateway"], 30, "gateway")
        wait_port(PORTS["api"], api, 30, "API")
        return key

    def down(self) -> None:
        for part in reversed(list(self.parts.values())):
            part.stop()
        self.pg.stop()


async def submit(api: httpx.AsyncClient, body: dict[str, Any], stop_at: float) -> str | None:
    """Submit with the same Idempotency-Key until the API answers, as a careful client does."""
    key = secrets.token_hex(8)
    while time.monotonic() < stop_at:
        try:
            r = await api.post("/v1/payments", json=body, headers={"Idempotency-Key": key})
            if r.status_code in (200, 201, 202):
                return str(r.json()["id"])
            if r.status_code < 500:
                raise RuntimeError(f"rejected: {r.status_code} {r.text}")
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.3)
    return None


async def faults(stack: Stack, gateway: httpx.AsyncClient, quick: bool, log: list[str]) -> None:
    rng = random.Random(7)
    step = 1.5 if quick else 3.0

    async def behave(name: str, **profile: Any) -> None:
        for _ in range(20):
            try:
                await gateway.put("/behavior", json={"fail_rate": 0.1, **profile})
                log.append(f"gateway: {name}")
                return
            except httpx.HTTPError:
                await asyncio.sleep(0.2)

    async def kill_worker() -> None:
        stack.parts["worker"].process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        await asyncio.sleep(rng.uniform(0.5, 2))
        stack.start_worker()
        log.append("worker: SIGKILL and restart")

    await asyncio.sleep(step)
    await kill_worker()
    await behave("5xx storm", fail_rate=0.8)
    await asyncio.sleep(step)
    await behave("timeouts", timeout_rate=0.3, timeout_hang_seconds=5)
    await asyncio.sleep(step)
    await kill_worker()
    await behave("429s", rate_limit_rate=0.5)
    await asyncio.sleep(step)
    await behave("full outage", down=True)
    await asyncio.sleep(step * 1.5)
    await behave("default profile")
    stack.parts["temporal"].stop()
    await asyncio.to_thread(stack.start_temporal)
    log.append("temporal: restart")
    await asyncio.sleep(step)
    await asyncio.to_thread(stack.pg.stop)
    await asyncio.sleep(1)
    await asyncio.to_thread(stack.pg.start)
    log.append("postgresql: restart")
    await asyncio.sleep(step)
    await kill_worker()


async def main(count: int, quick: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="paysaga-chaos-") as tmp:
        stack = Stack(Path(tmp))
        print(f"starting API, worker, gateway, Temporal and PostgreSQL under {tmp} ...", flush=True)
        key = await asyncio.to_thread(stack.up)
        injected: list[str] = []
        try:
            api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORTS['api']}", timeout=30,
                                    headers={"Authorization": f"Bearer {key}"})
            gateway = httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORTS['gateway']}", timeout=5)
            await gateway.put("/behavior", json={"fail_rate": 0.0})
            wallets = []
            for i in range(3):
                w = (await api.post("/v1/wallets", json={"user_id": f"hot-{i}", "currency": "USD"})).json()
                await api.post(f"/v1/wallets/{w['id']}/deposits", json={"amount": "2000.00"},
                               headers={"Idempotency-Key": f"fund-{i}"})
                wallets.append(w)
            deadline = time.monotonic() + (120 if quick else 300)
            gate = asyncio.Semaphore(15)

            async def one(i: int) -> str | None:
                async with gate:
                    body = {"user_id": wallets[i % 3]["user_id"], "service_id": "chaos",
                            "amount": f"{random.Random(i).randint(100, 2500) / 100:.2f}",
                            "currency": "USD"}
                    return await submit(api, body, deadline)

            print(f"submitting {count} payments while injecting faults ...", flush=True)
            chaos = asyncio.create_task(faults(stack, gateway, quick, injected))
            ids = await asyncio.gather(*(one(i) for i in range(count)))
            await chaos
            lost = sum(1 for pid in ids if pid is None)
            print("waiting for every payment to settle ...", flush=True)
            outcomes: dict[str, int] = {}
            while time.monotonic() < deadline + 120:
                try:
                    outcomes = {}
                    for pid in ids:
                        if pid is None:
                            continue
                        status = (await api.get(f"/v1/payments/{pid}")).json()["status"]
                        outcomes[status] = outcomes.get(status, 0) + 1
                    if set(outcomes) <= SETTLED:
                        break
                except (httpx.HTTPError, KeyError):
                    pass
                await asyncio.sleep(1)
            engine = make_engine(stack.env["DATABASE_URL"], pool_size=2)
            temporal = await Client.connect(stack.env["TEMPORAL_ADDRESS"])
            records = (await gateway.get("/charges")).json()
            violations = await check(engine, records, temporal)
            await engine.dispose()
            await api.aclose()
            await gateway.aclose()
        finally:
            await asyncio.to_thread(stack.down)
    unsettled = sum(n for s, n in outcomes.items() if s not in SETTLED)
    print("\n| what | count |\n|---|---|")
    print(f"| payments submitted | {count} |")
    print(f"| never accepted by the API | {lost} |")
    for status, n in sorted(outcomes.items()):
        print(f"| {status} | {n} |")
    print(f"| faults injected | {len(injected)}: {'; '.join(injected)} |")
    print(f"| invariant violations | {len(violations)} |")
    for v in violations:
        print(f"  {v}")
    return 0 if not violations and not unsettled and not lost else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--payments", type=int, default=300)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.payments, args.quick)))
