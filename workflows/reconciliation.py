"""Reconciliation (workflow type `Reconciliation`): prove from the gateway's settlement report that
every cent it moved is in the ledger, and heal what is safe to heal.

    begin -> for each connector, each page of its report: classify it, heal what it queued
          -> continue-as-new every `pages_per_run` pages, carrying only the cursor
          -> the ledger's side: captures in the window with no charge in the report
          -> finish: counts by class, the run's critical findings on its search attribute

Run by a Temporal Schedule (`paysaga-reconciliation`, every RECONCILIATION_INTERVAL_SECONDS),
`temporal schedule trigger`, or `POST /v1/reconciliations` with a window.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts.reconciliation import (
        LedgerSide,
        LedgerSideOutcome,
        PageOutcome,
        ReconcileReport,
        ReconcileRun,
        ReportPage,
    )
    from workflows.search import RECONCILIATION_CRITICAL


STEP = timedelta(minutes=2)
# The report and the ledger are read again until they answer: a run never gives up half-way.
READ_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                         maximum_interval=timedelta(minutes=1))
# A heal is retried a while; what still fails becomes an open exception for an operator.
HEAL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                         maximum_interval=timedelta(seconds=30), maximum_attempts=10)


# Pinned: one window, paged within a run.
@workflow.defn(name="Reconciliation", versioning_behavior=VersioningBehavior.PINNED)
class ReconciliationWorkflow:
    @workflow.run
    async def run(self, run: ReconcileRun) -> ReconcileReport:
        if not run.reconciliation_id:  # started by the schedule: its own id, the recent window
            run.reconciliation_id = workflow.info().workflow_id
            end = workflow.now() - timedelta(seconds=run.settle_seconds)
            run.start = _rfc3339(end - timedelta(seconds=run.lookback_seconds))
            run.end = _rfc3339(end)
        if run.pages == 0:
            workflow.upsert_search_attributes([RECONCILIATION_CRITICAL.value_set(0)])
            await workflow.execute_local_activity(
                "begin_reconciliation", run, start_to_close_timeout=timedelta(seconds=30),
                retry_policy=READ_RETRY, summary=f"{run.trigger}: {run.start} to {run.end}")

        sources: list[str | None] = list(run.connectors) or [None]  # None: the default connector
        while run.connector_index < len(sources):
            connector = sources[run.connector_index]
            cursor: int | None = run.cursor
            while cursor is not None:
                page: PageOutcome = await workflow.execute_activity(
                    "reconcile_page",
                    ReportPage(run.reconciliation_id, run.start, run.end, cursor, run.page_size,
                               connector),
                    result_type=PageOutcome, start_to_close_timeout=STEP, retry_policy=READ_RETRY,
                    summary=f"page {run.pages + 1}: {connector or 'the gateway'}'s report: "
                            "match, classify, record")
                for finding in page.to_heal:
                    await self._heal(finding)
                run.pages += 1
                cursor = page.next_cursor
                if cursor is None:
                    run.connector_index, run.cursor = run.connector_index + 1, 0
                else:
                    run.cursor = cursor
                if run.pages % run.pages_per_run == 0 and run.connector_index < len(sources):
                    workflow.continue_as_new(run)

        after: str | None = ""
        side_page = 0
        while after is not None:
            side: LedgerSideOutcome = await workflow.execute_activity(
                "reconcile_ledger_side",
                LedgerSide(run.reconciliation_id, run.start, run.end, after, page=side_page),
                result_type=LedgerSideOutcome, start_to_close_timeout=STEP,
                retry_policy=READ_RETRY, summary="the ledger's captures the report has no charge for")
            after = side.next_after
            side_page += 1

        report: ReconcileReport = await workflow.execute_local_activity(
            "finish_reconciliation", run.reconciliation_id, result_type=ReconcileReport,
            start_to_close_timeout=timedelta(seconds=30), retry_policy=READ_RETRY,
            summary="count by class; report")
        workflow.upsert_search_attributes([RECONCILIATION_CRITICAL.value_set(report.critical)])
        return report

    async def _heal(self, finding: int) -> None:
        try:
            await workflow.execute_activity(
                "heal_finding", finding, start_to_close_timeout=STEP, retry_policy=HEAL_RETRY,
                summary=f"heal finding {finding}")
        except ActivityError as err:
            cause = err.cause
            why = cause.message if isinstance(cause, ApplicationError) else str(err)
            await workflow.execute_local_activity(
                "heal_failed", args=[finding, why], start_to_close_timeout=timedelta(seconds=30),
                retry_policy=READ_RETRY, summary=f"finding {finding}: an open exception")


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
