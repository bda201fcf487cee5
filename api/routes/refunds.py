"""Refunds: reserved on the payment in PostgreSQL, then carried out by their own saga."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Response

from api import pages
from api.creating import replay
from api.deps import AppState, IdempotencyKey, PaymentsRead, PaymentsWrite, StateDep
from api.errors import Problem, money_problem, responses
from api.exact_json import ExactJSONRoute
from api.lookup import load_payment
from api.pages import StartingAfter
from api.query import Limit, Offset
from api.schemas import Page, RefundCreate, RefundPublic
from contracts.refund import RefundStep, RefundView
from db import refunds
from domain.fingerprint import fingerprint
from domain.ids import refund_id, refund_id_before_v2
from domain.money import MoneyError, to_major, to_minor
from temporal_client.start import start_refund

router = APIRouter(prefix="/v1/payments", tags=["refunds"], route_class=ExactJSONRoute)


def _public(view: RefundView, payment: dict[str, Any]) -> RefundPublic:
    c = payment["currency"]
    return RefundPublic(id=view.refund_id, payment_id=payment["id"], amount=to_major(view.amount, c),
                        fee=to_major(view.fee, c), currency=c, status=view.status,
                        reason=view.reason, failure_message=view.failure_message)


async def _stored(state: AppState, rid: str) -> RefundView | None:
    async with state.engine.connect() as conn:
        return await refunds.find(conn, rid)


@router.post("/{pid}/refunds", status_code=202, response_model=RefundPublic,
             responses={200: {"model": RefundPublic, "description": "idempotent replay"},
                        **responses(400, 401, 403, 404, 409, 422)})
async def create_refund(principal: PaymentsWrite, pid: str, key: IdempotencyKey, body: RefundCreate,
                        state: StateDep, response: Response) -> RefundPublic:
    """Refund all or part of a completed payment; the wallet gets the amount plus its fee share.

    The amount is reserved on the payment first (so concurrent refunds never exceed it), then the
    refund's own saga (a `Refund` workflow whose id is the refund's id) is started."""
    payment = await load_payment(state, principal.tenant_id, pid)
    amount = 0
    if body.amount is not None:
        try:
            amount = to_minor(body.amount, payment["currency"], maximum=Decimal(state.settings.max_amount))
        except MoneyError as err:
            raise money_problem(err, "amount") from None
    rid = refund_id(principal.tenant_id, key)
    fp = fingerprint({"amount": amount, "reason": body.reason})
    response.headers["Location"] = f"/v1/payments/{pid}/refunds"
    for known in (rid, refund_id_before_v2(pid, key)):
        view = await _stored(state, known)
        if view is not None:
            return await _replay(state, view, fp, pid, payment, response)

    async with state.engine.connect() as conn, conn.begin() as tx:
        reserved = await refunds.reserve(conn, refund_id=rid, payment_id=pid,
                                         tenant_id=principal.tenant_id, amount=amount,
                                         fingerprint=fp, reason=body.reason)
        if not isinstance(reserved, RefundStep):
            await tx.rollback()
    if not isinstance(reserved, RefundStep):
        view = await _stored(state, rid)
        if view is not None:  # a concurrent request with this key got there first
            return await _replay(state, view, fp, pid, payment, response)
        assert reserved is not None
        c = payment["currency"]
        raise Problem(409, "CANNOT_REFUND_PAYMENT",
                      f"payment {pid} cannot be refunded: status {reserved.status}, "
                      f"{to_major(reserved.refundable, c)} {c} left to refund",
                      extra={"payment_status": reserved.status,
                             "refundable": to_major(reserved.refundable, c)})
    await start_refund(state.temporal, state.settings, reserved)
    return _public(RefundView(rid, reserved.amount, reserved.fee, "pending", fp, body.reason), payment)


async def _replay(state: AppState, view: RefundView, fp: str, pid: str, payment: dict[str, Any],
                  response: Response) -> RefundPublic:
    replay(response, view.fingerprint if view.payment_id in (None, pid) else None, fp)
    if view.status == "pending" and view.refund_id.startswith("rfd_"):
        # the first request may have stopped between the reservation and the start
        async with state.engine.connect() as conn:
            step = await refunds.pending_step(conn, view.refund_id)
        if step is not None:
            await start_refund(state.temporal, state.settings, step)
    return _public(view, payment)


@router.get("/{pid}/refunds", response_model=Page[RefundPublic], responses=responses(401, 403, 404))
async def list_refunds(principal: PaymentsRead, pid: str, state: StateDep,
                       limit: Limit = 50, offset: Offset = 0,
                       starting_after: StartingAfter = None) -> Page[RefundPublic]:
    """The payment's refunds, oldest first."""
    payment = await load_payment(state, principal.tenant_id, pid)
    asked = pages.ask(limit, offset, starting_after)
    async with state.engine.connect() as conn:
        found = await refunds.refunds_page(conn, pid, asked)
    return pages.page(found, lambda r: _public(RefundView(
        r["id"], r["amount"], r["fee"], r["status"], r["fingerprint"], r["reason"],
        r["failure_message"]), payment), asked)
