"""Refund reservations: the refundable amount is taken in one conditional statement, so
concurrent refunds can never exceed the payment."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.fees import refund_fee_share
from workflows.types import RefundStep

REFUNDABLE = ("completed", "partially_refunded")


@dataclass
class Refused:
    status: str
    refundable: int


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
