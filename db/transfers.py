"""Money in and out in the ledger, behind the same door as payments: a top-up credits the wallet
once its card is charged; a withdrawal holds amount + fee, then debits the hold once the payout is
made or releases it. Each statement writes the transfer's projection and its domain events in the
caller's transaction (none commits), and is idempotent by the transfer's id.

    top-up      settlement -(amount + fee)   wallet +amount   fees +fee
    withdrawal  wallet -(amount + fee)       settlement +amount   fees +fee
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio.exceptions import ApplicationError

from contracts.payment import PAYMENT_CONFLICT, AwaitProcessor
from contracts.saga import ConnectorPlan, Failover
from contracts.transfers import Opened, OpenTransfer, SettleTransfer
from db import direct, ledger
from db.ledger import Event
from db.pages import Ask, Keyset, Page, Where, fetch
from domain.money import to_major as money
from domain.status import FailureCode

TOP_UP, WITHDRAWAL = "top_up", "withdrawal"
COLUMNS = ("id, kind, tenant_id, fingerprint, wallet_id, amount, fee, currency, status, "
           "failure_code, failure_message, gateway_reference, connector, routing_reason, "
           "created_at, updated_at")


_PROJECTION = text(f"SELECT {COLUMNS} FROM transfers WHERE id = :id AND tenant_id = :t AND kind = :k")
_WALLET = text("SELECT id, currency, balance, held FROM accounts "
               "WHERE id = :w AND tenant_id = :t AND kind = 'wallet'")


async def projection(engine: AsyncEngine, tenant_id: str, kind: str,
                     transfer_id: str) -> dict[str, Any] | None:
    async with direct.connect(engine) as conn:
        row = (await conn.execute(_PROJECTION, {"id": transfer_id, "t": tenant_id, "k": kind})
               ).mappings().first()
    return dict(row) if row else None


LISTED = Keyset("transfers", scope="wallet_id = :w AND kind = :k")


async def transfers_page(conn: AsyncConnection, wallet_id: str, kind: str, ask: Ask) -> Page:
    """The wallet's top-ups or withdrawals, newest first."""
    return await fetch(conn, LISTED, ask, select=COLUMNS,
                       where=Where(["wallet_id = :w", "kind = :k"], {"w": wallet_id, "k": kind}))


async def wallet(engine: AsyncEngine, tenant_id: str, wallet_id: str) -> dict[str, Any] | None:
    """The tenant's wallet: its id, currency, balance and held amount (None: not the tenant's)."""
    async with direct.connect(engine) as conn:
        row = (await conn.execute(_WALLET, {"w": wallet_id, "t": tenant_id})).mappings().first()
    return dict(row) if row else None


async def open_transfer(conn: AsyncConnection, kind: str, step: OpenTransfer,
                        plans: list[ConnectorPlan], why: str | None) -> bool:
    """The transfer's projection and its `<kind>.initiated` event; False when a retried step
    finds it opened (PaymentConflict when an earlier run, whose history is gone, used the id)."""
    t = step.transfer
    connector = plans[0].name if plans else None
    made = (await conn.execute(text(
        """
        INSERT INTO transfers (id, kind, tenant_id, idempotency_key, fingerprint, run_id,
            wallet_id, amount, fee, currency, status, connector, routing_reason, instrument,
            created_at)
        VALUES (:id, :kind, :t, :key, :fp, :run, :w, :amount, :fee, :c, 'processing', :connector,
            :why, CAST(:instrument AS JSONB), :created)
        ON CONFLICT DO NOTHING RETURNING id
        """), {"id": t.transfer_id, "kind": kind, "t": t.tenant_id, "key": t.idempotency_key,
               "fp": t.fingerprint, "run": step.run_id, "w": t.wallet_id, "amount": t.amount,
               "fee": t.fee, "c": t.currency, "connector": connector, "why": why,
               "instrument": json.dumps(t.instrument),
               "created": datetime.fromisoformat(t.created_at)})).first()
    if made is None:
        owner = (await conn.execute(text("SELECT run_id FROM transfers WHERE id = :id"),
                                    {"id": t.transfer_id})).scalar()
        if owner != step.run_id:
            raise ApplicationError(f"{kind} {t.transfer_id} already exists", type=PAYMENT_CONFLICT,
                                   non_retryable=True)
        return False
    await ledger.emit_all(conn, [Event(f"{kind}.initiated", t.tenant_id, None, 0, {
        f"{kind}_id": t.transfer_id, "wallet_id": t.wallet_id, "amount": money(t.amount, t.currency),
        "fee": money(t.fee, t.currency), "currency": t.currency, "connector": connector},
        wallet_id=t.wallet_id, dedupe=f"{t.transfer_id}:initiated")])
    return True


async def open_top_up(conn: AsyncConnection, step: OpenTransfer, plans: list[ConnectorPlan],
                      why: str | None) -> Opened:
    await open_transfer(conn, TOP_UP, step, plans, why)
    return Opened(True, plans, why)


async def open_withdrawal(conn: AsyncConnection, step: OpenTransfer, plans: list[ConnectorPlan],
                          why: str | None) -> tuple[Opened, datetime | None]:
    """Open the withdrawal and hold amount + fee in one conditional statement (concurrent
    withdrawals and payments can never overdraw the wallet); when the wallet cannot pay, the
    withdrawal fails `insufficient_funds` here (then, as `settle`, its creation time when this
    call recorded that)."""
    t = step.transfer
    fresh = await open_transfer(conn, WITHDRAWAL, step, plans, why)
    if not fresh:
        state = (await conn.execute(text(
            "SELECT status, failure_code, failure_message FROM transfers WHERE id = :id"),
            {"id": t.transfer_id})).one()
        if state.failure_code == FailureCode.INSUFFICIENT_FUNDS:
            return Opened(False, plans, why, state.failure_code, state.failure_message), None
        held = (await conn.execute(text("SELECT 1 FROM holds WHERE payment_id = :id"),
                                   {"id": t.transfer_id})).first()
        if held is not None:
            return Opened(True, plans, why), None
    total = t.amount + t.fee
    reserved = (await conn.execute(text(
        """
        UPDATE accounts SET held = held + :total, version = version + 1, updated_at = now()
        WHERE id = :w AND kind = 'wallet' AND balance - held >= :total
        RETURNING version
        """), {"w": t.wallet_id, "total": total})).first()
    if reserved is None:
        message = "the wallet's available balance is lower than amount plus fee"
        recorded = await settle(conn, WITHDRAWAL, SettleTransfer(
            t.transfer_id, t.tenant_id, False, failure_code=FailureCode.INSUFFICIENT_FUNDS,
            failure_message=message))
        return Opened(False, plans, why, FailureCode.INSUFFICIENT_FUNDS, message), recorded
    await conn.execute(text(
        "INSERT INTO holds (id, payment_id, attempt, wallet_id, amount, status, expires_at) "
        "VALUES (:id, :p, 0, :w, :amount, 'active', :expires)"),
        {"id": f"hold_{t.transfer_id}_0", "p": t.transfer_id, "w": t.wallet_id, "amount": total,
         "expires": datetime.fromisoformat(step.expires_at)})
    await ledger.emit(conn, "wallet.funds_reserved", t.tenant_id, None, 0, {
        "withdrawal_id": t.transfer_id, "wallet_id": t.wallet_id, "amount": money(total, t.currency),
        "currency": t.currency, "expires_at": step.expires_at, "wallet_version": reserved.version},
        wallet_id=t.wallet_id, dedupe=f"{t.transfer_id}:funds_reserved")
    return Opened(True, plans, why), None


async def settle(conn: AsyncConnection, kind: str, step: SettleTransfer) -> datetime | None:
    """Record the transfer's outcome: its money moves (a top-up's credit, a withdrawal's debit of
    its hold, or the hold's release) with the projection and the event. The transfer's creation
    time when this call recorded it; None when a retried step finds it recorded."""
    t = (await conn.execute(text(
        "UPDATE transfers SET status = :s, gateway_reference = COALESCE(:ref, gateway_reference), "
        "connector = COALESCE(:conn, connector), failure_code = :code, failure_message = :msg, "
        "version = version + 1, updated_at = now() "
        "WHERE id = :id AND status = 'processing' "
        "RETURNING tenant_id, wallet_id, amount, fee, currency, created_at"),
        {"s": "succeeded" if step.succeeded else "failed", "ref": step.gateway_reference,
         "conn": step.connector, "code": step.failure_code, "msg": step.failure_message,
         "id": step.transfer_id})).first()
    if t is None:
        return None  # recorded before
    c = t.currency
    data: dict[str, Any] = {f"{kind}_id": step.transfer_id, "wallet_id": t.wallet_id,
                            "amount": money(t.amount, c), "fee": money(t.fee, c), "currency": c}
    if step.succeeded:
        after = await (_credit if kind == TOP_UP else _debit)(conn, step.transfer_id, t)
        data |= {"gateway_reference": step.gateway_reference, "connector": step.connector,
                 "balance_after": money(after, c)}
    else:
        if kind == WITHDRAWAL:
            await _release(conn, step.transfer_id, t, step.failure_code or "failed")
        data |= {"code": step.failure_code, "message": step.failure_message}
    outcome = "succeeded" if step.succeeded else "failed"
    await ledger.emit(conn, f"{kind}.{outcome}", t.tenant_id, None, 0, data, wallet_id=t.wallet_id,
                      dedupe=f"{step.transfer_id}:{outcome}")
    created: datetime = t.created_at
    return created


async def _credit(conn: AsyncConnection, transfer_id: str, t: Any) -> int:
    """The charge came in: the wallet gets the amount, the fee account the fee."""
    journal = await ledger.journal(conn, TOP_UP, f"top_up:{transfer_id}", None, t.currency)
    after: int = (await conn.execute(text(
        "UPDATE accounts SET balance = balance + :a, version = version + 1, updated_at = now() "
        "WHERE id = :w RETURNING balance"), {"a": t.amount, "w": t.wallet_id})).scalar_one()
    settlement = await ledger.system_account(conn, "settlement", t.currency)
    fees = await ledger.system_account(conn, "fees", t.currency)
    await ledger.entries(conn, journal, t.currency, None, [
        (t.wallet_id, "top_up", t.amount, after),
        (fees, "top_up_fee", t.fee, None),
        (settlement, "top_up", -(t.amount + t.fee), None),
    ])
    return after


async def _debit(conn: AsyncConnection, transfer_id: str, t: Any) -> int:
    """The payout went out: the hold is captured, the wallet debited amount + fee."""
    total = t.amount + t.fee
    captured = (await conn.execute(text(
        "UPDATE holds SET status = 'captured', updated_at = now() "
        "WHERE payment_id = :id AND attempt = 0 AND status = 'active' RETURNING id"),
        {"id": transfer_id})).first()
    if captured is None:
        raise ApplicationError(f"no active hold for withdrawal {transfer_id}; an operator must "
                               "reconcile")
    after: int = (await conn.execute(text(
        "UPDATE accounts SET balance = balance - :t, held = held - :t, version = version + 1, "
        "updated_at = now() WHERE id = :w RETURNING balance"),
        {"t": total, "w": t.wallet_id})).scalar_one()
    journal = await ledger.journal(conn, WITHDRAWAL, f"withdrawal:{transfer_id}", None, t.currency)
    settlement = await ledger.system_account(conn, "settlement", t.currency)
    fees = await ledger.system_account(conn, "fees", t.currency)
    await ledger.entries(conn, journal, t.currency, None, [
        (t.wallet_id, "withdrawal", -t.amount, after + t.fee),
        (t.wallet_id, "withdrawal_fee", -t.fee, after),
        (settlement, "withdrawal", t.amount, None),
        (fees, "withdrawal_fee", t.fee, None),
    ])
    return after


async def _release(conn: AsyncConnection, transfer_id: str, t: Any, reason: str) -> None:
    hold = (await conn.execute(text(
        "UPDATE holds SET status = 'released', reason = :r, updated_at = now() "
        "WHERE payment_id = :id AND attempt = 0 AND status = 'active' RETURNING amount"),
        {"id": transfer_id, "r": reason})).first()
    if hold is None:
        return  # never held (insufficient funds)
    await conn.execute(text(
        "UPDATE accounts SET held = held - :a, version = version + 1, updated_at = now() "
        "WHERE id = :w"), {"a": hold.amount, "w": t.wallet_id})
    await ledger.emit(conn, "wallet.funds_released", t.tenant_id, None, 0, {
        "withdrawal_id": transfer_id, "wallet_id": t.wallet_id,
        "amount": money(hold.amount, t.currency), "currency": t.currency, "reason": reason},
        wallet_id=t.wallet_id, dedupe=f"{transfer_id}:funds_released")


async def record_failover(conn: AsyncConnection, step: Failover) -> None:
    """A top-up's charge moves to the next connector: on the top-up, and on its timeline."""
    row = (await conn.execute(text(
        "UPDATE transfers SET connector = :c, version = version + 1, updated_at = now() "
        "WHERE id = :id RETURNING wallet_id"), {"c": step.target, "id": step.payment_id})).first()
    await ledger.emit(conn, "gateway.failover", step.tenant_id, None, 0, {
        "top_up_id": step.payment_id, "from": step.source, "to": step.target,
        "reason": step.reason}, wallet_id=row.wallet_id if row else None,
        dedupe=f"{step.payment_id}:failover:{step.target}")


async def await_processor(conn: AsyncConnection, step: AwaitProcessor) -> None:
    """A top-up's charge settles later (a bank debit): `top_up.processing`."""
    t = (await conn.execute(text(
        "UPDATE transfers SET gateway_reference = COALESCE(:ref, gateway_reference), "
        "connector = COALESCE(:c, connector), updated_at = now() WHERE id = :id "
        "RETURNING tenant_id, wallet_id"),
        {"ref": step.gateway_reference, "c": step.connector, "id": step.payment_id})).first()
    if t is not None:
        await ledger.emit(conn, "top_up.processing", t.tenant_id, None, 0,
                          {"top_up_id": step.payment_id, "wallet_id": t.wallet_id,
                           "gateway_reference": step.gateway_reference, "until": step.until},
                          wallet_id=t.wallet_id, dedupe=f"{step.payment_id}:processing")

