"""Payments: starting one is one Temporal call; reads come from the projection.

Idempotency: the payment id (= workflow id) is derived from (tenant, Idempotency-Key), the
workflow id may never run twice, and the payments table is unique on (tenant, key). A repeated key
answers the same payment (200, Idempotent-Replayed) if the request is the same, 422 if not.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api import pages, views
from api.creating import Saga, start_once
from api.deps import AppState, IdempotencyKey, PaymentsRead, PaymentsWrite, StateDep
from api.errors import Problem, money_problem, responses
from api.exact_json import ExactJSONRoute
from api.lookup import load_payment
from api.pages import StartingAfter
from api.prefer import PreferHeader, applied, wait_seconds
from api.query import Limit, Offset, Time, comma_list, one_or_more
from api.schemas import CaptureCreate, EventPublic, Page, PaymentCreate, PaymentPublic
from contracts.payment import CaptureRequest, PaymentInput, PaymentState
from db import events, payments
from db.payments import projection
from domain.access import Principal
from domain.fees import fee_for
from domain.fingerprint import fingerprint
from domain.ids import payment_id
from domain.money import MoneyError, to_minor
from domain.status import FailureCode, PaymentStatus
from settings import Settings
from temporal_client.ask import Outlived, within, workflow_running
from temporal_client.start import opening_view, saga_policy, start_payment
from workflows.payment import PaymentWorkflow

router = APIRouter(prefix="/v1/payments", tags=["payments"], route_class=ExactJSONRoute)


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
    s, base = state.settings, state.settings.temporal_ui_workflow_base
    tenant = principal.tenant_id
    inp = _payment_input(tenant, key, body, s)

    async def start(seconds: float | None) -> bool:
        return await start_payment(state.temporal, inp, s.temporal_task_queue, state.user_key,
                                   seconds)

    answer = await start_once(Saga(
        f"/v1/payments/{inp.payment_id}", inp.fingerprint,
        {**opening_view(inp), "status": PaymentStatus.PENDING.value}, start,
        lambda: projection(state.engine, tenant, inp.payment_id),
        lambda: load_payment(state, tenant, inp.payment_id)), response, prefer)
    if response.headers.get("Idempotent-Replayed"):
        return views.original_payment(answer, base)
    return views.payment(answer, base)


def _payment_input(tenant_id: str, key: str, body: PaymentCreate, s: Settings) -> PaymentInput:
    """The saga's input: exact money, the 2% fee, the request's fingerprint, the id from the key,
    and for a manual capture its window."""
    try:
        amount = to_minor(body.amount, body.currency, maximum=Decimal(s.max_amount))
    except MoneyError as err:
        raise money_problem(err, "currency" if err.code == "INVALID_CURRENCY" else "amount") from None
    now = datetime.now(UTC)
    asked: dict[str, Any] = {"user_id": body.user_id, "service_id": body.service_id,
                             "amount": amount, "currency": body.currency,
                             "description": body.description, "reference": body.reference,
                             "metadata": body.metadata}
    capture_before = None
    if body.capture_method == "manual":  # (an automatic payment's fingerprint is as it was)
        capture_before = _capture_before(body.capture_before, now, s).isoformat()
        asked |= {"capture_method": "manual", "capture_before":
                  body.capture_before.isoformat() if body.capture_before else None}
    elif body.capture_before is not None:
        raise _invalid("capture_before", "only a manual capture has a capture window")
    return PaymentInput(
        payment_id=payment_id(tenant_id, key), tenant_id=tenant_id, idempotency_key=key,
        fingerprint=fingerprint(asked), user_id=body.user_id, service_id=body.service_id,
        amount=amount, fee=fee_for(amount, s.fee_bps), currency=body.currency,
        created_at=now.isoformat(), description=body.description, reference=body.reference,
        metadata=body.metadata, policy=saga_policy(s), capture_method=body.capture_method,
        capture_before=capture_before, fee_bps=s.fee_bps)


def _capture_before(asked: datetime | None, now: datetime, s: Settings) -> datetime:
    """The authorization's window: as asked (5 s ahead at least, AUTHORIZATION_TTL_SECONDS at
    most), else the longest."""
    latest = now + timedelta(seconds=s.authorization_ttl_seconds)
    if asked is None:
        return latest
    if asked > latest:
        raise _invalid("capture_before", f"at most AUTHORIZATION_TTL_SECONDS "
                       f"({s.authorization_ttl_seconds} s) ahead: {views.rfc3339(latest)}")
    if asked < now + timedelta(seconds=5):
        raise _invalid("capture_before", "at least 5 seconds ahead")
    return asked.astimezone(UTC)


def _invalid(field: str, message: str) -> Problem:
    return Problem(400, "VALIDATION_ERROR", f"the request is invalid: {field}: {message}",
                   errors=[{"field": field, "message": message}])


async def _wait_for_outcome(state: AppState, tenant_id: str, pid: str, prefer: str | None,
                            response: Response) -> PaymentPublic | None:
    """With `Prefer: wait=N`: the payment once its current attempt settled, or None after N s.
    The workflow's `outcome` update answers; nothing polls."""
    seconds = wait_seconds(prefer)
    if seconds is None:
        return None
    applied(response, seconds)
    handle = state.temporal.get_workflow_handle(pid)
    try:
        await within(seconds, handle.execute_update(PaymentWorkflow.outcome))
    except Outlived:
        return None
    except RPCError as err:
        if err.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise  # else the workflow has closed: its outcome is recorded
    return views.payment(await load_payment(state, tenant_id, pid), state.settings.temporal_ui_workflow_base)


@router.get("/{pid}", response_model=PaymentPublic, responses=responses(401, 403, 404))
async def get_payment(principal: PaymentsRead, pid: str, state: StateDep) -> PaymentPublic:
    return views.payment(await load_payment(state, principal.tenant_id, pid),
                         state.settings.temporal_ui_workflow_base)


STATUSES = {status.value for status in PaymentStatus}
FAILURE_CODES = {code.value for code in FailureCode}


@router.get("", response_model=Page[PaymentPublic], responses=responses(400, 401, 403))
async def list_payments(
    principal: PaymentsRead, state: StateDep,
    status: Annotated[str | None, Query(
        description="one or more statuses, comma-separated: `failed,exhausted`",
        pattern=one_or_more(STATUSES), max_length=200)] = None,
    failure_code: Annotated[str | None, Query(
        description="one or more failure codes, comma-separated: `gateway_declined`",
        pattern=one_or_more(FAILURE_CODES), max_length=200)] = None,
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
    asked = pages.ask(limit, offset, starting_after)
    filters = payments.Filters(
        statuses=comma_list(status, STATUSES, "status"),
        failure_codes=comma_list(failure_code, FAILURE_CODES, "failure_code"),
        user_id=user_id, service_id=service_id, created_from=_aware(created_from),
        created_to=_aware(created_to))
    async with state.engine.connect() as conn:
        found = await payments.payments_page(conn, principal.tenant_id, filters, asked)
    base = state.settings.temporal_ui_workflow_base
    return pages.page(found, lambda r: views.payment(dict(r), base), asked)


def _aware(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


@router.get("/{pid}/events", response_model=Page[EventPublic], responses=responses(401, 403, 404))
async def payment_events(principal: PaymentsRead, pid: str, state: StateDep,
                         limit: Limit = 50, offset: Offset = 0,
                         starting_after: StartingAfter = None) -> Page[EventPublic]:
    """The saga's domain events, oldest first."""
    await load_payment(state, principal.tenant_id, pid)
    asked = pages.ask(limit, offset, starting_after)
    async with state.engine.connect() as conn:
        found = await events.payment_events_page(conn, pid, asked)
    return pages.page(found, lambda r: EventPublic(id=r["id"], type=r["type"], data=r["data"],
                                                   created_at=views.rfc3339(r["created_at"])),
                      asked)


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
        return views.payment(await load_payment(state, principal.tenant_id, pid),
                             state.settings.temporal_ui_workflow_base)
    return accepted


@router.post("/{pid}/cancel", status_code=200, response_model=PaymentPublic,
             responses=responses(401, 403, 404, 409))
async def cancel_payment(principal: PaymentsWrite, pid: str, state: StateDep) -> PaymentPublic:
    """Cancel a payment that has not reached the gateway, or void a `requires_capture` one's
    authorization; any hold is released."""
    after = await _operate(state, principal, pid, PaymentWorkflow.request_cancel,
                           "CANNOT_CANCEL_PAYMENT", "canceled")
    if after.status != PaymentStatus.CANCELED.value:  # a capture settled it first
        raise _conflict("CANNOT_CANCEL_PAYMENT", f"payment {pid} was not canceled: it is "
                        f"{after.status}", after.model_dump())
    return after


@router.post("/{pid}/capture", status_code=200, response_model=PaymentPublic,
             responses=responses(400, 401, 403, 404, 409))
async def capture_payment(principal: PaymentsWrite, pid: str, state: StateDep,
                          body: CaptureCreate | None = None) -> PaymentPublic:
    """Capture a `requires_capture` payment (authorized with `capture_method: manual`): all of
    its authorization, or `{"amount": "6.00"}` (at most what was authorized). The wallet is
    debited the captured amount and its fee (recomputed on it), the rest of the hold released;
    answers the payment `completed`. Once per payment: a second capture, a voided or expired
    authorization, or a payment not waiting for a capture is 409 CANNOT_CAPTURE_PAYMENT; an
    amount above the authorized one 400."""
    found = await load_payment(state, principal.tenant_id, pid)
    # the saga checks the amount against its authorization (and the currency's minor unit)
    asked = CaptureRequest(None if body is None or body.amount is None else str(body.amount))
    after: PaymentState = await run_update(state, found, PaymentWorkflow.capture, asked,
                                           code="CANNOT_CAPTURE_PAYMENT", verb="captured")
    payment = await load_payment(state, principal.tenant_id, pid)
    if after.status != PaymentStatus.COMPLETED.value:
        raise _conflict("CANNOT_CAPTURE_PAYMENT", f"payment {pid} was not captured: it is "
                        f"{after.status} ({after.failure_message or 'its authorization ended'})",
                        payment)
    return views.payment(payment, state.settings.temporal_ui_workflow_base)


async def _operate(state: AppState, principal: Principal, pid: str, update: Any, code: str,
                   verb: str) -> PaymentPublic:
    """Run a retry or cancel update, saying who asked (the API key's id)."""
    found = await load_payment(state, principal.tenant_id, pid)
    await run_update(state, found, update, f"api-key:{principal.key_id}", code=code, verb=verb)
    return views.payment(await load_payment(state, principal.tenant_id, pid),
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
        if isinstance(cause, ApplicationError) and cause.type == "InvalidCaptureAmount":
            raise _invalid("amount", message.removeprefix("amount: ")) from None
        raise _conflict(code, message, found) from None
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION) and \
                not await workflow_running(state.temporal, found["id"]):
            raise _conflict(code, f"payment {found['id']} cannot be {verb}: it is "
                            f"{found['status']}", found) from None
        raise


def _conflict(code: str, message: str, found: dict[str, Any]) -> Problem:
    return Problem(409, code, message, extra={
        "payment_status": found["status"], "manual_retries": found.get("manual_retries", 0),
        "max_manual_retries": found.get("max_manual_retries")})
