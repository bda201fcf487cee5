"""A deploy, shown (issue 22): build A serves payments, build B starts beside it, the replay gate
checks it, it is ramped and made current; new payments run on B, pinned top-ups finish on A,
auto-upgrading payments (one parked for a manual retry, one mid-charge against a slow gateway)
continue on B without a non-determinism error; A is drained (`temporal workflow count` says no run
needs it) and stopped, and the money invariants hold.

The test runs its own Worker Deployment and task queue on the session's dev server, with an API
of its own that starts the sagas there, so the rest of the suite is not moved between builds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.worker import Worker

from api.app import create_app
from db.invariants import check
from deploy import versions
from deploy.gate import replay_gate
from deploy.rollout import Refused, promote, roll_back
from devstack.temporal import temporal_binary
from settings import Settings
from settings.connectors import Connector
from tests.conftest import eventually
from tests.system.conftest import System
from tests.system.deploy_builds import RECEIPT, PaymentB, PaymentC, Retired, TopUpB
from worker.main import WORKFLOWS, build_worker, gateway_connections

BUILD_A = [*WORKFLOWS, Retired]
BUILD_B = [PaymentB if w.__name__ == "PaymentWorkflow" else TopUpB if w.__name__ == "TopUpWorkflow"
           else w for w in WORKFLOWS]
BUILD_C = [PaymentC if w.__name__ == "PaymentWorkflow" else w for w in WORKFLOWS]


def replace(workflows: list[type], name: str) -> bool:
    return any(w.__name__ == name for w in workflows)


@dataclass
class Builds:
    deployment: str  # a Worker Deployment and task queue of the test's own
    settings: Settings
    client: Client
    api: httpx.AsyncClient
    workers: dict[str, tuple[Worker, asyncio.Task[None]]]
    stack: contextlib.AsyncExitStack
    system: System

    async def start(self, version: WorkerDeploymentVersion, workflows: list[type]) -> None:
        gateways = await self.stack.enter_async_context(gateway_connections(self.settings))
        worker: Worker = build_worker(self.client, self.system.engine, gateways, self.settings,
                                      workflows=workflows, version=version)
        self.workers[version.build_id] = (worker, asyncio.create_task(worker.run()))

    @property
    def queue(self) -> str:
        return self.settings.temporal_task_queue

    def version(self, build: str) -> WorkerDeploymentVersion:
        return WorkerDeploymentVersion(self.deployment, build)

    async def stop(self, version: WorkerDeploymentVersion) -> None:
        worker, running = self.workers.pop(version.build_id)
        await worker.shutdown()
        await running

    async def pay(self, amount: str) -> dict[str, Any]:
        user = f"user-{secrets.token_hex(4)}"
        await self.system.wallet(user, funds="100.00")
        answer = await self.api.post("/v1/payments", headers={"Idempotency-Key": secrets.token_hex(8)},
                                     json={"user_id": user, "service_id": "service-456",
                                           "amount": amount, "currency": "USD"})
        assert answer.status_code in (201, 202), answer.text
        return dict(answer.json())

    async def top_up(self, amount: str) -> dict[str, Any]:
        wallet = await self.system.wallet()
        answer = await self.api.post(f"/v1/wallets/{wallet['id']}/top-ups",
                                     headers={"Idempotency-Key": secrets.token_hex(8)},
                                     json={"amount": amount,
                                           "source": {"type": "card", "token": "tok_visa"}})
        assert answer.status_code in (201, 202), answer.text
        return dict(answer.json())

    async def settled(self, path: str, *statuses: str) -> dict[str, Any]:
        async def probe() -> dict[str, Any]:
            return dict((await self.api.get(path)).json())
        return await eventually(probe, lambda p: p.get("status") in statuses, timeout=30)

    async def ran_on(self, workflow_id: str) -> tuple[str, str, str | None]:
        """(status, the build its last task ran on, the memo build B's new step records)."""
        desc = await self.client.get_workflow_handle(workflow_id).describe()
        info = desc.raw_description.workflow_execution_info.versioning_info
        memo = await desc.memo_value(RECEIPT, None)
        status = desc.status.name if desc.status else "?"
        return status, info.deployment_version.build_id, memo

    async def closed_on(self, workflow_id: str) -> tuple[str, str, str | None]:
        """`ran_on` once the run has closed: its money settles (the projection a test waits
        for) a moment before the workflow task that closes it."""
        return await eventually(lambda: self.ran_on(workflow_id), lambda r: r[0] != "RUNNING")


@pytest.fixture
async def builds(sys_: System) -> AsyncIterator[Builds]:
    # a slow processor: each attempt times out after 2 s and is retried (the same idempotency
    # key), for up to a minute: a charge stays in flight (5 s answers) until the gateway calms
    slow: dict[str, Any] = {"timeout_seconds": 2.0, "retry_initial_seconds": 0.05,
                            "retry_max_interval_seconds": 0.2, "retry_max_attempts": 30,
                            "breaker_failures": 10_000}
    deployment = f"paysaga-deploy-{secrets.token_hex(3)}"
    settings = sys_.settings.model_copy(update={
        "temporal_task_queue": deployment, "worker_deployment_name": deployment,
        "gateway_timeout_seconds": 2.0,
        "connectors": [Connector(name=c.name, base_url=c.base_url, **slow)
                       for c in sys_.settings.connector_list]})
    app = create_app(settings, temporal=sys_.temporal.client)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        api = await stack.enter_async_context(httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api",
            headers={"Authorization": f"Bearer {sys_.key}"}))
        made = Builds(deployment, settings, sys_.temporal.client, api, {}, stack, sys_)
        try:
            yield made
        finally:
            await sys_.behave()
            for build in list(made.workers):
                await made.stop(made.version(build))


def count(sys_: System, query: str) -> int:
    """`temporal workflow count`, the real CLI, as the runbook's drain check runs it."""
    out = subprocess.run(
        [temporal_binary(), "workflow", "count", "--address",
         sys_.temporal.client.service_client.config.target_host, "--query", query],
        capture_output=True, text=True, check=True, timeout=30).stdout
    return int(out.split("Total:")[1].split()[0]) if "Total:" in out else int(out.split()[-1])


async def deploy_cli(builds: Builds, *args: str) -> tuple[int, str]:
    """`python -m deploy ...` against the test's deployment, as an operator runs it."""
    s = builds.settings
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deploy", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env=dict(
            os.environ, TEMPORAL_ADDRESS=s.temporal_address, TEMPORAL_TASK_QUEUE=s.temporal_task_queue,
            WORKER_DEPLOYMENT_NAME=s.worker_deployment_name, PAYLOAD_KEYS=s.payload_keys))
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def no_task_failed(client: Client, workflow_id: str) -> bool:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return not any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED for e in history.events)


async def test_build_b_replaces_build_a_without_breaking_a_run(builds: Builds) -> None:
    sys_, client = builds.system, builds.client
    a, b, deployment, queue = (builds.version("build-a"), builds.version("build-b"),
                               builds.deployment, builds.queue)
    assert replace(WORKFLOWS, "PaymentWorkflow")
    assert replace(WORKFLOWS, "TopUpWorkflow")

    # build A serves
    await builds.start(a, BUILD_A)
    await promote(client, a, BUILD_A, task_queue=queue)
    retired = await client.start_workflow(Retired.run, id=f"retired-{secrets.token_hex(4)}",
                                          task_queue=queue)
    await sys_.behave(decline_rate=1.0)
    parked = await builds.pay("12.00")
    await builds.settled(f"/v1/payments/{parked['id']}", "failed")  # waits for a manual retry
    await sys_.behave(latency_ms=5_000)  # what starts now is mid-charge when B arrives
    slow_payment = await builds.pay("13.00")
    slow_top_up = await builds.top_up("14.00")
    await builds.settled(f"/v1/payments/{slow_payment['id']}", "processing")
    await builds.settled(f"/v1/top-ups/{slow_top_up['id']}", "processing")

    # build B starts beside it; the gate refuses while a run of a saga B dropped is open
    await builds.start(b, BUILD_B)
    with pytest.raises(Refused) as refused:
        await promote(client, b, BUILD_B, task_queue=queue)
    assert refused.value.report.unknown_open == {"Retired": 1}
    unchanged = await versions.deployment(client, deployment)
    assert unchanged is not None
    assert unchanged.current == a.build_id
    await retired.signal(Retired.finish)
    assert await retired.result() == "done"

    # a build whose payment change is not patched is refused: payments would fail on it
    report = await replay_gate(client, deployment, b, BUILD_C, task_queue=queue)
    assert report.refused
    assert {f.workflow_type for f in report.failures if not f.pinned} == {"Payment"}

    # B: ramped, then current
    ramped = await promote(client, b, BUILD_B, task_queue=queue, percentage=25)
    assert not ramped.refused
    assert ramped.replayed["Payment"] == 2  # the parked and the slow payment
    state = await versions.deployment(client, deployment)
    assert state is not None
    assert (state.current, state.ramping, state.ramp_percentage) == (a.build_id, b.build_id, 25)
    await promote(client, b, BUILD_B, task_queue=queue)
    state = await versions.deployment(client, deployment)
    assert state is not None
    assert (state.current, state.ramping, state.previous) == (b.build_id, None, a.build_id)

    # new payments run on B; the slow ones finish: the payment (auto-upgrade) on B, the top-up
    # (pinned) on A
    await sys_.behave()
    fresh = await builds.pay("15.00")
    await builds.settled(f"/v1/payments/{fresh['id']}", "completed")
    await builds.settled(f"/v1/payments/{slow_payment['id']}", "completed")
    await builds.settled(f"/v1/top-ups/{slow_top_up['id']}", "succeeded")
    fresh_top_up = await builds.top_up("16.00")
    await builds.settled(f"/v1/top-ups/{fresh_top_up['id']}", "succeeded")
    assert await builds.closed_on(fresh["id"]) == ("COMPLETED", b.build_id, "B")
    assert await builds.closed_on(slow_payment["id"]) == ("COMPLETED", b.build_id, "B")
    assert await builds.closed_on(slow_top_up["id"]) == ("COMPLETED", a.build_id, None)
    assert await builds.closed_on(fresh_top_up["id"]) == ("COMPLETED", b.build_id, "B")

    # the parked payment is retried by an operator and finishes on B
    retried = await builds.api.post(f"/v1/payments/{parked['id']}/retry")
    assert retried.status_code == 202, retried.text
    await builds.settled(f"/v1/payments/{parked['id']}", "completed")
    assert await builds.closed_on(parked["id"]) == ("COMPLETED", b.build_id, "B")
    for run in (parked, slow_payment, slow_top_up, fresh):
        assert await no_task_failed(client, run["id"]), run["id"]

    # A's code cannot replay what B did: a plain rollback would break such runs (see below)
    back = await replay_gate(client, deployment, a, BUILD_A, task_queue=queue)
    assert {f.workflow_id for f in back.failures if not f.pinned} >= {fresh["id"]}

    # A is drained: nothing is pinned to it, as the runbook's check says; it stops
    assert await versions.open_pinned(client, a) == 0
    assert count(sys_, versions.pinned_query(a)) == 0
    assert count(sys_, versions.pinned_query(b)) == 0  # the check counts what it says it does
    await builds.stop(a)
    after = await builds.pay("17.00")
    await builds.settled(f"/v1/payments/{after['id']}", "completed")

    violations = await check(sys_.engine, await sys_.records(), client)
    assert violations == []


async def test_a_rollback_keeps_the_runs_that_took_the_new_builds_steps_there(
        builds: Builds) -> None:
    """X serves, Y is made current, then X again: a payment that began on X and was last retried
    on Y goes back with it; one that started on Y (its history has Y's first step) stays pinned
    to Y, and the drain check counts it until it ends."""
    sys_, client, queue = builds.system, builds.client, builds.queue
    x, y = builds.version("build-x"), builds.version("build-y")
    await builds.start(x, BUILD_A)
    await promote(client, x, BUILD_A, task_queue=queue)
    await sys_.behave(decline_rate=1.0)
    on_x = await builds.pay("5.00")
    await builds.settled(f"/v1/payments/{on_x['id']}", "failed")
    await builds.start(y, BUILD_B)
    await promote(client, y, BUILD_B, task_queue=queue)
    on_y = await builds.pay("6.00")
    await builds.settled(f"/v1/payments/{on_y['id']}", "failed")
    again = await builds.api.post(f"/v1/payments/{on_x['id']}/retry")  # declined again, on Y
    assert again.status_code == 202, again.text
    await eventually(lambda: builds.ran_on(on_x["id"]), lambda r: r[1] == y.build_id)
    await builds.settled(f"/v1/payments/{on_x['id']}", "failed")

    back = await roll_back(client, x, BUILD_A)  # run from X's code, as the runbook says
    assert (back.left, back.pinned, back.moved) == (y.build_id, [on_y["id"]], 1)
    state = await versions.deployment(client, builds.deployment)
    assert state is not None
    assert state.current == x.build_id
    assert await versions.open_pinned(client, y) == 1  # Y must keep running for it
    assert count(sys_, versions.pinned_query(y)) == 1
    code, said = await deploy_cli(builds, "drained", "--build-id", y.build_id)
    assert (code, said.splitlines()[0]) == (1, f"1 open runs pinned to {y.build_id}")
    # X's gate now passes: the run it could not replay no longer moves
    assert not (await replay_gate(client, builds.deployment, x, BUILD_A, task_queue=queue)).refused
    code, said = await deploy_cli(builds, "status")
    assert code == 0, said
    assert f"current {x.build_id}," in said
    line = next(t for t in said.splitlines() if t.strip().startswith(y.build_id))
    assert line.split()[1] == "draining"
    assert line.endswith("1 open pinned runs")

    await sys_.behave()
    for payment in (on_x, on_y):
        retried = await builds.api.post(f"/v1/payments/{payment['id']}/retry")
        assert retried.status_code == 202, retried.text
        await builds.settled(f"/v1/payments/{payment['id']}", "completed")
    assert await builds.closed_on(on_x["id"]) == ("COMPLETED", x.build_id, None)
    assert await builds.closed_on(on_y["id"]) == ("COMPLETED", y.build_id, "B")
    for payment in (on_x, on_y):
        assert await no_task_failed(client, payment["id"]), payment["id"]
    await eventually(lambda: versions.open_pinned(client, y), lambda n: n == 0, timeout=10)
    code, said = await deploy_cli(builds, "drained", "--build-id", y.build_id)
    assert code == 0, said
