"""Payments: starting one is one Temporal call; reads come from the projection.

Idempotency: the payment id (= workflow id) is derived from (tenant, Idempotency-Key), the
workflow id may never run twice, and the payments table is unique on (tenant, key). A repeated key
answers the same payment (200, Idempotent-Replayed) if the request is the same, 422 if not.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import text
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api import pages, views
from api.auth import Principal
from api.deps import AppState, IdempotencyKey, PaymentsRead, PaymentsWrite, StateDep
from api.errors import Problem, responses
from api.exact_json import ExactJSONRoute
from api.pages import Keyset, StartingAfter
from api.prefer import Outlived, PreferHeader, applied, wait_seconds, within
from api.query import Limit, Offset, Time, comma_list
from api.routes.wallets import money_problem
from api.schemas import EventPublic, Page, PaymentCreate, PaymentPublic
from domain.fees import fee_for
from domain.fingerprint import fingerprint
from domain.ids import payment_id
from domain.money import MoneyError, currency_exponent, to_minor
from domain.status import FailureCode, PaymentStatus
from workflows.payment import (
    PAYMENT_AMOUNT,
    PAYMENT_CURRENCY,
    PAYMENT_STATUS,
    PAYMENT_USER_ID,
    PaymentWorkflow,
)
from workflows.start import ONCE, saga_policy
from workflows.types import PaymentInput

router = APIRouter(prefix="/v1/payments", tags=["payments"], route_class=ExactJSONRoute)
COLUMNS = ("id, tenant_id, fingerprint, status, user_id, service_id, wallet_id, amount, fee, "
           "currency, description, reference, metadata, failure_code, failure_message, "
           "manual_retries, max_manual_retries, amount_refunded, gateway_reference, "
           "connector, routing_reason, created_at, updated_at")
PAYMENTS = Keyset("payments", scope="tenant_id = :t")
PAYMENT_EVENTS = Keyset("events", ("id",), descending=False, scope="payment_id = :p",
                        integer_ids=True)


async def _projection(state: AppState, tenant_id: str, pid: str) -> dict[str, Any] | None:
    async with state.engine.connect() as conn:
        row = (await conn.execute(text(
            f"SELECT {COLUMNS} FROM payments WHERE id = :id AND tenant_id = :t"),
            {"id": pid, "t": tenant_id})).mappings().first()
    return dict(row) if row else None


async def _from_workflow(state: AppState, tenant_id: str, pid: str) -> dict[str, Any] | None:
    """The payment as its workflow describes it, before the projection row exists."""
    try:
        desc = await state.temporal.get_workflow_handle(pid).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    memo = await desc.memo()
    if memo.get("tenant_id") != tenant_id or "payment" not in memo:
        return None
    view: dict[str, Any] = dict(memo["payment"])
    # the memo holds only what never changes; the status is the PaymentStatus search attribute
    view["status"] = (desc.typed_search_attributes.get(PAYMENT_STATUS) or view.get("status")
                      or PaymentStatus.PENDING.value)
    view["fingerprint"] = memo.get("fingerprint")
    return view


async def load(state: AppState, tenant_id: str, pid: str) -> dict[str, Any]:
    found = await _projection(state, tenant_id, pid) or await _from_workflow(state, tenant_id, pid)
    if found is None:
        raise Problem(404, "PAYMENT_NOT_FOUND", f"no payment {pid}")
    return found


def _replay(found: dict[str, Any], fp: str, state: AppState, response: Response) -> PaymentPublic:
    if found.get("fingerprint") != fp:
        raise Problem(422, "IDEMPOTENCY_KEY_REUSED",
                      "this Idempotency-Key was used with a different request")
    response.status_code = 200
    response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/v1/payments/{found['id']}"
    return views.original_payment(found, state.settings.temporal_ui_workflow_base)


@router.post("", status_code=202, response_model=PaymentPublic,
             response_description=(
                 "accepted: the saga runs; follow `links.self`. Also the answer to "
                 "`Prefer: wait=N` when the saga outlives N s (with `Preference-Applied`): the "
                 "state so far, never an error"),
             responses={200: {"model": PaymentPublic, "description": "idempotent replay"},
                        201: {"model": PaymentPublic,
                              "description": "with `Prefer: wait=N`: the outcome, within N s"},
                        **responses(400, 401, 403, 422)})
async def create_payment(principal: PaymentsWrite, key: IdempotencyKey, body: PaymentCreate,
                         state: StateDep, response: Response, prefer: PreferHeader = None) -> PaymentPublic:
    """Start a payment saga. Answers 202 at once; follow `links.self` for its status.

    With `Prefer: wait=N` (N at most 30) it answers 201 with the final state when the saga
    ends within N seconds, and 202 as usual when it does not.
    """
    s = state.settings
    try:
        amount = to_minor(body.amount, body.currency, maximum=Decimal(s.max_amount))
    except MoneyError as err:
        raise money_problem(err, "currency" if err.code == "INVALID_CURRENCY" else "amount") from None
    fee = fee_for(amount, s.fee_bps)
    fp = fingerprint({"user_id": body.user_id, "service_id": body.service_id, "amount": amount,
                      "currency": body.currency, "description": body.description,
                      "reference": body.reference, "metadata": body.metadata})
    pid = payment_id(principal.tenant_id, key)

    existing = await _projection(state, principal.tenant_id, pid)
    if existing is not None:
        return _replay(existing, fp, state, response)

    now = datetime.now(UTC)
    inp = PaymentInput(
        payment_id=pid, tenant_id=principal.tenant_id, idempotency_key=key, fingerprint=fp,
        user_id=body.user_id, service_id=body.service_id, amount=amount, fee=fee,
        currency=body.currency, created_at=now.isoformat(), description=body.description,
        reference=body.reference, metadata=body.metadata, policy=saga_policy(s))
    view = {"id": pid, "status": PaymentStatus.PENDING.value, "user_id": body.user_id,
            "service_id": body.service_id, "amount": amount, "fee": fee, "currency": body.currency,
            "description": body.description, "reference": body.reference,
            "metadata": body.metadata, "max_manual_retries": s.max_manual_retries,
            "created_at": now.isoformat()}
    options: dict[str, Any] = dict(
        id=pid, task_queue=s.temporal_task_queue, **ONCE,
        search_attributes=TypedSearchAttributes([
            SearchAttributePair(PAYMENT_STATUS, PaymentStatus.PENDING.value),
            SearchAttributePair(PAYMENT_USER_ID, body.user_id),
            SearchAttributePair(PAYMENT_CURRENCY, body.currency),
            # a Double by the contract: for operators' queries only, never for money
            SearchAttributePair(PAYMENT_AMOUNT,
                                float(Decimal(amount).scaleb(-currency_exponent(body.currency)))),
        ]),
        # the memo holds only what never changes (the status lives in PaymentStatus)
        memo={"tenant_id": principal.tenant_id, "fingerprint": fp,
              "payment": {k: v for k, v in view.items() if k != "status"}},
    )
    response.headers["Location"] = f"/v1/payments/{pid}"
    seconds = wait_seconds(prefer)
    try:
        if seconds is None:  # the 202 path: a single start
            await state.temporal.start_workflow(PaymentWorkflow.run, inp, **options)
        else:
            applied(response, seconds)
            if await _start_and_wait(state, inp, options, seconds):
                response.status_code = 201
                return views.payment(await load(state, principal.tenant_id, pid),
                                     s.temporal_ui_workflow_base)
            # the saga outlived the wait: 202 with the state so far, as without the header
            return views.payment(await _projection(state, principal.tenant_id, pid) or view,
                                 s.temporal_ui_workflow_base)
    except WorkflowAlreadyStartedError:
        # Another request with this key started it first (or it ran before): same answer as it.
        return _replay(await load(state, principal.tenant_id, pid), fp, state, response)
    return views.payment(view, s.temporal_ui_workflow_base)


async def _start_and_wait(state: AppState, inp: PaymentInput, options: dict[str, Any],
                          seconds: float) -> bool:
    """Start the payment and wait for its first outcome in one call (Update-with-Start): the
    workflow answers when the attempt settles; nothing polls. False when it takes longer."""
    start = WithStartWorkflowOperation(PaymentWorkflow.run, inp, **options)
    try:
        await within(seconds, state.temporal.execute_update_with_start_workflow(
            PaymentWorkflow.outcome, start_workflow_operation=start))
    except Outlived:
        # Slower than the client wanted (or no worker took it yet): it is started either way.
        # (The SDK leaves the cancelled start's error on a future only the operation reads.)
        started = getattr(start, "_workflow_handle", None)
        if isinstance(started, asyncio.Future) and started.done() and not started.cancelled():
            started.exception()
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await state.temporal.start_workflow(PaymentWorkflow.run, inp, **options)
        return False
    return True


SETTLED_OR_WAITING = {"completed", "failed", "exhausted", "canceled", "refunded", "partially_refunded"}


async def _wait_for_outcome(state: AppState, tenant_id: str, pid: str, prefer: str | None,
                            response: Response) -> PaymentPublic | None:
    """With `Prefer: wait=N`: the payment once its current attempt settled, or None after N s.
    The workflow's `outcome` update answers; nothing polls (but saga v1's runs, which have no
    such update)."""
    seconds = wait_seconds(prefer)
    if seconds is None:
        return None
    applied(response, seconds)
    handle = state.temporal.get_workflow_handle(pid)
    try:
        await within(seconds, handle.execute_update(PaymentWorkflow.outcome))
    except Outlived:
        return None
    except WorkflowUpdateFailedError:
        if not await _legacy_settled(state, tenant_id, pid, seconds):
            return None
    except RPCError as err:
        if err.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise  # else the workflow has closed: its outcome is recorded
    return views.payment(await load(state, tenant_id, pid), state.settings.temporal_ui_workflow_base)


async def _legacy_settled(state: AppState, tenant_id: str, pid: str, seconds: float) -> bool:
    """Saga v1's payments have no `outcome` update: watch the projection instead."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        found = await _projection(state, tenant_id, pid)
        if found is not None and found["status"] in SETTLED_OR_WAITING:
            return True
        await asyncio.sleep(0.05)
    return False


@router.get("/{pid}", response_model=PaymentPublic, responses=responses(401, 403, 404))
async def get_payment(principal: PaymentsRead, pid: str, state: StateDep) -> PaymentPublic:
    return views.payment(await load(state, principal.tenant_id, pid),
                         state.settings.temporal_ui_workflow_base)


STATUSES = {status.value for status in PaymentStatus}
FAILURE_CODES = {code.value for code in FailureCode}


def _one_or_more(values: set[str]) -> str:
    one = "|".join(sorted(values))
    return f"^({one})(,({one}))*$"


@router.get("", response_model=Page[PaymentPublic], responses=responses(400, 401, 403))
async def list_payments(
    principal: PaymentsRead, state: StateDep,
    status: Annotated[str | None, Query(
        description="one or more statuses, comma-separated: `failed,exhausted`",
        pattern=_one_or_more(STATUSES), max_length=200)] = None,
    failure_code: Annotated[str | None, Query(
        description="one or more failure codes, comma-separated: `gateway_declined`",
        pattern=_one_or_more(FAILURE_CODES), max_length=200)] = None,
    user_id: Annotated[str | None, Query(max_length=128)] = None,
    service_id: Annotated[str | None, Query(max_length=128)] = None,
    created_from: Time = None,
    created_to: Time = None,
    limit: Limit = 50,
    offset: Offset = 0,
    starting_after: StartingAfter = None,
) -> Page[PaymentPublic]:
    """Payments, newest first. `status=failed` is the operator's queue of payments needing care;
    `status=failed,exhausted&failure_code=gateway_declined` narrows it by reason."""
    where = ["tenant_id = :t"]
    params: dict[str, Any] = {"t": principal.tenant_id}
    for name, values in (("status", comma_list(status, STATUSES, "status")),
                         ("failure_code", comma_list(failure_code, FAILURE_CODES, "failure_code"))):
        if values:
            where.append(f"{name} = ANY(:{name})")
            params[name] = values
    for name, value in (("user_id", user_id), ("service_id", service_id)):
        if value is not None:
            where.append(f"{name} = :{name}")
            params[name] = value
    if created_from is not None:
        where.append("created_at >= :cf")
        params["cf"] = _aware(created_from)
    if created_to is not None:
        where.append("created_at < :ct")
        params["ct"] = _aware(created_to)
    async with state.engine.connect() as conn:
        rows, more, total = await pages.fetch(
            conn, PAYMENTS, select=COLUMNS, where=where, params=params, limit=limit, offset=offset,
            starting_after=starting_after)
    base = state.settings.temporal_ui_workflow_base
    return pages.page(rows, lambda r: views.payment(dict(r), base), has_more=more, limit=limit,
                      offset=offset, total=total)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@router.get("/{pid}/events", response_model=Page[EventPublic], responses=responses(401, 403, 404))
async def payment_events(principal: PaymentsRead, pid: str, state: StateDep,
                         limit: Limit = 50, offset: Offset = 0,
                         starting_after: StartingAfter = None) -> Page[EventPublic]:
    """The saga's domain events, oldest first."""
    await load(state, principal.tenant_id, pid)
    async with state.engine.connect() as conn:
        rows, more, total = await pages.fetch(
            conn, PAYMENT_EVENTS, select="id, type, data, created_at", where=["payment_id = :p"],
            params={"p": pid}, limit=limit, offset=offset, starting_after=starting_after)
    return pages.page(rows, lambda r: EventPublic(id=r["id"], type=r["type"], data=r["data"],
                                                  created_at=views.rfc3339(r["created_at"])),
                      has_more=more, limit=limit, offset=offset, total=total)


@router.post("/{pid}/retry", status_code=202, response_model=PaymentPublic,
             response_description=(
                 "accepted: a new attempt runs. Also the answer to `Prefer: wait=N` when the "
                 "attempt outlives N s (with `Preference-Applied`): the state so far"),
             responses={200: {"model": PaymentPublic,
                              "description": "with `Prefer: wait=N`: the attempt's outcome"},
                        **responses(401, 403, 404, 409)})
async def retry_payment(principal: PaymentsWrite, pid: str, state: StateDep, response: Response,
                        prefer: PreferHeader = None) -> PaymentPublic:
    """Retry a failed payment: a new gateway attempt, starting again from the reservation.

    With `Prefer: wait=N` it answers 200 with the final state when the attempt ends in time."""
    accepted = await _operate(state, principal, pid, PaymentWorkflow.request_retry,
                              "CANNOT_RETRY_PAYMENT", "retried")
    final = await _wait_for_outcome(state, principal.tenant_id, pid, prefer, response)
    if final is not None:
        response.status_code = 200
        return final
    if "Preference-Applied" in response.headers:  # waited, and the attempt outlived the wait
        return views.payment(await load(state, principal.tenant_id, pid),
                             state.settings.temporal_ui_workflow_base)
    return accepted


@router.post("/{pid}/cancel", status_code=200, response_model=PaymentPublic,
             responses=responses(401, 403, 404, 409))
async def cancel_payment(principal: PaymentsWrite, pid: str, state: StateDep) -> PaymentPublic:
    """Cancel a payment that has not reached the gateway; any hold is released."""
    return await _operate(state, principal, pid, PaymentWorkflow.request_cancel,
                          "CANNOT_CANCEL_PAYMENT", "canceled")


async def _operate(state: AppState, principal: Principal, pid: str, update: Any, code: str,
                   verb: str) -> PaymentPublic:
    """Run a retry or cancel update, saying who asked (the API key's id)."""
    found = await load(state, principal.tenant_id, pid)
    await run_update(state, found, update, f"api-key:{principal.key_id}", code=code, verb=verb)
    return views.payment(await load(state, principal.tenant_id, pid),
                         state.settings.temporal_ui_workflow_base)


async def run_update(state: AppState, found: dict[str, Any], update: Any, *args: Any, code: str,
                     verb: str) -> Any:
    """Run a validated update on the payment's workflow; a refusal, or a workflow that has
    ended, is a 409 with `code`."""
    handle = state.temporal.get_workflow_handle(found["id"])
    try:
        return await handle.execute_update(update, *args)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        raise _conflict(code, message, found) from None
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            desc = await handle.describe()
            if desc.status != WorkflowExecutionStatus.RUNNING:
                raise _conflict(code, f"payment {found['id']} cannot be {verb}: it is "
                                f"{found['status']}", found) from None
        raise


def _conflict(code: str, message: str, found: dict[str, Any]) -> Problem:
    return Problem(409, code, message, extra={
        "payment_status": found["status"], "manual_retries": found.get("manual_retries", 0),
        "max_manual_retries": found.get("max_manual_retries")})
