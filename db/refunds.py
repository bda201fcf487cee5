"""Refunds in the ledger, behind one door: reservations (the refundable amount is taken in one
conditional statement, so concurrent refunds can never exceed the payment), posting a refund back
to the wallet, and failing one. Runs in the caller's transaction; none commits."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.refund import RefundPosted, RefundStep, RefundView
from db import ledger
from db.pages import Ask, Keyset, Page, Where, fetch
from domain.fees import refund_fee_share
from domain.money import to_major as money

REFUNDABLE = ("completed", "partially_refunded")


@dataclass
class Refused:
    status: str
    refundable: int


LISTED = Keyset("refunds", descending=False, scope="payment_id = :p")


async def find(conn: AsyncConnection, refund_id: str) -> RefundView | None:
    """A refund as it was asked for and stands now, or None."""
    row = (await conn.execute(text(
        "SELECT id, payment_id, amount, fee, status, fingerprint, reason, failure_message "
        "FROM refunds WHERE id = :id"), {"id": refund_id})).first()
    if row is None:
        return None
    return RefundView(row.id, row.amount, row.fee, row.status, row.fingerprint, row.reason,
                      row.failure_message, payment_id=row.payment_id)


async def refunds_page(conn: AsyncConnection, payment_id: str, ask: Ask) -> Page:
    """The payment's refunds, oldest first."""
    return await fetch(conn, LISTED, ask,
                       select="id, amount, fee, status, fingerprint, reason, failure_message",
                       where=Where(["payment_id = :p"], {"p": payment_id}))


async def reserve(conn: AsyncConnection, *, refund_id: str, payment_id: str, tenant_id: str,
                  amount: int, fingerprint: str, reason: str | None) -> RefundStep | Refused | None:
    """Reserve a refund's amount (0: all that is refundable) and record it pending. None when a
    refund with this id exists already (the caller replays it); Refused when the payment cannot
    give that much back. Runs in the caller's transaction, which must roll back unless a
    RefundStep came back."""
    taken = (await conn.execute(text(
        """
        UPDATE payments p
        SET refund_reserved = p.refund_reserved + CASE WHEN :a = 0 THEN p.amount - p.refund_reserved
                                                       ELSE :a END,
            version = p.version + 1, updated_at = now()
        FROM (SELECT id, refund_reserved FROM payments WHERE id = :p FOR UPDATE) before
        WHERE p.id = before.id AND p.status IN ('completed', 'partially_refunded')
          AND p.amount - p.refund_reserved >= GREATEST(:a, 1)
        RETURNING p.refund_reserved - before.refund_reserved AS amount,
                  before.refund_reserved AS reserved_before, p.amount AS paid, p.fee,
                  p.currency, p.gateway_reference, p.connector
        """), {"a": amount, "p": payment_id})).first()
    if taken is None:
        row = (await conn.execute(text(
            "SELECT status, amount - refund_reserved AS refundable FROM payments WHERE id = :p"),
            {"p": payment_id})).one()
        return Refused(row.status, row.refundable)
    fee = refund_fee_share(taken.fee, taken.paid, taken.reserved_before, taken.amount)
    made = (await conn.execute(text(
        "INSERT INTO refunds (id, payment_id, tenant_id, amount, fee, currency, status, "
        "fingerprint, reason) VALUES (:id, :p, :t, :a, :f, :c, 'pending', :fp, :reason) "
        "ON CONFLICT (id) DO NOTHING RETURNING id"),
        {"id": refund_id, "p": payment_id, "t": tenant_id, "a": taken.amount, "f": fee,
         "c": taken.currency, "fp": fingerprint, "reason": reason})).scalar()
    if made is None:
        return None
    return RefundStep(payment_id, tenant_id, refund_id, taken.amount, fee, taken.currency,
                      taken.gateway_reference, reason, fingerprint=fingerprint,
                      connector=taken.connector)


async def pending_step(conn: AsyncConnection, refund_id: str) -> RefundStep | None:
    """A pending refund's saga input, to (re)start it."""
    row = (await conn.execute(text(
        "SELECT r.id, r.payment_id, r.tenant_id, r.amount, r.fee, r.currency, r.reason, "
        "r.fingerprint, p.gateway_reference, p.connector "
        "FROM refunds r JOIN payments p ON p.id = r.payment_id "
        "WHERE r.id = :id AND r.status = 'pending'"), {"id": refund_id})).first()
    if row is None:
        return None
    return RefundStep(row.payment_id, row.tenant_id, row.id, row.amount, row.fee, row.currency,
                      row.gateway_reference, row.reason, fingerprint=row.fingerprint,
                      connector=row.connector)


async def settle(conn: AsyncConnection, step: RefundStep) -> tuple[RefundPosted, bool]:
    """Post the refund: the wallet gets the amount plus its fee share back, the fee share
    computed on the running refunded total (so the shares of any series of refunds add up to the
    whole fee exactly), with the payment's status and the event. (What was posted, and whether
    this call posted it: False when a retried step finds it posted already.)"""
    journal = await ledger.journal_once(conn, "refund", f"refund:{step.refund_id}",
                                        step.payment_id, step.currency)
    if journal is None:
        done = (await conn.execute(text(
            "SELECT r.amount, r.fee, p.status FROM refunds r JOIN payments p "
            "ON p.id = r.payment_id WHERE r.id = :id"), {"id": step.refund_id})).one()
        return RefundPosted(step.refund_id, done.amount, done.fee, done.status), False
    paid = (await conn.execute(text(
        """
        UPDATE payments SET amount_refunded = amount_refunded + :a,
            status = CASE WHEN amount_refunded + :a = amount THEN 'refunded'
                          ELSE 'partially_refunded' END,
            version = version + 1, updated_at = now()
        WHERE id = :p
        RETURNING amount, fee, amount_refunded, wallet_id, status
        """), {"a": step.amount, "p": step.payment_id})).one()
    fee = refund_fee_share(paid.fee, paid.amount, paid.amount_refunded - step.amount, step.amount)
    await credit_wallet(conn, step, journal, paid.wallet_id, fee)
    await conn.execute(text(
        "UPDATE refunds SET status = 'succeeded', fee = :fee, updated_at = now() "
        "WHERE id = :id"), {"id": step.refund_id, "fee": fee})
    return RefundPosted(step.refund_id, step.amount, fee, paid.status), True


async def credit_wallet(conn: AsyncConnection, step: RefundStep, journal: str, wallet_id: str,
                        fee: int) -> None:
    """The refund's entries (the wallet gets amount + fee share back from settlement and fees)
    and its `payment.refunded` event."""
    after = (await conn.execute(text(
        "UPDATE accounts SET balance = balance + :c, version = version + 1, "
        "updated_at = now() WHERE id = :w RETURNING balance"),
        {"c": step.amount + fee, "w": wallet_id})).scalar_one()
    settlement = await ledger.system_account(conn, "settlement", step.currency)
    fees = await ledger.system_account(conn, "fees", step.currency)
    await ledger.entries(conn, journal, step.currency, step.payment_id, [
        (wallet_id, "refund", step.amount, after - fee),
        (wallet_id, "fee_refund", fee, after),
        (settlement, "refund", -step.amount, None),
        (fees, "fee_refund", -fee, None),
    ])
    await ledger.emit(conn, "payment.refunded", step.tenant_id, step.payment_id, 0,
                      {"refund_id": step.refund_id, "amount": money(step.amount, step.currency),
                       "fee": money(fee, step.currency), "currency": step.currency,
                       "wallet_balance_after": money(after, step.currency)},
                      wallet_id=wallet_id, dedupe=f"{step.refund_id}:refunded")


async def fail(conn: AsyncConnection, step: RefundStep) -> bool:
    """The gateway refused the refund: it is failed and its amount is refundable again. False
    when that was recorded before."""
    failed = (await conn.execute(text(
        "UPDATE refunds SET status = 'failed', failure_message = :m, updated_at = now() "
        "WHERE id = :id AND status = 'pending' RETURNING amount"),
        {"id": step.refund_id, "m": step.failure_message})).scalar()
    if failed is None:
        return False
    await conn.execute(text(
        "UPDATE payments SET refund_reserved = refund_reserved - :a, version = version + 1, "
        "updated_at = now() WHERE id = :p"), {"a": failed, "p": step.payment_id})
    await ledger.emit(conn, "payment.refund_failed", step.tenant_id, step.payment_id, 0,
                      {"refund_id": step.refund_id, "amount": money(failed, step.currency),
                       "currency": step.currency, "message": step.failure_message},
                      dedupe=f"{step.refund_id}:failed")
    return True


async def left_pending(conn: AsyncConnection, grace_seconds: int, limit: int = 200) -> list[str]:
    """Refunds reserved more than `grace_seconds` ago and still pending, oldest first (their saga
    may never have started)."""
    return list((await conn.execute(text(
        "SELECT id FROM refunds WHERE status = 'pending' AND id LIKE 'rfd\\_%' "
        "AND created_at < now() - make_interval(secs => :g) ORDER BY created_at LIMIT :n"),
        {"g": grace_seconds, "n": limit})).scalars().all())
