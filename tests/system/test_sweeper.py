"""The hold sweeper settles holds orphaned by a terminated workflow, asking the gateway first."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text
from temporalio.testing import ActivityEnvironment

from activities.sweeper import SweeperActivities
from gateway.breaker import CircuitBreaker
from gateway.client import single
from tests.conftest import eventually
from tests.system.conftest import System
from worker.schedules import SWEEPER_ID, ensure_sweeper


async def orphan(sys_: System, amount: str, *, charged: bool) -> tuple[dict[str, object], str]:
    """A payment stuck charging an unreachable gateway, whose workflow an operator terminated."""
    await sys_.behave(timeout_rate=1.0, timeout_hang_seconds=3) if charged else await sys_.behave(
        down=True)
    wallet = await sys_.wallet(funds="100.00")
    pid = (await sys_.pay(wallet["user_id"], amount)).json()["id"]
    if charged:  # the gateway charged but its answer was lost; then it goes down
        await eventually(lambda: sys_.charges(pid), lambda c: len(c) == 1)
        await sys_.behave(down=True)
    await sys_.settled(pid, "processing")
    await sys_.temporal.client.get_workflow_handle(pid).terminate("operator")
    async with sys_.engine.begin() as conn:
        await conn.execute(text("UPDATE holds SET expires_at = now() - interval '1 hour' "
                                "WHERE payment_id = :p"), {"p": pid})
    await sys_.behave()
    return wallet, pid


async def sweep(sys_: System) -> int:
    async with single(sys_.settings.gateway_url, CircuitBreaker(1000)) as gateways:
        sweeper = SweeperActivities(sys_.temporal.client, sys_.engine, gateways, sys_.settings)
        swept: int = await ActivityEnvironment().run(sweeper.sweep_orphaned_holds)
        return swept


async def test_an_orphaned_hold_that_was_never_charged_is_released(sys_: System) -> None:
    wallet, pid = await orphan(sys_, "10.00", charged=False)
    held = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()["held"]
    assert held == "10.20"
    assert await sweep(sys_) >= 1
    after = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()
    assert (after["balance"], after["held"]) == ("100.00", "0.00")
    payment = await sys_.payment(pid)
    assert (payment["status"], payment["failure"]["code"]) == ("failed", "reservation_expired")
    assert "wallet.funds_released" in await sys_.events(pid)


async def test_an_orphaned_hold_that_was_charged_is_captured(sys_: System) -> None:
    wallet, pid = await orphan(sys_, "10.00", charged=True)
    assert await sweep(sys_) >= 1
    after = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()
    assert (after["balance"], after["held"]) == ("89.80", "0.00")
    assert (await sys_.payment(pid))["status"] == "completed"


async def test_the_sweeper_runs_on_a_temporal_schedule(sys_: System) -> None:
    await ensure_sweeper(sys_.temporal.client, sys_.settings.temporal_task_queue, timedelta(hours=1))
    await ensure_sweeper(sys_.temporal.client, sys_.settings.temporal_task_queue, timedelta(hours=1))
    schedule = await sys_.temporal.client.get_schedule_handle(SWEEPER_ID).describe()
    assert schedule.schedule.spec.intervals[0].every == timedelta(hours=1)


async def test_the_schedule_runs_the_sweep_as_a_workflow(sys_: System) -> None:
    """Triggered now (as `temporal schedule trigger` does): the sweeper workflow settles a hold."""
    wallet, _ = await orphan(sys_, "7.00", charged=False)
    await ensure_sweeper(sys_.temporal.client, sys_.settings.temporal_task_queue, timedelta(hours=1))
    await sys_.temporal.client.get_schedule_handle(SWEEPER_ID).trigger()

    async def held() -> str:
        return str((await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()["held"])
    assert await eventually(held, lambda h: h == "0.00", timeout=30) == "0.00"
    runs = [r async for r in sys_.temporal.client.list_workflows(
        "WorkflowType='HoldSweeperWorkflow'")]
    assert runs
