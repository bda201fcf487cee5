"""Builds the worker once: the database engine and HTTP client are shared by all activities."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkerDeploymentConfig
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.disputes import DisputeActivities
from activities.gateway import GatewayActivities
from activities.ledger import LedgerActivities
from activities.reconciliation import ReconciliationActivities
from activities.sweeper import SweeperActivities
from activities.transfers import TransferActivities
from activities.webhooks import WebhookActivities
from contracts.reconciliation import ReconcileRun
from gateway.client import Gateways, connect
from release.build import build_id
from routing import router
from settings import Settings
from worker.activations import OnTheLoop
from workflows.dispute import DisputeWorkflow
from workflows.payment import PaymentWorkflow
from workflows.reconciliation import ReconciliationWorkflow
from workflows.refund import RefundWorkflow
from workflows.sweeper import HoldSweeperWorkflow
from workflows.top_up import TopUpWorkflow
from workflows.webhooks import DeliveryPolicy, WebhookDeliveryWorkflow
from workflows.withdrawal import WithdrawalWorkflow

# every saga this build runs; each declares its versioning behavior (README: deploying a new build)
WORKFLOWS: list[type] = [PaymentWorkflow, RefundWorkflow, TopUpWorkflow, WithdrawalWorkflow,
                         HoldSweeperWorkflow, WebhookDeliveryWorkflow, ReconciliationWorkflow,
                         DisputeWorkflow]


def deployment_version(settings: Settings) -> WorkerDeploymentVersion:
    """The Worker Deployment Version this code polls as."""
    return WorkerDeploymentVersion(settings.worker_deployment_name, build_id(settings))


@asynccontextmanager
async def gateway_connections(settings: Settings, *, traced: bool = False
                              ) -> AsyncIterator[Gateways]:
    """Every configured connector's client and breaker, closed on exit; `traced`: each call to a
    connector is a span of the trace that asked for it."""
    made = connect(settings, traced=traced)
    try:
        yield made
    finally:
        await made.aclose()


def build_worker(client: Client, engine: AsyncEngine, gateways: Gateways,
                 settings: Settings, *, task_queue: str | None = None,
                 webhook_client: httpx.AsyncClient | None = None,
                 workflows: list[type] | None = None,
                 version: WorkerDeploymentVersion | None = None) -> Worker:
    """The worker, polling as `version` (default: this code's, `deployment_version`); always
    versioned, since the sagas declare their versioning behavior (the server refuses a workflow
    task that declares one from an unversioned worker). `workflows` replaces the build's sagas
    (a test's other build)."""
    route = router(settings)
    ledger = LedgerActivities(engine, route)
    money = TransferActivities(engine, gateways, route)
    webhooks = WebhookActivities(engine, webhook_client or httpx.AsyncClient(timeout=10),
                                 settings.webhook_host_allowed)
    gateway = GatewayActivities(gateways, engine)
    dispute = DisputeActivities(engine, gateways)
    recon = ReconciliationActivities(engine, gateways, client, settings.reconciliation_released_charge)
    return Worker(
        client,
        task_queue=task_queue or settings.temporal_task_queue,
        workflows=WORKFLOWS if workflows is None else workflows,
        activities=[
            ledger.start_payment, ledger.retry_payment, ledger.capture_funds, ledger.release_hold,
            ledger.fail_payment, ledger.cancel_payment, ledger.settle_refund, ledger.fail_refund,
            ledger.record_refusal, ledger.record_failover, ledger.authorize_payment,
            ledger.end_authorization, ledger.await_processor, money.top_up_processing,
            gateway.charge_gateway, gateway.lookup_charge, gateway.refund_gateway,
            gateway.capture_charge, gateway.void_charge,
            money.open_top_up, money.open_withdrawal, money.record_transfer_failover,
            money.settle_top_up, money.settle_withdrawal, money.send_payout, money.lookup_payout,
            SweeperActivities(client, engine, gateways, settings).sweep_orphaned_holds,
            webhooks.deliver_webhook, webhooks.park_failed_delivery,
            recon.begin, recon.reconcile_page, recon.reconcile_ledger_side, recon.heal_finding,
            recon.heal_failed, recon.finish,
            dispute.open_dispute, dispute.remind_dispute, dispute.submit_evidence, dispute.decide,
            dispute.look_up,
        ],
        # See Settings.worker_workflow_sandbox: the tests run every workflow sandboxed.
        workflow_runner=(SandboxedWorkflowRunner() if settings.worker_workflow_sandbox
                         else UnsandboxedWorkflowRunner()),
        workflow_task_executor=None if settings.worker_workflow_threads else OnTheLoop(),
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        max_cached_workflows=settings.worker_max_cached_workflows,
        max_concurrent_workflow_task_polls=settings.worker_workflow_task_pollers,
        max_concurrent_activity_task_polls=settings.worker_activity_task_pollers,
        deployment_config=WorkerDeploymentConfig(
            version=version or deployment_version(settings), use_worker_versioning=True),
    )


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    return DeliveryPolicy(settings.webhook_retry_initial_seconds,
                          settings.webhook_retry_max_interval_seconds,
                          settings.webhook_give_up_after_seconds)


def reconciliation_run(settings: Settings) -> ReconcileRun:
    """What the schedule starts: the recent window over every connector, paged as configured."""
    return ReconcileRun(trigger="schedule", lookback_seconds=settings.reconciliation_lookback_seconds,
                        settle_seconds=settings.reconciliation_settle_seconds,
                        page_size=settings.reconciliation_page_size,
                        pages_per_run=settings.reconciliation_pages_per_run,
                        connectors=[c.name for c in settings.connector_list])
