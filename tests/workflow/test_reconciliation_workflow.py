"""The reconciliation workflow's shape, with time skipping and scripted steps: it pages through the
report continuing as new, heals what a page queued (an unhealable one becomes an exception), then
checks the ledger's side and finishes with the critical count on its search attribute."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.reconciliation import (
    LedgerSide,
    LedgerSideOutcome,
    PageOutcome,
    ReconcileReport,
    ReconcileRun,
    ReportPage,
)
from workflows.reconciliation import RECONCILIATION_CRITICAL, ReconciliationWorkflow


def scripted(calls: list[tuple[str, Any]]) -> list[Any]:
    @activity.defn(name="begin_reconciliation")
    async def begin(run: ReconcileRun) -> None:
        calls.append(("begin", run.reconciliation_id))

    @activity.defn(name="reconcile_page")
    async def page(p: ReportPage) -> PageOutcome:
        calls.append(("page", p.cursor))
        follows = {0: 10, 10: 20, 20: None}[p.cursor]
        return PageOutcome(records=10, next_cursor=follows, to_heal=[7, 8] if p.cursor == 10 else [])

    @activity.defn(name="heal_finding")
    async def heal(finding: int) -> str:
        if activity.info().attempt == 1:
            calls.append(("heal", finding))
        if finding == 8:
            raise ApplicationError("the gateway is down", type="GatewayUnavailable")
        return "healed"

    @activity.defn(name="heal_failed")
    async def heal_failed(finding: int, why: str) -> None:
        calls.append(("heal_failed", (finding, why)))

    @activity.defn(name="reconcile_ledger_side")
    async def side(s: LedgerSide) -> LedgerSideOutcome:
        calls.append(("ledger_side", s.after))
        return LedgerSideOutcome(checked=1000 if not s.after else 3,
                                 next_after="capture:x" if not s.after else None)

    @activity.defn(name="finish_reconciliation")
    async def finish(run_id: str) -> ReconcileReport:
        calls.append(("finish", run_id))
        return ReconcileReport(run_id, {"matched": 27, "unknown_charge": 3}, critical=3)

    return [begin, page, heal, heal_failed, side, finish]


async def test_it_pages_continuing_as_new_heals_and_reports(env: WorkflowEnvironment) -> None:
    calls: list[tuple[str, Any]] = []
    queue, rid = f"q-{uuid.uuid4()}", f"rec_{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=queue, workflows=[ReconciliationWorkflow],
                      activities=scripted(calls)):
        handle = await env.client.start_workflow(
            ReconciliationWorkflow.run,
            ReconcileRun(rid, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "api",
                         pages_per_run=1),
            id=rid, task_queue=queue)
        report = await handle.result()
        desc = await handle.describe()

    assert report.critical == 3
    assert desc.status == WorkflowExecutionStatus.COMPLETED
    assert desc.typed_search_attributes.get(RECONCILIATION_CRITICAL) == 3
    assert [name for name, _ in calls] == [
        "begin", "page", "page", "heal", "heal", "heal_failed", "page",
        "ledger_side", "ledger_side", "finish"]
    assert [arg for name, arg in calls if name == "page"] == [0, 10, 20]
    assert calls[5][1][0] == 8
    assert "gateway is down" in calls[5][1][1]
    # one page per run: the run that finished is not the first of the chain
    assert desc.run_id != handle.first_execution_run_id


async def test_a_scheduled_run_takes_the_recent_window(env: WorkflowEnvironment) -> None:
    seen: list[ReconcileRun] = []
    calls: list[tuple[str, Any]] = []
    activities = scripted(calls)

    @activity.defn(name="begin_reconciliation")
    async def begin(run: ReconcileRun) -> None:
        seen.append(run)

    queue, wid = f"q-{uuid.uuid4()}", f"paysaga-reconciliation-run-{uuid.uuid4().hex[:6]}"
    async with Worker(env.client, task_queue=queue, workflows=[ReconciliationWorkflow],
                      activities=[begin, *activities[1:]]):
        await env.client.execute_workflow(
            ReconciliationWorkflow.run, ReconcileRun(lookback_seconds=3600, settle_seconds=60),
            id=wid, task_queue=queue)
    from datetime import datetime

    run = seen[0]
    assert run.reconciliation_id == wid
    start, end = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (run.start, run.end))
    assert (end - start).total_seconds() == 3600
