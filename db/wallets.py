"""Wallets and deposits: open a wallet, find one, list them, fund one (a deposit is one journal,
funding -x and wallet +x, with its outbox event, in the caller's transaction), and the wallet's
posted movements."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from db import ledger
from db.models import Account
from db.pages import Ask, Keyset, Page, Where, fetch
from domain.ids import new_id
from domain.money import to_major

COLUMNS = "id, user_id, currency, balance, held, disputed, version, created_at, updated_at"
WALLETS = Keyset("accounts", scope="tenant_id = :t AND kind = 'wallet'")
ENTRIES = Keyset("entries", ("id",), scope="account_id = :w", integer_ids=True)


async def open_wallet(conn: AsyncConnection, tenant_id: str, user_id: str,
                      currency: str) -> tuple[Any, bool]:
    """The user's wallet in `currency`, made if it did not exist: (row, made now)."""
    row = (await conn.execute(text(
        f"""
        INSERT INTO accounts (id, tenant_id, kind, user_id, currency)
        VALUES (:id, :t, 'wallet', :u, :c) ON CONFLICT DO NOTHING
        RETURNING {COLUMNS}
        """), {"id": new_id("wal"), "t": tenant_id, "u": user_id, "c": currency})).first()
    if row is not None:
        return row, True
    return (await conn.execute(text(
        f"SELECT {COLUMNS} FROM accounts WHERE tenant_id = :t AND kind = 'wallet' "
        "AND user_id = :u AND currency = :c"),
        {"t": tenant_id, "u": user_id, "c": currency})).one(), False


async def find(engine: AsyncEngine, tenant_id: str, wallet_id: str) -> Account | None:
    """The tenant's wallet (another tenant's is None)."""
    async with AsyncSession(engine) as session:
        return (await session.exec(select(Account).where(
            Account.tenant_id == tenant_id, Account.kind == "wallet",
            Account.id == wallet_id))).first()


async def wallets_page(conn: AsyncConnection, tenant_id: str, user_id: str | None,
                       ask: Ask) -> Page:
    """The tenant's wallets, newest first."""
    where = Where(["tenant_id = :t", "kind = 'wallet'"], {"t": tenant_id})
    if user_id:
        where.add("user_id = :u", u=user_id)
    return await fetch(conn, WALLETS, ask, select=COLUMNS, where=where)


async def entries_page(conn: AsyncConnection, wallet_id: str, ask: Ask) -> Page:
    """The wallet's posted ledger movements, newest first (holds are not movements)."""
    return await fetch(conn, ENTRIES, ask,
                       select="id, type, amount, balance_after, payment_id, created_at",
                       where=Where(["account_id = :w"], {"w": wallet_id}))


async def deposit(conn: AsyncConnection, *, deposit_id: str, tenant_id: str, wallet_id: str,
                  idempotency_key: str, fingerprint: str, amount: int,
                  currency: str) -> tuple[int, datetime]:
    """Fund the wallet: one journal (funding -x, wallet +x), the deposit row and its event;
    (balance after, created at). A second deposit with the same id is an IntegrityError."""
    journal = await ledger.journal(conn, "deposit", f"deposit:{deposit_id}", None, currency)
    created: datetime = (await conn.execute(text(
        """
        INSERT INTO deposits (id, tenant_id, wallet_id, idempotency_key, fingerprint,
                              amount, currency, journal_id)
        VALUES (:id, :t, :w, :k, :fp, :a, :c, :j)
        RETURNING created_at
        """), {"id": deposit_id, "t": tenant_id, "w": wallet_id, "k": idempotency_key,
               "fp": fingerprint, "a": amount, "c": currency, "j": journal})).scalar_one()
    after: int = (await conn.execute(text(
        "UPDATE accounts SET balance = balance + :a, version = version + 1, "
        "updated_at = now() WHERE id = :w RETURNING balance"),
        {"a": amount, "w": wallet_id})).scalar_one()
    funding = await ledger.system_account(conn, "funding", currency)
    await ledger.entries(conn, journal, currency, None, [
        (wallet_id, "deposit", amount, after), (funding, "deposit", -amount, None)])
    await ledger.emit(conn, "wallet.funds_deposited", tenant_id, None, 0,
                      {"wallet_id": wallet_id, "deposit_id": deposit_id,
                       "amount": to_major(amount, currency), "currency": currency,
                       "balance_after": to_major(after, currency)}, wallet_id=wallet_id,
                      dedupe=f"{deposit_id}:deposited")
    return after, created


async def find_deposit(conn: AsyncConnection, deposit_id: str) -> Any | None:
    """A deposit made before (id, wallet_id, amount, currency, fingerprint, created_at,
    balance_after), or None."""
    return (await conn.execute(text(
        """
        SELECT d.id, d.wallet_id, d.amount, d.currency, d.fingerprint, d.created_at, e.balance_after
        FROM deposits d JOIN entries e ON e.journal_id = d.journal_id AND e.account_id = d.wallet_id
        WHERE d.id = :id
        """), {"id": deposit_id})).first()
