"""Wallets, deposits and the wallet's ledger movements."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api import pages, views
from api.deps import IdempotencyKey, StateDep, WalletsRead, WalletsWrite
from api.errors import Problem, money_problem, responses
from api.exact_json import ExactJSONRoute
from api.pages import Keyset, StartingAfter
from api.query import Limit, Offset
from api.schemas import (
    DepositCreate,
    DepositPublic,
    Page,
    TransactionPublic,
    WalletCreate,
    WalletPublic,
)
from db import ledger
from db.models import Account
from domain.fingerprint import fingerprint
from domain.ids import deposit_id, new_id
from domain.money import MoneyError, currency_exponent, to_major, to_minor

router = APIRouter(prefix="/v1/wallets", tags=["wallets"], route_class=ExactJSONRoute)
WALLET_COLUMNS = "id, user_id, currency, balance, held, version, created_at, updated_at"
WALLETS = Keyset("accounts", scope="tenant_id = :t AND kind = 'wallet'")
ENTRIES = Keyset("entries", ("id",), scope="account_id = :w", integer_ids=True)


def _wallets(tenant_id: str) -> Any:
    return select(Account).where(Account.tenant_id == tenant_id, Account.kind == "wallet")


async def _wallet_row(state: StateDep, tenant_id: str, wallet_id: str) -> Account:
    async with AsyncSession(state.engine) as session:
        wallet = (await session.exec(_wallets(tenant_id).where(Account.id == wallet_id))).first()
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
        row = (await conn.execute(text(
            f"""
            INSERT INTO accounts (id, tenant_id, kind, user_id, currency)
            VALUES (:id, :t, 'wallet', :u, :c) ON CONFLICT DO NOTHING
            RETURNING {WALLET_COLUMNS}
            """), {"id": new_id("wal"), "t": principal.tenant_id, "u": body.user_id,
                   "c": body.currency})).first()
        if row is None:
            response.status_code = 200
            row = (await conn.execute(text(
                f"SELECT {WALLET_COLUMNS} FROM accounts WHERE tenant_id = :t AND kind = 'wallet' "
                "AND user_id = :u AND currency = :c"),
                {"t": principal.tenant_id, "u": body.user_id, "c": body.currency})).one()
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
    where = ["tenant_id = :t", "kind = 'wallet'"]
    params: dict[str, Any] = {"t": principal.tenant_id}
    if user_id:
        where.append("user_id = :u")
        params["u"] = user_id
    async with state.engine.connect() as conn:
        rows, more, total = await pages.fetch(
            conn, WALLETS, select=WALLET_COLUMNS, where=where, params=params, limit=limit,
            offset=offset, starting_after=starting_after)
    return pages.page(rows, lambda r: views.wallet(SimpleNamespace(**r)), has_more=more,
                      limit=limit, offset=offset, total=total)


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
            replay = await _deposit_replay(conn, dep_id, fp)
            if replay is not None:
                response.status_code = 200
                response.headers["Idempotent-Replayed"] = "true"
                return replay
            journal = await ledger.journal(conn, "deposit", f"deposit:{dep_id}", None, currency)
            await conn.execute(text(
                """
                INSERT INTO deposits (id, tenant_id, wallet_id, idempotency_key, fingerprint,
                                      amount, currency, journal_id)
                VALUES (:id, :t, :w, :k, :fp, :a, :c, :j)
                """), {"id": dep_id, "t": principal.tenant_id, "w": wallet_id, "k": key, "fp": fp,
                       "a": amount, "c": currency, "j": journal})
            after = (await conn.execute(text(
                "UPDATE accounts SET balance = balance + :a, version = version + 1, "
                "updated_at = now() WHERE id = :w RETURNING balance"),
                {"a": amount, "w": wallet_id})).scalar_one()
            funding = await ledger.system_account(conn, "funding", currency)
            await ledger.entries(conn, journal, currency, None, [
                (wallet_id, "deposit", amount, after), (funding, "deposit", -amount, None)])
            await ledger.emit(conn, "wallet.funds_deposited", principal.tenant_id, None, 0,
                              {"wallet_id": wallet_id, "deposit_id": dep_id,
                               "amount": to_major(amount, currency), "currency": currency,
                               "balance_after": to_major(after, currency)}, wallet_id=wallet_id,
                              dedupe=f"{dep_id}:deposited")
            created = (await conn.execute(text("SELECT created_at FROM deposits WHERE id = :id"),
                                          {"id": dep_id})).scalar_one()
    except IntegrityError:
        # A concurrent request with the same key won the race: answer as its replay.
        async with state.engine.connect() as conn:
            replay = await _deposit_replay(conn, dep_id, fp)
        if replay is None:
            raise
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
        return replay
    return DepositPublic(id=dep_id, wallet_id=wallet_id, amount=to_major(amount, currency),
                         currency=currency, balance_after=to_major(after, currency),
                         created_at=views.rfc3339(created))


async def _deposit_replay(conn: object, dep_id: str, fp: str) -> DepositPublic | None:
    row = (await conn.execute(text(  # type: ignore[attr-defined]
        """
        SELECT d.id, d.wallet_id, d.amount, d.currency, d.fingerprint, d.created_at, e.balance_after
        FROM deposits d JOIN entries e ON e.journal_id = d.journal_id AND e.account_id = d.wallet_id
        WHERE d.id = :id
        """), {"id": dep_id})).first()
    if row is None:
        return None
    if row.fingerprint != fp:
        raise Problem(422, "IDEMPOTENCY_KEY_REUSED",
                      "this Idempotency-Key was used with a different request")
    return DepositPublic(id=row.id, wallet_id=row.wallet_id, amount=to_major(row.amount, row.currency),
                         currency=row.currency, balance_after=to_major(row.balance_after, row.currency),
                         created_at=views.rfc3339(row.created_at))


@router.get("/{wallet_id}/transactions", response_model=Page[TransactionPublic],
            responses=responses(400, 401, 403, 404))
async def transactions(principal: WalletsRead, wallet_id: str, state: StateDep,
                       limit: Limit = 50, offset: Offset = 0,
                       starting_after: StartingAfter = None) -> Page[TransactionPublic]:
    """The wallet's posted ledger movements, newest first (holds are not movements)."""
    wallet = await _wallet_row(state, principal.tenant_id, wallet_id)
    async with state.engine.connect() as conn:
        rows, more, total = await pages.fetch(
            conn, ENTRIES, select="id, type, amount, balance_after, payment_id, created_at",
            where=["account_id = :w"], params={"w": wallet_id}, limit=limit, offset=offset,
            starting_after=starting_after)
    return pages.page(rows, lambda r: views.transaction(SimpleNamespace(**r), wallet.currency),
                      has_more=more, limit=limit, offset=offset, total=total)
