"""Starting the sagas from outside a workflow (the API, the sweeper): one place for the options.

Workflow ids are the payment's and the refund's ids; an id never runs twice
(REJECT_DUPLICATE, and FAIL on a conflict), so a start repeated after a crash is harmless.
"""

from __future__ import annotations

import contextlib
from typing import Any

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from settings import Settings
from workflows.refund import RefundWorkflow
from workflows.types import RefundStep, SagaPolicy

ONCE: dict[str, Any] = {"id_conflict_policy": WorkflowIDConflictPolicy.FAIL,
        "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE}


def saga_policy(s: Settings) -> SagaPolicy:
    return SagaPolicy(
        hold_ttl_seconds=s.hold_ttl_seconds, max_manual_retries=s.max_manual_retries,
        manual_retry_window_seconds=s.manual_retry_window_seconds,
        gateway_timeout_seconds=s.gateway_timeout_seconds,
        gateway_retry_initial_seconds=s.gateway_retry_initial_seconds,
        gateway_retry_backoff=s.gateway_retry_backoff,
        gateway_retry_max_interval_seconds=s.gateway_retry_max_interval_seconds,
        gateway_retry_max_attempts=s.gateway_retry_max_attempts,
        ledger_retry_initial_seconds=s.ledger_retry_initial_seconds,
        ledger_retry_max_interval_seconds=s.ledger_retry_max_interval_seconds,
        ledger_retry_max_attempts=s.ledger_retry_max_attempts,
        refund_window_seconds=s.refund_window_seconds,
    )


async def start_refund(client: Client, settings: Settings, step: RefundStep) -> None:
    """Start the refund's saga; one that is (or was) running already is left as it is."""
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            RefundWorkflow.run, args=[step, saga_policy(settings)], id=step.refund_id,
            task_queue=settings.temporal_task_queue, memo={"tenant_id": step.tenant_id},
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
