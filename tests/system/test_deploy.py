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
import secrets
import subprocess
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
from deploy.rollout import Refused, promote
from devstack.temporal import temporal_binary
from settings import Settings
from settings.routing import Connector
from tests.conftest import eventually
from tests.system.conftest import System
from tests.system.deploy_builds import RECEIPT, PaymentB, PaymentC, Retired, TopUpB
from worker.main import WORKFLOWS, build_worker, gateway_connections

DEPLOYMENT = "paysaga-deploy-test"
QUEUE = "paysaga-deploy-test"
A = WorkerDeploymentVersion(DEPLOYMENT, "build-a")
B = WorkerDeploymentVersion(DEPLOYMENT, "build-b")
BUILD_A = [*WORKFLOWS, Retired]
BUILD_B = [PaymentB if w.__name__ == "PaymentWorkflow" else TopUpB if w.__name__ == "TopUpWorkflow"
           else w for w in WORKFLOWS]
BUILD_C = [PaymentC if w.__name__ == "PaymentWorkflow" else w for w in WORKFLOWS]


def replace(workflows: list[type], name: str) -> bool:
    return any(w.__name__ == name for w in workflows)


@dataclass
class Builds:
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


@pytest.fixture
async def builds(sys_: System) -> AsyncIterator[Builds]:
    # a slow processor: each attempt times out after 2 s and is retried (the same idempotency
    # key), for up to a minute: a charge stays in flight (5 s answers) until the gateway calms
    slow = {"timeout_seconds": 2.0, "retry_initial_seconds": 0.05,
            "retry_max_interval_seconds": 0.2, "retry_max_attempts": 30, "breaker_failures": 10_000}
    settings = sys_.settings.model_copy(update={
        "temporal_task_queue": QUEUE, "worker_deployment_name": DEPLOYMENT,
        "gateway_timeout_seconds": 2.0,
        "connectors": [Connector(name=c.name, base_url=c.base_url, **slow)
                       for c in sys_.settings.connector_list]})
    app = create_app(settings, temporal=sys_.temporal.client)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        api = await stack.enter_async_context(httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api",
            headers={"Authorization": f"Bearer {sys_.key}"}))
        made = Builds(settings, sys_.temporal.client, api, {}, stack, sys_)
        try:
            yield made
        finally:
            await sys_.behave()
            for build in list(made.workers):
                await made.stop(WorkerDeploymentVersion(DEPLOYMENT, build))


def count(sys_: System, query: str) -> int:
    """`temporal workflow count`, the real CLI, as the runbook's drain check runs it."""
    out = subprocess.run(
        [temporal_binary(), "workflow", "count", "--address",
         sys_.temporal.client.service_client.config.target_host, "--query", query],
        capture_output=True, text=True, check=True, timeout=30).stdout
    return int(out.split("Total:")[1].split()[0]) if "Total:" in out else int(out.split()[-1])


async def no_task_failed(client: Client, workflow_id: str) -> bool:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return not any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED for e in history.events)


async def test_build_b_replaces_build_a_without_breaking_a_run(builds: Builds) -> None:
    sys_, client = builds.system, builds.client
    assert replace(WORKFLOWS, "PaymentWorkflow")
    assert replace(WORKFLOWS, "TopUpWorkflow")

    # build A serves
    await builds.start(A, BUILD_A)
    await promote(client, A, BUILD_A, task_queue=QUEUE)
    retired = await client.start_workflow(Retired.run, id=f"retired-{secrets.token_hex(4)}",
                                          task_queue=QUEUE)
    await sys_.behave(decline_rate=1.0)
    parked = await builds.pay("12.00")
    await builds.settled(f"/v1/payments/{parked['id']}", "failed")  # waits for a manual retry
    await sys_.behave(latency_ms=5_000)  # what starts now is mid-charge when B arrives
    slow_payment = await builds.pay("13.00")
    slow_top_up = await builds.top_up("14.00")
    await builds.settled(f"/v1/payments/{slow_payment['id']}", "processing")
    await builds.settled(f"/v1/top-ups/{slow_top_up['id']}", "processing")

    # build B starts beside it; the gate refuses while a run of a saga B dropped is open
    await builds.start(B, BUILD_B)
    with pytest.raises(Refused) as refused:
        await promote(client, B, BUILD_B, task_queue=QUEUE)
    assert refused.value.report.unknown_open == {"Retired": 1}
    unchanged = await versions.deployment(client, DEPLOYMENT)
    assert unchanged is not None
    assert unchanged.current == A.build_id
    await retired.signal(Retired.finish)
    assert await retired.result() == "done"

    # a build whose payment change is not patched is refused: payments would fail on it
    report = await replay_gate(client, DEPLOYMENT, B, BUILD_C, task_queue=QUEUE)
    assert report.refused
    assert {f.workflow_type for f in report.failures if not f.pinned} == {"Payment"}

    # B: ramped, then current
    ramped = await promote(client, B, BUILD_B, task_queue=QUEUE, percentage=25)
    assert not ramped.refused
    assert ramped.replayed["Payment"] == 2  # the parked and the slow payment
    state = await versions.deployment(client, DEPLOYMENT)
    assert state is not None
    assert (state.current, state.ramping, state.ramp_percentage) == (A.build_id, B.build_id, 25)
    await promote(client, B, BUILD_B, task_queue=QUEUE)
    state = await versions.deployment(client, DEPLOYMENT)
    assert state is not None
    assert (state.current, state.ramping, state.previous) == (B.build_id, None, A.build_id)

    # new payments run on B; the slow ones finish: the payment (auto-upgrade) on B, the top-up
    # (pinned) on A
    await sys_.behave()
    fresh = await builds.pay("15.00")
    await builds.settled(f"/v1/payments/{fresh['id']}", "completed")
    await builds.settled(f"/v1/payments/{slow_payment['id']}", "completed")
    await builds.settled(f"/v1/top-ups/{slow_top_up['id']}", "succeeded")
    fresh_top_up = await builds.top_up("16.00")
    await builds.settled(f"/v1/top-ups/{fresh_top_up['id']}", "succeeded")
    assert await builds.ran_on(fresh["id"]) == ("COMPLETED", B.build_id, "B")
    assert await builds.ran_on(slow_payment["id"]) == ("COMPLETED", B.build_id, "B")
    assert await builds.ran_on(slow_top_up["id"]) == ("COMPLETED", A.build_id, None)
    assert await builds.ran_on(fresh_top_up["id"]) == ("COMPLETED", B.build_id, "B")

    # the parked payment is retried by an operator and finishes on B
    retried = await builds.api.post(f"/v1/payments/{parked['id']}/retry")
    assert retried.status_code == 202, retried.text
    await builds.settled(f"/v1/payments/{parked['id']}", "completed")
    assert await builds.ran_on(parked["id"]) == ("COMPLETED", B.build_id, "B")
    for run in (parked, slow_payment, slow_top_up, fresh):
        assert await no_task_failed(client, run["id"]), run["id"]

    # A is drained: nothing is pinned to it, as the runbook's check says; it stops
    assert await versions.open_pinned(client, A) == 0
    assert count(sys_, versions.pinned_query(A)) == 0
    assert count(sys_, versions.pinned_query(B)) == 0  # the check counts what it says it does
    await builds.stop(A)
    after = await builds.pay("17.00")
    await builds.settled(f"/v1/payments/{after['id']}", "completed")

    violations = await check(sys_.engine, await sys_.records(), client)
    assert violations == []


async def test_the_drain_check_counts_a_run_still_pinned_to_a_build(builds: Builds) -> None:
    sys_, client = builds.system, builds.client
    c = WorkerDeploymentVersion(DEPLOYMENT, f"build-{secrets.token_hex(3)}")
    await builds.start(c, BUILD_B)
    await promote(client, c, BUILD_B, task_queue=QUEUE)
    await sys_.behave(latency_ms=5_000)
    top_up = await builds.top_up("9.00")
    await builds.settled(f"/v1/top-ups/{top_up['id']}", "processing")
    assert await versions.open_pinned(client, c) == 1
    assert count(sys_, versions.pinned_query(c)) == 1
    await sys_.behave()
    await builds.settled(f"/v1/top-ups/{top_up['id']}", "succeeded")
    await eventually(lambda: versions.open_pinned(client, c), lambda n: n == 0, timeout=10)
