"""Money in and out: top-ups (a card charged through the gateway, the wallet credited) and
withdrawals (amount + fee held, a payout through the gateway). Each is a saga of its own; starting
one is one Temporal call, reads come from the projection.

Idempotency as for payments: the id (= workflow id) is derived from (tenant, Idempotency-Key), a
repeated key answers the same resource (200, Idempotent-Replayed) if the request is the same, 422
if not, and concurrent duplicates start one saga.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Response

from api import pages, views
from api.creating import Saga, start_once
from api.deps import AppState, IdempotencyKey, StateDep, WalletsRead, WalletsWrite
from api.errors import Problem, money_problem, responses
from api.exact_json import ExactJSONRoute
from api.lookup import load_transfer
from api.pages import StartingAfter
from api.prefer import PreferHeader
from api.query import Limit, Offset
from api.schemas import (
    Instrument,
    Page,
    TopUpCreate,
    TransferPublic,
    WithdrawalCreate,
)
from contracts.transfers import TransferInput
from db import transfers
from domain.fees import fee_for
from domain.fingerprint import fingerprint
from domain.ids import top_up_id, withdrawal_id
from domain.money import MoneyError, to_major, to_minor
from temporal_client.start import saga_policy, start_transfer, transfer_view

router = APIRouter(prefix="/v1", tags=["top-ups and withdrawals"], route_class=ExactJSONRoute)
TOP_UP, WITHDRAWAL = transfers.TOP_UP, transfers.WITHDRAWAL
ACCEPTED = ("accepted: the saga runs; follow `links.self`. Also the answer to `Prefer: wait=N` "
            "when it outlives N s (with `Preference-Applied`): the state so far")
CREATED: dict[int | str, dict[str, Any]] = {
    200: {"model": TransferPublic, "description": "idempotent replay"},
    201: {"model": TransferPublic, "description": "with `Prefer: wait=N`: the outcome"}}


@router.post("/wallets/{wallet_id}/top-ups", status_code=202, response_model=TransferPublic,
             response_description=ACCEPTED, responses={**CREATED, **responses(400, 401, 403, 404,
                                                                              422)})
async def create_top_up(principal: WalletsWrite, wallet_id: str, key: IdempotencyKey,
                        body: TopUpCreate, state: StateDep, response: Response,
                        prefer: PreferHeader = None) -> TransferPublic:
    """Money in: the source is charged amount + fee (TOP_UP_FEE_PERCENT, default 2%) through
    the gateway, then the wallet is credited exactly the amount."""
    return await _create(state, principal.tenant_id, TOP_UP, wallet_id, key, body.amount,
                         body.source, state.settings.top_up_fee_bps, response, prefer)


@router.post("/wallets/{wallet_id}/withdrawals", status_code=202, response_model=TransferPublic,
             response_description=ACCEPTED, responses={**CREATED, **responses(400, 401, 403, 404,
                                                                              422)})
async def create_withdrawal(principal: WalletsWrite, wallet_id: str, key: IdempotencyKey,
                            body: WithdrawalCreate, state: StateDep, response: Response,
                            prefer: PreferHeader = None) -> TransferPublic:
    """Money out: amount + fee (WITHDRAWAL_FEE_PERCENT, default 2%) is held on the wallet, the
    amount paid out to the destination through the gateway, then the hold is debited (or released
    when the payout definitely failed). A wallet whose available balance cannot pay amount + fee
    answers 422 INSUFFICIENT_FUNDS at once (and nothing is created)."""
    return await _create(state, principal.tenant_id, WITHDRAWAL, wallet_id, key, body.amount,
                         body.destination, state.settings.withdrawal_fee_bps, response, prefer)


async def _create(state: AppState, tenant_id: str, kind: str, wallet_id: str, key: str,
                  amount_in: Any, instrument: Instrument, fee_bps: int, response: Response,
                  prefer: str | None) -> TransferPublic:
    s, base = state.settings, state.settings.temporal_ui_workflow_base
    wallet = await _wallet(state, tenant_id, wallet_id)
    t = _transfer_input(tenant_id, kind, key, wallet, amount_in, instrument, fee_bps, state)

    def refuse() -> None:
        if kind == WITHDRAWAL and wallet["balance"] < 0:
            raise Problem(409, "WALLET_RESTRICTED", "the wallet is restricted: a dispute took its "
                          "balance below zero; no withdrawal until it is back", extra={
                              "balance": to_major(wallet["balance"], t.currency)})
        if kind == WITHDRAWAL and wallet["balance"] - wallet["held"] < t.amount + t.fee:
            raise Problem(422, "INSUFFICIENT_FUNDS", "the wallet's available balance is lower "
                          "than amount plus fee", extra={"available": to_major(
                              wallet["balance"] - wallet["held"], t.currency)})

    async def start(seconds: float | None) -> bool:
        return await start_transfer(state.temporal, kind, t, s.temporal_task_queue, seconds)

    answer = await start_once(Saga(
        f"/v1/{views.PATHS[kind]}/{t.transfer_id}", t.fingerprint,
        {**transfer_view(kind, t), "status": "pending"}, start,
        lambda: transfers.projection(state.engine, tenant_id, kind, t.transfer_id),
        lambda: load_transfer(state, tenant_id, kind, t.transfer_id)), response, prefer, refuse)
    return views.transfer(answer, base)


def _transfer_input(tenant_id: str, kind: str, key: str, wallet: dict[str, Any], amount_in: Any,
                    instrument: Instrument, fee_bps: int, state: AppState) -> TransferInput:
    currency = wallet["currency"]
    try:
        amount = to_minor(amount_in, currency, maximum=Decimal(state.settings.max_amount))
    except MoneyError as err:
        raise money_problem(err, "amount") from None
    tid = (top_up_id if kind == TOP_UP else withdrawal_id)(tenant_id, key)
    given = instrument.model_dump()
    fp = fingerprint({"wallet_id": wallet["id"], "amount": amount, "instrument": given})
    return TransferInput(tid, tenant_id, key, fp, wallet["id"], amount, fee_for(amount, fee_bps),
                         currency, datetime.now(UTC).isoformat(), given,
                         saga_policy(state.settings))


async def _wallet(state: AppState, tenant_id: str, wallet_id: str) -> dict[str, Any]:
    found = await transfers.wallet(state.engine, tenant_id, wallet_id)
    if found is None:
        raise Problem(404, "WALLET_NOT_FOUND", f"no wallet {wallet_id}")
    return found


@router.get("/top-ups/{tid}", response_model=TransferPublic, responses=responses(401, 403, 404))
async def get_top_up(principal: WalletsRead, tid: str, state: StateDep) -> TransferPublic:
    return views.transfer(await load_transfer(state, principal.tenant_id, TOP_UP, tid),
                          state.settings.temporal_ui_workflow_base)


@router.get("/withdrawals/{tid}", response_model=TransferPublic,
            responses=responses(401, 403, 404))
async def get_withdrawal(principal: WalletsRead, tid: str, state: StateDep) -> TransferPublic:
    return views.transfer(await load_transfer(state, principal.tenant_id, WITHDRAWAL, tid),
                          state.settings.temporal_ui_workflow_base)


@router.get("/wallets/{wallet_id}/top-ups", response_model=Page[TransferPublic],
            responses=responses(400, 401, 403, 404))
async def list_top_ups(principal: WalletsRead, wallet_id: str, state: StateDep, limit: Limit = 50,
                       offset: Offset = 0, starting_after: StartingAfter = None,
                       ) -> Page[TransferPublic]:
    """The wallet's top-ups, newest first."""
    return await _list(state, principal.tenant_id, TOP_UP, wallet_id, limit, offset,
                       starting_after)


@router.get("/wallets/{wallet_id}/withdrawals", response_model=Page[TransferPublic],
            responses=responses(400, 401, 403, 404))
async def list_withdrawals(principal: WalletsRead, wallet_id: str, state: StateDep,
                           limit: Limit = 50, offset: Offset = 0,
                           starting_after: StartingAfter = None) -> Page[TransferPublic]:
    """The wallet's withdrawals, newest first."""
    return await _list(state, principal.tenant_id, WITHDRAWAL, wallet_id, limit, offset,
                       starting_after)


async def _list(state: AppState, tenant_id: str, kind: str, wallet_id: str, limit: int,
                offset: int, starting_after: str | None) -> Page[TransferPublic]:
    await _wallet(state, tenant_id, wallet_id)
    base = state.settings.temporal_ui_workflow_base
    asked = pages.ask(limit, offset, starting_after)
    async with state.engine.connect() as conn:
        found = await transfers.transfers_page(conn, wallet_id, kind, asked)
    return pages.page(found, lambda r: views.transfer(dict(r), base), asked)
