"""Wallets, deposits and the wallet's ledger movements."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy.exc import IntegrityError

from api import pages, views
from api.creating import replay
from api.deps import IdempotencyKey, StateDep, WalletsRead, WalletsWrite
from api.errors import Problem, money_problem, responses
from api.exact_json import ExactJSONRoute
from api.pages import StartingAfter
from api.query import Limit, Offset
from api.schemas import (
    DepositCreate,
    DepositPublic,
    Page,
    TransactionPublic,
    WalletCreate,
    WalletPublic,
)
from db import wallets
from db.models import Account
from domain.fingerprint import fingerprint
from domain.ids import deposit_id
from domain.money import MoneyError, currency_exponent, to_major, to_minor

router = APIRouter(prefix="/v1/wallets", tags=["wallets"], route_class=ExactJSONRoute)


async def _wallet_row(state: StateDep, tenant_id: str, wallet_id: str) -> Account:
    wallet = await wallets.find(state.engine, tenant_id, wallet_id)
    if wallet is None:
        raise Problem(404, "WALLET_NOT_FOUND", f"no wallet {wallet_id}")
    return wallet


@router.post("", status_code=201, response_model=WalletPublic,
             responses={200: {"model": WalletPublic, "description": "the wallet existed"},
                        **responses(400, 401, 403)})
async def create_wallet(principal: WalletsWrite, body: WalletCreate, state: StateDep,
                        response: Response) -> WalletPublic:
    """Open the user's wallet in a currency; 200 with the same wallet if it already exists."""
    try:
        currency_exponent(body.currency)
    except MoneyError as err:
        raise money_problem(err, "currency") from None
    async with state.engine.begin() as conn:
        row, made = await wallets.open_wallet(conn, principal.tenant_id, body.user_id,
                                              body.currency)
    if not made:
        response.status_code = 200
    return views.wallet(row)


@router.get("/{wallet_id}", response_model=WalletPublic, responses=responses(401, 403, 404))
async def get_wallet(principal: WalletsRead, wallet_id: str, state: StateDep) -> WalletPublic:
    return views.wallet(await _wallet_row(state, principal.tenant_id, wallet_id))


@router.get("", response_model=Page[WalletPublic], responses=responses(400, 401, 403))
async def list_wallets(principal: WalletsRead, state: StateDep,
                       user_id: Annotated[str | None, Query(max_length=128)] = None,
                       limit: Limit = 50, offset: Offset = 0,
                       starting_after: StartingAfter = None) -> Page[WalletPublic]:
    """The tenant's wallets, newest first."""
    asked = pages.ask(limit, offset, starting_after)
    async with state.engine.connect() as conn:
        found = await wallets.wallets_page(conn, principal.tenant_id, user_id, asked)
    return pages.page(found, lambda r: views.wallet(SimpleNamespace(**r)), asked)


@router.post("/{wallet_id}/deposits", status_code=201, response_model=DepositPublic,
             responses={200: {"model": DepositPublic, "description": "idempotent replay"},
                        **responses(400, 401, 403, 404, 422)})
async def deposit(principal: WalletsWrite, wallet_id: str, key: IdempotencyKey,
                  body: DepositCreate, state: StateDep, response: Response) -> DepositPublic:
    """Fund a wallet: one journal (funding -x, wallet +x), exactly once per Idempotency-Key."""
    wallet = await _wallet_row(state, principal.tenant_id, wallet_id)
    currency = wallet.currency
    try:
        amount = to_minor(body.amount, currency, maximum=Decimal(state.settings.max_amount))
    except MoneyError as err:
        raise money_problem(err, "amount") from None
    fp = fingerprint({"wallet_id": wallet_id, "amount": amount})
    dep_id = deposit_id(principal.tenant_id, key)
    try:
        async with state.engine.begin() as conn:
            before = await wallets.find_deposit(conn, dep_id)
            if before is not None:
                replay(response, before.fingerprint, fp)
                return _deposit(before)
            after, created = await wallets.deposit(
                conn, deposit_id=dep_id, tenant_id=principal.tenant_id, wallet_id=wallet_id,
                idempotency_key=key, fingerprint=fp, amount=amount, currency=currency)
    except IntegrityError:
        # A concurrent request with the same key won the race: answer as its replay.
        async with state.engine.connect() as conn:
            before = await wallets.find_deposit(conn, dep_id)
        if before is None:
            raise
        replay(response, before.fingerprint, fp)
        return _deposit(before)
    return DepositPublic(id=dep_id, wallet_id=wallet_id, amount=to_major(amount, currency),
                         currency=currency, balance_after=to_major(after, currency),
                         created_at=views.rfc3339(created))


def _deposit(r: Any) -> DepositPublic:
    return DepositPublic(id=r.id, wallet_id=r.wallet_id, amount=to_major(r.amount, r.currency),
                         currency=r.currency, balance_after=to_major(r.balance_after, r.currency),
                         created_at=views.rfc3339(r.created_at))


@router.get("/{wallet_id}/transactions", response_model=Page[TransactionPublic],
            responses=responses(400, 401, 403, 404))
async def transactions(principal: WalletsRead, wallet_id: str, state: StateDep,
                       limit: Limit = 50, offset: Offset = 0,
                       starting_after: StartingAfter = None) -> Page[TransactionPublic]:
    """The wallet's posted ledger movements, newest first (holds are not movements)."""
    wallet = await _wallet_row(state, principal.tenant_id, wallet_id)
    asked = pages.ask(limit, offset, starting_after)
    async with state.engine.connect() as conn:
        found = await wallets.entries_page(conn, wallet_id, asked)
    return pages.page(found, lambda r: views.transaction(SimpleNamespace(**r), wallet.currency),
                      asked)
