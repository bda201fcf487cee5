"""Starting the sagas from outside a workflow (the API, the sweeper, the outbox relay): one place
for each saga's start options, search attributes and memo.

    start_payment      a payment (with a wait: Update-with-Start, at most N s)
    start_transfer     a top-up or a withdrawal (the same two ways)
    start_refund                             a refund
    start_deliveries                         webhook deliveries

Workflow ids are the payment's and the refund's ids; an id never runs twice
(REJECT_DUPLICATE, and FAIL on a conflict), so a start repeated after a crash is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from typing import Any

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from contracts.payment import PaymentInput
from contracts.reconciliation import ReconcileRun
from contracts.refund import RefundStep
from contracts.saga import SagaPolicy
from contracts.transfers import TransferInput
from domain.ids import user_search_hash
from domain.money import currency_exponent
from domain.status import PaymentStatus
from settings import Settings
from temporal_client.ask import Outlived, within
from workflows.payment import PaymentWorkflow
from workflows.reconciliation import ReconciliationWorkflow
from workflows.refund import RefundWorkflow
from workflows.search import (
    PAYMENT_AMOUNT,
    PAYMENT_CURRENCY,
    PAYMENT_ID,
    PAYMENT_STATUS,
    PAYMENT_USER_ID,
    REFUND_AMOUNT,
    REFUND_STATUS,
    TRANSFER_STATUS,
)
from workflows.top_up import TopUpWorkflow
from workflows.webhooks import Delivery, DeliveryPolicy, WebhookDeliveryWorkflow
from workflows.withdrawal import WithdrawalWorkflow

ONCE: dict[str, Any] = {"id_conflict_policy": WorkflowIDConflictPolicy.FAIL,
        "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE}


def major(amount: int, currency: str) -> float:
    """An amount in major units as a Double search attribute: for operators' queries, never for
    money (the contract's amounts are decimal strings)."""
    return float(Decimal(amount).scaleb(-currency_exponent(currency)))


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
        async_max_seconds=s.async_payment_max_seconds,
        processor_sync_first_seconds=s.processor_sync_first_seconds,
        processor_sync_interval_seconds=s.processor_sync_interval_seconds,
        action_timeout_seconds=s.action_timeout_seconds,
        first_try_local=True,
        processing_when_waiting=True,
    )


async def start_refund(client: Client, settings: Settings, step: RefundStep) -> None:
    """Start the refund's saga; one that is (or was) running already is left as it is."""
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            RefundWorkflow.run, args=[step, saga_policy(settings)], id=step.refund_id,
            task_queue=settings.temporal_task_queue, memo={"tenant_id": step.tenant_id},
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(PAYMENT_ID, step.payment_id),
                SearchAttributePair(REFUND_STATUS, "pending"),
                SearchAttributePair(REFUND_AMOUNT, major(step.amount, step.currency))]),
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)


def opening_view(inp: PaymentInput) -> dict[str, Any]:
    """The payment as it is when it starts: what the memo keeps (it never changes) and the 202."""
    return {"id": inp.payment_id, "user_id": inp.user_id, "service_id": inp.service_id,
            "amount": inp.amount, "fee": inp.fee, "currency": inp.currency,
            "description": inp.description, "reference": inp.reference, "metadata": inp.metadata,
            "max_manual_retries": inp.policy.max_manual_retries, "created_at": inp.created_at,
            "capture_method": inp.capture_method, "capture_before": inp.capture_before,
            "amount_authorized": inp.amount if inp.manual else None}


def payment_options(inp: PaymentInput, task_queue: str, user_key: bytes) -> dict[str, Any]:
    """A payment's start options: its id, once only, its search attributes (the user id only as
    its HMAC: search attributes are plain text) and its memo (encrypted, as every payload)."""
    return dict(
        id=inp.payment_id, task_queue=task_queue, **ONCE,
        search_attributes=TypedSearchAttributes([
            SearchAttributePair(PAYMENT_STATUS, PaymentStatus.PENDING.value),
            SearchAttributePair(PAYMENT_ID, inp.payment_id),
            SearchAttributePair(PAYMENT_USER_ID, user_search_hash(user_key, inp.user_id)),
            SearchAttributePair(PAYMENT_CURRENCY, inp.currency),
            # a Double by the contract: for operators' queries only, never for money
            SearchAttributePair(PAYMENT_AMOUNT, major(inp.amount, inp.currency)),
        ]),
        # the memo holds only what never changes (the status lives in PaymentStatus)
        memo={"tenant_id": inp.tenant_id, "fingerprint": inp.fingerprint,
              "payment": opening_view(inp)})


async def start_payment(client: Client, inp: PaymentInput, task_queue: str, user_key: bytes,
                        wait_seconds: float | None = None) -> bool:
    """Start the payment's saga; with `wait_seconds`, together with its first outcome
    (Update-with-Start), at most that long: True when it settled in time.
    WorkflowAlreadyStartedError: this id ran before."""
    return await start_saga(client, PaymentWorkflow, inp,
                            payment_options(inp, task_queue, user_key), wait_seconds)


TRANSFER_WORKFLOWS: dict[str, Any] = {"top_up": TopUpWorkflow, "withdrawal": WithdrawalWorkflow}


def transfer_view(kind: str, t: TransferInput) -> dict[str, Any]:
    """A top-up or withdrawal as it is when it starts (the memo keeps it; the 202 shows it)."""
    return {"id": t.transfer_id, "kind": kind, "wallet_id": t.wallet_id, "amount": t.amount,
            "fee": t.fee, "currency": t.currency, "created_at": t.created_at}


async def start_transfer(client: Client, kind: str, t: TransferInput, task_queue: str,
                         wait_seconds: float | None = None) -> bool:
    """Start a top-up's or withdrawal's saga (as `start_payment`)."""
    options: dict[str, Any] = dict(
        id=t.transfer_id, task_queue=task_queue, **ONCE,
        search_attributes=TypedSearchAttributes([
            SearchAttributePair(TRANSFER_STATUS, "processing"),
            SearchAttributePair(PAYMENT_ID, t.transfer_id),  # the money movement's id
            SearchAttributePair(PAYMENT_CURRENCY, t.currency),
            SearchAttributePair(PAYMENT_AMOUNT, major(t.amount, t.currency))]),
        memo={"tenant_id": t.tenant_id, "fingerprint": t.fingerprint,
              "transfer": transfer_view(kind, t)})
    return await start_saga(client, TRANSFER_WORKFLOWS[kind], t, options, wait_seconds)


async def start_saga(client: Client, workflow_class: Any, arg: Any, options: dict[str, Any],
                     wait_seconds: float | None = None) -> bool:
    """Start a saga; with `wait_seconds`, together with its `outcome` update (Update-with-Start)
    and wait at most that long: True when it settled in time; False when it takes longer, or
    without a wait (started either way)."""
    if wait_seconds is None:
        await client.start_workflow(workflow_class.run, arg, **options)
        return False
    start = WithStartWorkflowOperation(workflow_class.run, arg, **options)
    try:
        await within(wait_seconds, client.execute_update_with_start_workflow(
            workflow_class.outcome, start_workflow_operation=start))
    except Outlived:
        _consume_start_error(start)
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await client.start_workflow(workflow_class.run, arg, **options)
        return False
    return True


def _consume_start_error(start: WithStartWorkflowOperation[Any, Any]) -> None:
    """The SDK leaves a cancelled Update-with-Start's start error on a future only the operation
    reads: read it, so asyncio does not log it as never retrieved."""
    started = getattr(start, "_workflow_handle", None)
    if isinstance(started, asyncio.Future) and started.done() and not started.cancelled():
        started.exception()


async def start_reconciliation(client: Client, run: ReconcileRun, task_queue: str,
                               memo: dict[str, Any]) -> None:
    """Start a reconciliation run (WorkflowAlreadyStartedError: this id ran before)."""
    await client.start_workflow(ReconciliationWorkflow.run, run, id=run.reconciliation_id,
                                task_queue=task_queue, memo=memo, **ONCE)


async def start_deliveries(client: Client, task_queue: str, ids: list[str],
                           policy: DeliveryPolicy, *, replay: bool = False) -> None:
    """A webhook delivery workflow per id (`replay`: deliver one that ended once more)."""
    for did in ids:
        await client.start_workflow(
            WebhookDeliveryWorkflow.run, Delivery(did, policy), id=did, task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=(WorkflowIDReusePolicy.ALLOW_DUPLICATE if replay
                             else WorkflowIDReusePolicy.REJECT_DUPLICATE))
