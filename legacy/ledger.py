"""Saga v1's own ledger statement: its refunds were posted with the fee share the workflow computed
(saga v2 computes it on the running refunded total in db/refunds.py). Runs in the caller's
transaction."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.refund import RefundStep as LiveRefundStep
from db import ledger, refunds
from domain.status import PaymentStatus
from legacy.types import RefundStep


async def post_refund(conn: AsyncConnection, step: RefundStep) -> None:
    """Reverse the payment's share: the wallet gets amount plus the fee share back."""
    journal = await ledger.journal_once(conn, "refund", f"refund:{step.refund_id}",
                                        step.payment_id, step.currency)
    if journal is None:
        return  # posted already
    wallet_id = (await conn.execute(text("SELECT wallet_id FROM payments WHERE id = :p"),
                                    {"p": step.payment_id})).scalar_one()
    live = LiveRefundStep(step.payment_id, step.tenant_id, step.refund_id, step.amount, step.fee,
                          step.currency, step.gateway_reference, step.reason)
    await refunds.credit_wallet(conn, live, journal, wallet_id, step.fee)
    await conn.execute(text(
        "UPDATE refunds SET status = 'succeeded', updated_at = now() WHERE id = :id"),
        {"id": step.refund_id})
    await conn.execute(text(
        "UPDATE payments SET amount_refunded = amount_refunded + :a, status = :s, "
        "version = version + 1, updated_at = now() WHERE id = :p"),
        {"a": step.amount, "p": step.payment_id,
         "s": (PaymentStatus.REFUNDED if step.fully_refunded
               else PaymentStatus.PARTIALLY_REFUNDED).value})
