"""Chaos: two API processes, two workers and the gateway as separate processes (as in a
scaled-out production), several hundred payments across a few hot wallets and refunds of the
completed ones, while one worker and one API process are SIGKILLed and restarted (the others carry
on), the Temporal dev server (persistent file) and PostgreSQL are restarted once each, and the
gateway goes through 5xx storms, timeouts, 429s and a full outage; cardholders dispute card
top-ups while the processors' webhooks are lost, duplicated and reordered. Afterwards every payment
and refund must have settled (or be waiting for a manual retry), the invariant checker must find
nothing, the reconciliation nothing unexplained, and every dispute must end as its processor
decided.

    make chaos                 # 300 payments
    python -m chaos.run --payments 60 --quick
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
from nats.js import api as js_api
from nats.js.errors import FetchTimeoutError
from standardwebhooks.webhooks import Webhook
from temporalio.client import Client

from db import outbox, payments
from db.engine import make_engine
from db.invariants import check
from devstack.__main__ import Part, create_dev_keys, wait_port
from devstack.nats import nats_argv
from devstack.postgres import EmbeddedPostgres, ensure_database
from devstack.temporal import SEARCH_ATTRIBUTES, dev_server_tuning, temporal_binary
from temporal_client.codec import KeyRing

PORTS = {"api": 28000, "api2": 28002, "gateway": 28001, "secondary": 28003, "temporal": 27233,
         "ui": 28233, "pg": 25433, "nats": 24223}
SETTLED = {"completed", "failed", "exhausted", "canceled", "partially_refunded", "refunded",
           "succeeded", "expired"}
NEW_BUILD = "chaos-build-b"  # the workers promoted in the middle of the run
# each processor signs the events it POSTs to the inbox (api-2's: api-1 is the one killed)
HOOK_SECRETS = {name: "whsec_" + base64.b64encode(os.urandom(24)).decode()
                for name in ("primary", "secondary")}
# outcomes that arrive later, under every profile: a share of charges settle later, their
# webhooks lost, duplicated and delayed (the sync finds the lost ones)
LATER = {"async_rate": 0.2, "async_settle_seconds": 1.0, "webhook_loss_rate": 0.2,
         "webhook_duplicate_rate": 0.2, "webhook_delay_seconds": 1.5, "three_ds_rate": 0.25}
WORKERS = ("worker-1", "worker-2")
NEW_WORKERS = ("worker-b1",)
APIS = {"api-1": PORTS["api"], "api-2": PORTS["api2"]}
INBOX = f"http://127.0.0.1:{PORTS['api2']}/v1/processor-webhooks"


class Stack:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pg = EmbeddedPostgres(root / "pg", PORTS["pg"], self.logs / "postgres.log")
        self.env = dict(os.environ, PYTHONUNBUFFERED="1",
                        TEMPORAL_ADDRESS=f"127.0.0.1:{PORTS['temporal']}",
                        GATEWAY_URL=f"http://127.0.0.1:{PORTS['gateway']}",
                        GATEWAY_SECONDARY_URL=f"http://127.0.0.1:{PORTS['secondary']}",
                        API_PORT=str(PORTS["api"]), GATEWAY_PORT=str(PORTS["gateway"]),
                        WORKER_METRICS_PORT="0", WORKER_SDK_METRICS_PORT="0",
                        GATEWAY_TIMEOUT_SECONDS="2", GATEWAY_RETRY_INITIAL_SECONDS="0.2",
                        GATEWAY_RETRY_MAX_INTERVAL_SECONDS="2", GATEWAY_RETRY_MAX_ATTEMPTS="6",
                        GATEWAY_BREAKER_COOLDOWN_SECONDS="2",
                        GATEWAY_RECORDS_PATH=str(root / "gateway.sqlite"),
                        DATABASE_URL=self.pg.url("paysaga"),
                        NATS_URL=f"nats://127.0.0.1:{PORTS['nats']}",
                        PAYLOAD_KEYS=KeyRing.new_key("chaos-1"),
                        SEARCH_HASH_KEY=base64.b64encode(os.urandom(32)).decode(),
                        PROCESSOR_WEBHOOK_SECRETS=json.dumps(HOOK_SECRETS),
                        PROCESSOR_SYNC_FIRST_SECONDS="3", PROCESSOR_SYNC_INTERVAL_SECONDS="3",
                        ACTION_TIMEOUT_SECONDS="6")
        self.parts: dict[str, Part] = {}

    def part(self, name: str, argv: list[str], **env: str) -> Part:
        part = Part(name, argv, self.logs / f"{name}.log", {**self.env, **env})
        part.start()
        self.parts[name] = part
        return part

    def start_nats(self) -> None:
        part = self.part("nats", nats_argv(PORTS["nats"], self.root / "nats"))
        wait_port(PORTS["nats"], part, 30, "NATS")

    def start_temporal(self) -> None:
        part = self.part("temporal", [
            temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1", "--port",
            str(PORTS["temporal"]), "--ui-port", str(PORTS["ui"]), "--headless",
            "--db-filename", str(self.root / "temporal.db"), "--sqlite-pragma", "journal_mode=wal",
            "--sqlite-pragma", "synchronous=normal", "--log-level", "error", *dev_server_tuning(),
            *[a for n, k in SEARCH_ATTRIBUTES.items() for a in ("--search-attribute", f"{n}={k}")]])
        wait_port(PORTS["temporal"], part, 60, "Temporal")

    def start_gateway(self) -> None:
        self.part("gateway", [sys.executable, "-m", "fakegateway"],
                  GATEWAY_WEBHOOK_URL=f"{INBOX}/primary",
                  GATEWAY_WEBHOOK_SECRET=HOOK_SECRETS["primary"])

    def start_worker(self, name: str) -> None:
        self.part(name, [sys.executable, "-m", "worker"], WORKER_IDENTITY=name)

    def start_api(self, name: str) -> Part:
        return self.part(name, [sys.executable, "-m", "api"], API_PORT=str(APIS[name]))

    def up(self) -> tuple[str, str]:
        """Start every part; the tenant key and the platform operator key."""
        self.pg.start()
        ensure_database(self.pg.url(), "paysaga")
        subprocess.run([sys.executable, "-m", "db.migrate"], env=self.env, check=True,
                       capture_output=True)
        keys = create_dev_keys(self.env, None, None, self.logs / "keys.log")
        self.start_nats()
        self.start_temporal()
        self.start_gateway()
        self.part("secondary", [sys.executable, "-m", "fakegateway"], GATEWAY_NAME="secondary",
                  GATEWAY_PORT=str(PORTS["secondary"]),
                  GATEWAY_RECORDS_PATH=str(self.root / "gateway-secondary.sqlite"),
                  GATEWAY_WEBHOOK_URL=f"{INBOX}/secondary",
                  GATEWAY_WEBHOOK_SECRET=HOOK_SECRETS["secondary"])
        for name in WORKERS:
            self.start_worker(name)
        subprocess.run([sys.executable, "-m", "deploy", "promote"], env=self.env, check=True,
                       capture_output=True)  # the workers' build current, as make dev does
        for name, port in APIS.items():
            wait_port(port, self.start_api(name), 30, name)
        wait_port(PORTS["gateway"], self.parts["gateway"], 30, "gateway")
        wait_port(PORTS["secondary"], self.parts["secondary"], 30, "secondary gateway")
        return keys

    def down(self) -> None:
        for part in reversed(list(self.parts.values())):
            part.stop()
        self.pg.stop()


async def submit(apis: list[httpx.AsyncClient], path: str, body: dict[str, Any], stop_at: float,
                 refused: tuple[int, ...] = ()) -> dict[str, Any] | None:
    """Send with the same Idempotency-Key until an API process answers, as a careful client
    does: on a connection error or a 5xx it tries again, on the other process. A status in
    `refused` is an answer too (returned with its code)."""
    key = secrets.token_hex(8)
    turn = random.randrange(len(apis))
    while time.monotonic() < stop_at:
        turn += 1
        try:
            r = await apis[turn % len(apis)].post(path, json=body, headers={"Idempotency-Key": key})
            if r.status_code in (200, 201, 202):
                return dict(r.json())
            if r.status_code in refused:
                return {"refused": r.status_code}
            if r.status_code < 500:
                raise RuntimeError(f"rejected: {r.status_code} {r.text}")
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.3)
    return None


async def authorize(apis: list[httpx.AsyncClient], body: dict[str, Any], window: timedelta,
                    stop_at: float) -> dict[str, Any] | None:
    """A manual-capture payment whose window closes `window` from now. A window that went stale
    while the API was out of reach (under 5 s left by the time one answered: 400) is asked for
    again, anew, as a client would."""
    while time.monotonic() < stop_at:
        made = await submit(apis, "/v1/payments", body | {
            "capture_method": "manual",
            "capture_before": (datetime.now(UTC) + window).isoformat()}, stop_at, refused=(400,))
        if made is None or "refused" not in made:
            return made
    return None


async def faults(stack: Stack, gateway: httpx.AsyncClient, quick: bool, log: list[str],
                 during_outage: Callable[[], Awaitable[None]]) -> None:
    rng = random.Random(7)
    step = 1.5 if quick else 3.0

    async def behave(name: str, **profile: Any) -> None:
        for _ in range(20):
            try:
                await gateway.put("/behavior", json={"fail_rate": 0.1, **LATER, **profile})
                log.append(f"gateway: {name}")
                return
            except httpx.HTTPError:
                await asyncio.sleep(0.2)

    kills = 0

    async def kill_worker() -> None:
        nonlocal kills
        name = WORKERS[kills % len(WORKERS)]  # the other one carries on meanwhile
        kills += 1
        stack.parts[name].process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        await asyncio.sleep(rng.uniform(0.5, 2))
        stack.start_worker(name)
        log.append(f"{name}: SIGKILL and restart")

    async def kill_api() -> None:
        stack.parts["api-1"].process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        await asyncio.sleep(rng.uniform(0.5, 2))
        stack.start_api("api-1")
        log.append("api-1: SIGKILL and restart")

    await asyncio.sleep(step)
    await kill_worker()
    # a new build of the workers, made current while payments (and parked authorizations) run:
    # auto-upgrading sagas move to it, pinned ones finish on the build they started on
    for name in NEW_WORKERS:
        stack.part(name, [sys.executable, "-m", "worker"], WORKER_IDENTITY=name,
                   WORKER_BUILD_ID=NEW_BUILD)
    promoted = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "deploy", "promote", "--wait", "60"],
        env={**stack.env, "WORKER_BUILD_ID": NEW_BUILD}, capture_output=True, text=True,
        check=False)
    log.append(f"deploy: build {NEW_BUILD} promoted mid-run (exit {promoted.returncode})")
    if promoted.returncode != 0:
        log.append(f"  {promoted.stdout[-500:]} {promoted.stderr[-500:]}")
    await behave("5xx storm", fail_rate=0.8)
    await asyncio.sleep(step)
    await behave("timeouts", timeout_rate=0.3, timeout_hang_seconds=5)
    await kill_api()
    await asyncio.sleep(step)
    await kill_worker()
    await behave("429s", rate_limit_rate=0.5)
    await asyncio.sleep(step)
    await behave("full outage", down=True)
    await asyncio.sleep(step * 1.5)
    await behave("default profile")
    # the primary processor crashes and stays down a while: payments fail over to the secondary;
    # its records (the outside truth reconciliation reads) survive on disk
    stack.parts["gateway"].process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    await during_outage()
    stack.start_gateway()
    await asyncio.to_thread(wait_port, PORTS["gateway"], stack.parts["gateway"], 30, "gateway")
    await behave("default profile, after a restart")
    log.append("gateway: SIGKILL, an outage with failover, and restart")
    stack.parts["temporal"].stop()
    await asyncio.to_thread(stack.start_temporal)
    log.append("temporal: restart")
    # the broker dies: events wait in the outbox, then go out in order when it is back
    stack.parts["nats"].process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    await asyncio.sleep(step)
    await asyncio.to_thread(stack.start_nats)
    log.append("nats: SIGKILL and restart")
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
        key, operator_key = await asyncio.to_thread(stack.up)
        injected: list[str] = []
        began = datetime.now(UTC) - timedelta(seconds=1)
        failed_over = 0
        reconciled: dict[str, Any] = {}
        decided: dict[str, Any] = {"statuses": {}, "problems": ""}
        try:
            apis = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                      headers={"Authorization": f"Bearer {key}"})
                    for port in APIS.values()]
            api = apis[1]  # set-up and reads; api-1 is the one that gets killed
            gateway = httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORTS['gateway']}", timeout=5)
            gateways = {"primary": gateway, "secondary": httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{PORTS['secondary']}", timeout=5)}
            await gateway.put("/behavior", json={"fail_rate": 0.0, **LATER})
            wallets = []
            for i in range(3):
                w = (await api.post("/v1/wallets", json={"user_id": f"hot-{i}", "currency": "USD"})).json()
                await api.post(f"/v1/wallets/{w['id']}/deposits", json={"amount": "2000.00"},
                               headers={"Idempotency-Key": f"fund-{i}"})
                wallets.append(w)
            deadline = time.monotonic() + (120 if quick else 300)
            gate = asyncio.Semaphore(15)

            refunds: list[dict[str, Any] | None] = []
            refunding: list[asyncio.Task[None]] = []

            async def one(i: int) -> str | None:
                """A payment; every fifth a top-up, every fifth a withdrawal (money in and out
                under the same faults). Its path to read it back, or None if never accepted."""
                async with gate:
                    wallet = wallets[i % 3]
                    amount = f"{random.Random(i).randint(100, 2500) / 100:.2f}"
                    if i % 5 == 1:
                        source = ({"type": "bank_account", "token": "ba_chaos"} if i % 10 == 1
                                  else {"type": "card", "token": "tok_chaos"})  # some settle later
                        made = await submit(apis, f"/v1/wallets/{wallet['id']}/top-ups", {
                            "amount": amount, "source": source}, deadline)
                        if made is None:
                            return None
                        if i % 10 == 6:  # a card top-up: the cardholder disputes it later
                            disputing.append(asyncio.create_task(dispute_later(
                                str(made["id"]), i)))
                        return f"/v1/top-ups/{made['id']}"
                    if i % 5 == 2:
                        made = await submit(apis, f"/v1/wallets/{wallet['id']}/withdrawals", {
                            "amount": amount, "destination": {"type": "bank_account",
                                                              "token": "ba_chaos"}},
                            deadline, refused=(409, 422))  # restricted by a dispute, or short
                        if made is not None and "refused" in made:
                            return "refused"
                        return None if made is None else f"/v1/withdrawals/{made['id']}"
                    body = {"user_id": wallet["user_id"], "service_id": "chaos",
                            "amount": amount, "currency": "USD"}
                    if i % 5 == 3:  # authorize now, capture later: captured, in part, voided, lapsed
                        made = await authorize(apis, body, timedelta(seconds=8 + i % 13), deadline)
                    else:
                        made = await submit(apis, "/v1/payments", body, deadline)
                    if made is None:
                        return None
                    if i % 5 == 3:
                        settling.append(asyncio.create_task(settle_manual(str(made["id"]), i)))
                    if i % 3 == 0:  # refund a third of them, while the faults go on
                        refunding.append(asyncio.create_task(refund_later(str(made["id"]))))
                    return f"/v1/payments/{made['id']}"

            settling: list[asyncio.Task[None]] = []
            manual: dict[str, int] = {}
            disputing: list[asyncio.Task[None]] = []
            disputes: dict[str, int] = {}

            async def dispute_later(tid: str, i: int) -> None:
                """Once the top-up succeeded, its cardholder disputes it at the processor (in
                full or in part) while the faults go on; then the merchant answers with evidence
                and the network decides, or the merchant accepts, or the network decides at once
                (its `dispute.closed` may overtake `dispute.created`). The inbox's webhooks are
                lost, duplicated and delayed as every event (reconciliation replays lost ones)."""
                top = await settled_top_up(api, tid, deadline)
                if top is None or top["status"] != "succeeded":
                    return
                processor = gateways[str(top["connector"] or "primary")]
                amount = {} if i % 20 == 6 else {"amount": "1.00"}
                opened = await at_processor(processor, f"/charges/{top['gateway_reference']}"
                                            "/dispute", {"reason": "fraudulent", **amount},
                                            deadline)
                if opened is None:
                    return
                choice = ("evidence, won", "evidence, lost", "accept", "decided at once")[
                    (i // 10) % 4]
                disputes[choice] = disputes.get(choice, 0) + 1
                close = f"/disputes/{opened['id']}/close"
                if choice == "decided at once":
                    await at_processor(processor, close, {"status": "won"}, deadline)
                    return
                mine = await recorded_dispute(api, top["gateway_reference"], deadline)
                if mine is None:  # its dispute.created was lost: the network decides anyway
                    await at_processor(processor, close, {"status": "lost"}, deadline)
                    return
                if choice == "accept":
                    await submit(apis, f"/v1/disputes/{mine}/accept", {}, deadline,
                                 refused=(409,))
                    return
                await submit(apis, f"/v1/disputes/{mine}/evidence",
                             {"text": f"delivery receipt {i}"}, deadline, refused=(409,))
                await asyncio.sleep(random.Random(i).uniform(0, 3))
                await at_processor(processor, close, {"status": choice.split()[-1]}, deadline)

            async def settle_manual(pid: str, i: int) -> None:
                """Once authorized: capture it all, capture less, void it, or let it lapse (a
                capture sent near the deadline races the expiry), under the same faults."""
                status = None
                while time.monotonic() < deadline and status not in SETTLED | {"requires_capture"}:
                    await asyncio.sleep(0.5)
                    with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                        status = (await api.get(f"/v1/payments/{pid}")).json()["status"]
                if status != "requires_capture":
                    return
                choice = ("capture", "capture less", "void", "lapse")[i % 4]
                manual[choice] = manual.get(choice, 0) + 1
                if choice == "lapse":
                    return
                await asyncio.sleep(random.Random(i).uniform(0, 6))
                path = f"/v1/payments/{pid}/" + ("cancel" if choice == "void" else "capture")
                body = {"amount": "0.50"} if choice == "capture less" else {}
                await submit(apis, path, body, deadline, refused=(409,))

            async def refund_later(pid: str) -> None:
                status = None
                while time.monotonic() < deadline and status not in SETTLED:
                    await asyncio.sleep(0.5)
                    with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                        status = (await api.get(f"/v1/payments/{pid}")).json()["status"]
                if status == "completed":  # failed or canceled: nothing to refund
                    refunds.append(await submit(apis, f"/v1/payments/{pid}/refunds",
                                                {"amount": "1.00"}, deadline, refused=(409,)))

            print(f"submitting {count} payments, top-ups, withdrawals and refunds while "
                  "injecting faults ...", flush=True)
            extra: list[str | None] = []

            async def during_outage() -> None:
                """Payments made while the primary is down: each fails over to the secondary."""
                extra.extend(await asyncio.gather(*(one(count + i) for i in range(6))))
                await asyncio.sleep(3)

            forged = asyncio.create_task(forge(apis[1], 5))
            settled_all = asyncio.Event()
            customers = asyncio.create_task(authenticate(api, settled_all))
            chaos = asyncio.create_task(faults(stack, gateway, quick, injected, during_outage))
            ids = await asyncio.gather(*(one(i) for i in range(count)))
            await chaos
            refused_forgeries = await forged
            ids += extra
            lost = sum(1 for pid in ids if pid is None)
            await asyncio.gather(*refunding, *settling, *disputing)
            print("waiting for every payment to settle ...", flush=True)
            outcomes: dict[str, int] = {}
            while time.monotonic() < deadline + 120:
                try:
                    outcomes = {}
                    for path in ids:
                        if path is None or path == "refused":
                            continue
                        status = (await api.get(path)).json()["status"]
                        kind = path.split("/")[2].rstrip("s").replace("-", "_")
                        outcomes[f"{kind} {status}"] = outcomes.get(f"{kind} {status}", 0) + 1
                    if all(o.split()[-1] in SETTLED for o in outcomes) and \
                            await _refunds_done(api, refunds):
                        break
                except (httpx.HTTPError, KeyError):
                    pass
                await asyncio.sleep(1)
            settled_all.set()
            authenticated = await customers
            print("reconciling the whole run against the gateway's report ...", flush=True)
            async with httpx.AsyncClient(base_url=str(api.base_url), timeout=30, headers={
                    "Authorization": f"Bearer {operator_key}"}) as operator:
                reconciled = await reconcile(operator, began)
            records = await processor_records(gateways)  # every processor's
            decided = await disputes_agree(api, records)
            engine = make_engine(stack.env["DATABASE_URL"], pool_size=2)
            temporal = await Client.connect(stack.env["TEMPORAL_ADDRESS"])
            async with engine.connect() as conn:
                failed_over = await payments.charged_at(conn, "secondary")
            violations = await check(engine, records, temporal)
            stream = await stream_check(engine, f"nats://127.0.0.1:{PORTS['nats']}")
            await engine.dispose()
            for client in apis:
                await client.aclose()
            for processor in gateways.values():
                await processor.aclose()
        finally:
            await asyncio.to_thread(stack.down)
    unsettled = sum(n for s, n in outcomes.items() if s.split()[-1] not in SETTLED)
    print("\n| what | count |\n|---|---|")
    print(f"| payments, top-ups and withdrawals submitted | {count} + {len(ids) - count} during "
          "the primary's outage |")
    print(f"| withdrawals refused at once (insufficient funds) | {ids.count('refused')} |")
    print(f"| charged at the secondary (failed over) | {failed_over} |")
    print(f"| never accepted by the API | {lost} |")
    print(f"| manual-capture payments settled by the run: "
          f"{', '.join(f'{k} {n}' for k, n in sorted(manual.items())) or 'none'} |")
    print(f"| forged processor webhooks refused (401) | {refused_forgeries} of 5 |")
    print(f"| 3-D Secure payments, by what their customer did: "
          f"{', '.join(f'{k} {n}' for k, n in sorted(authenticated.items())) or 'none'} |")
    print(f"| refunds requested during the faults | {len(refunds)} |")
    print(f"| refunds accepted | {sum(1 for r in refunds if r and 'id' in r)} |")
    print(f"| top-ups disputed at the processor, by what followed: "
          f"{', '.join(f'{k} {n}' for k, n in sorted(disputes.items())) or 'none'} |")
    print(f"| disputes, paysaga's final status against the processor's | "
          f"{', '.join(f'{k} {n}' for k, n in sorted(decided['statuses'].items())) or 'none'}; "
          f"{decided['problems'] or 'every one recorded, each as the processor decided'} |")
    for status, n in sorted(outcomes.items()):
        print(f"| {status} | {n} |")
    print(f"| faults injected | {len(injected)}: {'; '.join(injected)} |")
    print(f"| invariant violations | {len(violations)} |")
    print(f"| events in the outbox / in the stream (each once, in order per payment) | "
          f"{stream['outbox']} / {stream['stream']}: "
          f"{stream['problems'] or 'no gap, no duplicate, in order'} |")
    for v in violations:
        print(f"  {v}")
    counts = reconciled.get("counts", {})
    print(f"| reconciliation | {reconciled.get('status')}: "
          f"{', '.join(f'{k} {n}' for k, n in sorted(counts.items()))} |")
    unexplained = [f for f in reconciled.get("findings", []) if f["status"] != "healed"]
    print(f"| unexplained reconciliation findings | {len(unexplained)} |")
    for f in unexplained:
        print(f"  {f['class']} {f['gateway_key']}: {f['evidence'].get('detail')}")
    healthy = (reconciled.get("status") == "completed" and not unexplained
               and not stream["problems"] and not decided["problems"])
    return 0 if not violations and not unsettled and not lost and healthy else 1


async def at_processor(processor: httpx.AsyncClient, path: str, body: dict[str, Any],
                       stop_at: float) -> dict[str, Any] | None:
    """A lever pulled at the processor, again until it answers (it may be down or restarting)."""
    while time.monotonic() < stop_at:
        with contextlib.suppress(httpx.HTTPError):
            answer = await processor.post(path, json=body)
            if answer.status_code < 300:
                return dict(answer.json())
            if answer.status_code < 500:
                raise RuntimeError(f"{path}: {answer.status_code} {answer.text}")
        await asyncio.sleep(0.5)
    return None


async def settled_top_up(api: httpx.AsyncClient, tid: str, stop_at: float) -> dict[str, Any] | None:
    while time.monotonic() < stop_at:
        with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
            top = dict((await api.get(f"/v1/top-ups/{tid}")).json())
            if top["status"] in SETTLED:
                return top
        await asyncio.sleep(0.5)
    return None


async def recorded_dispute(api: httpx.AsyncClient, charge_id: str, stop_at: float,
                           patience: float = 15) -> str | None:
    """paysaga's id of the dispute on this charge once its saga recorded it; None if its event
    did not come within `patience` seconds (lost: reconciliation replays it at the end)."""
    give_up = min(stop_at, time.monotonic() + patience)
    while time.monotonic() < give_up:
        with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
            listed = (await api.get("/v1/disputes", params={"limit": 200})).json()["items"]
            found = [d["id"] for d in listed if d["charge_id"] == charge_id]
            if found:
                return str(found[0])
        await asyncio.sleep(0.5)
    return None


async def processor_records(gateways: dict[str, httpx.AsyncClient]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for processor in gateways.values():
        records += (await processor.get("/charges")).json()
    return records


async def disputes_agree(api: httpx.AsyncClient, records: list[dict[str, Any]],
                         patience: float = 90) -> dict[str, Any]:
    """After the reconciliation replayed what the inbox lost: every dispute at the processors
    is recorded by paysaga and ends as they decided (polled until then). One per charge."""
    theirs = {(r["connector"], r["charge_id"]): r["status"] for r in records
              if r.get("object") == "dispute"}
    give_up = time.monotonic() + patience
    problems: list[str] = []
    statuses: dict[str, int] = {}
    while True:
        ours: dict[tuple[str, str], str] = {}
        cursor: str | None = None
        with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
            while True:
                page = (await api.get("/v1/disputes", params={
                    "limit": 200, **({"starting_after": cursor} if cursor else {})})).json()
                ours |= {(d["connector"], d["charge_id"]): d["status"] for d in page["items"]}
                cursor = page.get("next_cursor")
                if not cursor:
                    break
        problems = [f"{key[1]}: processor {status}, paysaga {ours.get(key, 'unrecorded')}"
                    for key, status in theirs.items() if ours.get(key) != status]
        statuses = {}
        for key in theirs:
            label = f"{theirs[key]} / {ours.get(key, 'unrecorded')}"
            statuses[label] = statuses.get(label, 0) + 1
        if not problems or time.monotonic() > give_up:
            return {"statuses": statuses, "problems": "; ".join(problems[:5])}
        await asyncio.sleep(1)


async def stream_check(engine: Any, url: str) -> dict[str, Any]:
    """The whole stream against the outbox once the relay has caught up: every event exactly once
    (no gap, no duplicate), and each payment's events in order."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the relay drains what the faults held back
        async with engine.connect() as conn:
            waiting = await outbox.pending(conn)
        if not waiting:
            break
        await asyncio.sleep(0.5)
    async with engine.connect() as conn:
        written = await outbox.event_ids(conn)
        owner = await outbox.event_owners(conn)
    nc = await nats.connect(url)
    seen: list[int] = []
    try:
        sub = await nc.jetstream().pull_subscribe("paysaga.events.>", config=js_api.ConsumerConfig(
            deliver_policy=js_api.DeliverPolicy.ALL, ack_policy=js_api.AckPolicy.NONE))
        while True:
            try:
                batch = await sub.fetch(1000, timeout=1)
            except (FetchTimeoutError, TimeoutError):
                break
            seen += [json.loads(m.data)["id"] for m in batch]
    finally:
        await nc.close()
    problems = []
    if sorted(seen) != written:
        missing, extra = set(written) - set(seen), len(seen) - len(set(seen))
        problems.append(f"{len(missing)} missing, {extra} duplicated")
    per_payment: dict[str, list[int]] = {}
    for event_id in seen:
        if event_id in owner:
            per_payment.setdefault(owner[event_id], []).append(event_id)
    unordered = [p for p, ids in per_payment.items() if ids != sorted(ids)]
    if unordered:
        problems.append(f"{len(unordered)} payments' events out of order")
    return {"outbox": len(written), "stream": len(seen), "problems": "; ".join(problems)}


async def authenticate(api: httpx.AsyncClient, stop: asyncio.Event) -> dict[str, int]:
    """The customers of 3-D Secure payments, at the processor's page: most authenticate, some
    fail, some walk away (the payment fails `authentication_timeout` after ACTION_TIMEOUT)."""
    rng, seen = random.Random(11), set()
    done: dict[str, int] = {}
    while not stop.is_set():
        with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
            waiting = (await api.get("/v1/payments", params={"status": "requires_action",
                                                             "limit": 50})).json()["items"]
            for p in waiting:
                if p["id"] in seen or not p.get("next_action"):
                    continue
                seen.add(p["id"])
                choice = rng.choices(["success", "fail", "walk away"], [0.7, 0.15, 0.15])[0]
                done[choice] = done.get(choice, 0) + 1
                if choice != "walk away":
                    async with httpx.AsyncClient(timeout=5) as browser:
                        await browser.get(p["next_action"]["url"], params={"result": choice})
        await asyncio.sleep(0.5)
    return done


async def forge(api: httpx.AsyncClient, n: int) -> int:
    """Events claiming to be the primary processor's, signed with the wrong secret: each must be
    refused (401) and change nothing; how many were."""
    refused = 0
    for i in range(n):
        event_id = f"evt_forged_{i}"
        event: dict[str, Any] = {"id": event_id, "type": "charge.succeeded",
                 "data": {"object": {"id": "ch_forged", "payment_id": "pay_forged",
                                     "status": "succeeded"}}}
        body, now = json.dumps(event), datetime.now(UTC)
        wrong = Webhook("whsec_" + base64.b64encode(os.urandom(24)).decode())
        with contextlib.suppress(httpx.HTTPError):
            answer = await api.post("/v1/processor-webhooks/primary", content=body, headers={
                "webhook-id": event_id, "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": wrong.sign(event_id, now, body),
                "content-type": "application/json"})
            refused += answer.status_code == 401
        await asyncio.sleep(0.5)
    return refused


async def reconcile(api: httpx.AsyncClient, began: datetime) -> dict[str, Any]:
    """A reconciliation over the whole run; its findings (healed ones are explained by their heal)."""
    end = datetime.now(UTC) + timedelta(seconds=1)
    made = await api.post("/v1/reconciliations", headers={"Idempotency-Key": "chaos-end"}, json={
        "from": began.isoformat(), "to": end.isoformat()})
    made.raise_for_status()
    rid = made.json()["id"]
    deadline = time.monotonic() + 120
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = (await api.get(f"/v1/reconciliations/{rid}", params={"limit": 200})).json()
        if run.get("status") == "completed":
            break
        await asyncio.sleep(0.5)
    findings = list(run.get("findings", {}).get("items", []))
    return {**run, "findings": findings}


async def _refunds_done(api: httpx.AsyncClient, refunds: list[dict[str, Any] | None]) -> bool:
    for refund in refunds:
        if refund is None or "id" not in refund:
            continue
        listed = (await api.get(f"/v1/payments/{refund['payment_id']}/refunds")).json()["items"]
        if any(r["id"] == refund["id"] and r["status"] == "pending" for r in listed):
            return False
    return True


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--payments", type=int, default=300)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.payments, args.quick)))
