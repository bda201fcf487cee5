"""Ledger steps of the payment saga: each one transaction with its status projection and events.

Every step is idempotent by (payment id, attempt): holds are unique per attempt, journals per
reference, events per dedupe key, and a repeated step finds its own earlier work and returns.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.metrics import PAYMENT_DURATION, REFUNDS
from db import ledger
from db.ledger import Event
from domain.fees import refund_fee_share
from domain.money import to_major as money
from domain.status import FailureCode, PaymentStatus
from workflows.types import (
    PAYMENT_CONFLICT,
    BeginRetry,
    CancelPayment,
    CaptureFunds,
    ConnectorPlan,
    Failover,
    FailPayment,
    OpenPayment,
    PaymentInput,
    RefundPosted,
    RefundStep,
    Refusal,
    ReleaseHold,
    Reservation,
    ReserveFunds,
)

Router = Callable[[PaymentInput], tuple[list[ConnectorPlan], str]]


class LedgerActivities:
    def __init__(self, engine: AsyncEngine, router: Router | None = None) -> None:
        self.engine = engine
        self.router = router

    @activity.defn(name="open_payment")
    async def open_payment(self, step: OpenPayment) -> None:
        """Saga v1's first step (v2 runs `start_payment`)."""
        async with self.engine.begin() as conn:
            await _open(conn, step)

    @activity.defn(name="start_payment")
    async def start_payment(self, step: OpenPayment) -> Reservation:
        """Saga v2's first step: open the payment and reserve attempt 0, in one transaction."""
        p = step.payment
        plans, why = self.router(p) if self.router else ([], None)
        async with self.engine.begin() as conn:
            opened = await _open(conn, step, plans, why)
            reservation = await _reserve(conn, ReserveFunds(
                p.payment_id, p.tenant_id, 0, p.user_id, p.currency, p.amount + p.fee,
                step.expires_at), charging=True, fresh=opened)
        reservation.route, reservation.route_reason = plans, why
        return reservation

    @activity.defn(name="record_failover")
    async def record_failover(self, step: Failover) -> None:
        """Charging moves to the next connector: on the payment, and on its timeline."""
        async with self.engine.begin() as conn:
            await conn.execute(text(
                "UPDATE payments SET connector = :c, version = version + 1, updated_at = now() "
                "WHERE id = :p"), {"c": step.target, "p": step.payment_id})
            await ledger.emit(conn, "gateway.failover", step.tenant_id, step.payment_id,
                              step.attempt, {"from": step.source, "to": step.target,
                                             "reason": step.reason},
                              dedupe=f"{step.payment_id}:{step.attempt}:failover:{step.target}")

    @activity.defn(name="retry_payment")
    async def retry_payment(self, step: BeginRetry) -> Reservation:
        """Saga v2's manual retry: the retry is recorded and the new attempt reserved, in one
        transaction."""
        async with self.engine.begin() as conn:
            await _begin_retry(conn, step)
            return await _reserve(conn, ReserveFunds(step.payment_id, step.tenant_id, step.attempt,
                                                     step.user_id, step.currency, step.total,
                                                     step.expires_at), charging=True)

    @activity.defn(name="reserve_funds")
    async def reserve_funds(self, step: ReserveFunds) -> Reservation:
        async with self.engine.begin() as conn:
            return await _reserve(conn, step)

    @activity.defn(name="capture_funds")
    async def capture_funds(self, step: CaptureFunds) -> None:
        async with self.engine.begin() as conn:
            if await capture(conn, step) == "no_hold":
                state = (await conn.execute(text(
                    "SELECT status FROM holds WHERE payment_id = :p AND attempt = :a"),
                    {"p": step.payment_id, "a": step.attempt})).scalar()
                raise ApplicationError(f"no active hold for {step.payment_id}#{step.attempt} "
                                       f"(hold is {state}); an operator must reconcile")

    @activity.defn(name="release_hold")
    async def release_hold(self, step: ReleaseHold) -> None:
        async with self.engine.begin() as conn:
            if step.decline_code is not None:
                await ledger.emit(conn, "gateway.payment_rejected", step.tenant_id, step.payment_id,
                                  step.attempt, {"decline_code": step.decline_code})
            await _release(conn, step.payment_id, step.tenant_id, step.attempt, step.reason)

    @activity.defn(name="fail_payment")
    async def fail_payment(self, step: FailPayment) -> None:
        status = PaymentStatus.EXHAUSTED if step.exhausted else PaymentStatus.FAILED
        async with self.engine.begin() as conn:
            created = await ledger.project(conn, step.payment_id, status, failure_code=step.code,
                                           failure_message=step.message)
            data = {"code": step.code, "message": step.message, "attempt": step.attempt}
            first = await ledger.emit(conn, "payment.failed", step.tenant_id, step.payment_id,
                                      step.attempt, data)
            if step.exhausted:
                first = await ledger.emit(conn, "payment.exhausted", step.tenant_id,
                                          step.payment_id, step.attempt, data)
            if first:
                _took(created, status.value)

    @activity.defn(name="begin_retry")
    async def begin_retry(self, step: BeginRetry) -> None:
        async with self.engine.begin() as conn:
            await _begin_retry(conn, step)

    @activity.defn(name="cancel_payment")
    async def cancel_payment(self, step: CancelPayment) -> None:
        async with self.engine.begin() as conn:
            await _release(conn, step.payment_id, step.tenant_id, step.attempt, step.reason)
            created = await ledger.project(conn, step.payment_id, PaymentStatus.CANCELED)
            if await ledger.emit(conn, "payment.canceled", step.tenant_id, step.payment_id,
                                 step.attempt, {"reason": step.reason,
                                                "requested_by": step.requested_by}):
                _took(created, "canceled")


    @activity.defn(name="record_refusal")
    async def record_refusal(self, step: Refusal) -> None:
        """An operator's signal the payment refused: on its timeline, with who asked and why."""
        async with self.engine.begin() as conn:
            await ledger.emit(conn, f"payment.{step.command}_refused", step.tenant_id,
                              step.payment_id, step.attempt,
                              {"reason": step.reason, "requested_by": step.requested_by},
                              dedupe=f"{step.payment_id}:refused:{step.refusal_id}")

    @activity.defn(name="post_refund")
    async def post_refund(self, step: RefundStep) -> None:
        """Reverse the payment's share in the ledger: the wallet gets amount plus fee share back."""
        async with self.engine.begin() as conn:
            journal = await ledger.journal_once(conn, "refund", f"refund:{step.refund_id}",
                                                step.payment_id, step.currency)
            if journal is None:
                return  # posted already
            wallet_id = (await conn.execute(text("SELECT wallet_id FROM payments WHERE id = :p"),
                                            {"p": step.payment_id})).scalar_one()
            credit = step.amount + step.fee
            after = (await conn.execute(text(
                "UPDATE accounts SET balance = balance + :c, version = version + 1, "
                "updated_at = now() WHERE id = :w RETURNING balance"),
                {"c": credit, "w": wallet_id})).scalar_one()
            settlement = await ledger.system_account(conn, "settlement", step.currency)
            fees = await ledger.system_account(conn, "fees", step.currency)
            await ledger.entries(conn, journal, step.currency, step.payment_id, [
                (wallet_id, "refund", step.amount, after - step.fee),
                (wallet_id, "fee_refund", step.fee, after),
                (settlement, "refund", -step.amount, None),
                (fees, "fee_refund", -step.fee, None),
            ])
            await conn.execute(text(
                "UPDATE refunds SET status = 'succeeded', updated_at = now() WHERE id = :id"),
                {"id": step.refund_id})
            await conn.execute(text(
                "UPDATE payments SET amount_refunded = amount_refunded + :a, status = :s, "
                "version = version + 1, updated_at = now() WHERE id = :p"),
                {"a": step.amount, "p": step.payment_id,
                 "s": (PaymentStatus.REFUNDED if step.fully_refunded
                       else PaymentStatus.PARTIALLY_REFUNDED).value})
            await ledger.emit(conn, "payment.refunded", step.tenant_id, step.payment_id, 0,
                              {"refund_id": step.refund_id,
                               "amount": money(step.amount, step.currency),
                               "fee": money(step.fee, step.currency), "currency": step.currency,
                               "wallet_balance_after": money(after, step.currency)},
                              wallet_id=wallet_id, dedupe=f"{step.refund_id}:refunded")

    @activity.defn(name="settle_refund")
    async def settle_refund(self, step: RefundStep) -> RefundPosted:
        """Saga v2's refund posting: the wallet gets the amount plus its fee share back, the fee
        share computed on the running refunded total (so the shares of any series of refunds add
        up to the whole fee exactly), with the payment's status and the event, in one transaction."""
        async with self.engine.begin() as conn:
            journal = await ledger.journal_once(conn, "refund", f"refund:{step.refund_id}",
                                                step.payment_id, step.currency)
            if journal is None:  # posted already: answer what was posted
                done = (await conn.execute(text(
                    "SELECT r.amount, r.fee, p.status FROM refunds r JOIN payments p "
                    "ON p.id = r.payment_id WHERE r.id = :id"), {"id": step.refund_id})).one()
                return RefundPosted(step.refund_id, done.amount, done.fee, done.status)
            paid = (await conn.execute(text(
                """
                UPDATE payments SET amount_refunded = amount_refunded + :a,
                    status = CASE WHEN amount_refunded + :a = amount THEN 'refunded'
                                  ELSE 'partially_refunded' END,
                    version = version + 1, updated_at = now()
                WHERE id = :p
                RETURNING amount, fee, amount_refunded, wallet_id, status
                """), {"a": step.amount, "p": step.payment_id})).one()
            fee = refund_fee_share(paid.fee, paid.amount, paid.amount_refunded - step.amount,
                                   step.amount)
            after = (await conn.execute(text(
                "UPDATE accounts SET balance = balance + :c, version = version + 1, "
                "updated_at = now() WHERE id = :w RETURNING balance"),
                {"c": step.amount + fee, "w": paid.wallet_id})).scalar_one()
            settlement = await ledger.system_account(conn, "settlement", step.currency)
            fees = await ledger.system_account(conn, "fees", step.currency)
            await ledger.entries(conn, journal, step.currency, step.payment_id, [
                (paid.wallet_id, "refund", step.amount, after - fee),
                (paid.wallet_id, "fee_refund", fee, after),
                (settlement, "refund", -step.amount, None),
                (fees, "fee_refund", -fee, None),
            ])
            await conn.execute(text(
                "UPDATE refunds SET status = 'succeeded', fee = :fee, updated_at = now() "
                "WHERE id = :id"), {"id": step.refund_id, "fee": fee})
            await ledger.emit(conn, "payment.refunded", step.tenant_id, step.payment_id, 0,
                              {"refund_id": step.refund_id,
                               "amount": money(step.amount, step.currency),
                               "fee": money(fee, step.currency), "currency": step.currency,
                               "wallet_balance_after": money(after, step.currency)},
                              wallet_id=paid.wallet_id, dedupe=f"{step.refund_id}:refunded")
            REFUNDS.labels("succeeded").inc()
            return RefundPosted(step.refund_id, step.amount, fee, paid.status)

    @activity.defn(name="fail_refund")
    async def fail_refund(self, step: RefundStep) -> None:
        """The gateway refused the refund: it is failed and its amount is refundable again."""
        async with self.engine.begin() as conn:
            failed = (await conn.execute(text(
                "UPDATE refunds SET status = 'failed', failure_message = :m, updated_at = now() "
                "WHERE id = :id AND status = 'pending' RETURNING amount"),
                {"id": step.refund_id, "m": step.failure_message})).scalar()
            if failed is None:
                return  # recorded already
            await conn.execute(text(
                "UPDATE payments SET refund_reserved = refund_reserved - :a, version = version + 1, "
                "updated_at = now() WHERE id = :p"), {"a": failed, "p": step.payment_id})
            await ledger.emit(conn, "payment.refund_failed", step.tenant_id, step.payment_id, 0,
                              {"refund_id": step.refund_id, "amount": money(failed, step.currency),
                               "currency": step.currency, "message": step.failure_message},
                              dedupe=f"{step.refund_id}:failed")
            REFUNDS.labels("failed").inc()


async def capture(conn: AsyncConnection, step: CaptureFunds) -> str:
    """Capture the attempt's active hold: debit the wallet, post the journal, project `completed`
    and write its events. "captured", "already" (this ran before) or "no_hold"."""
    hold = (await conn.execute(text(
        """
        UPDATE holds SET status = 'captured', updated_at = now()
        WHERE payment_id = :p AND attempt = :a AND status = 'active'
        RETURNING wallet_id, amount
        """), {"p": step.payment_id, "a": step.attempt})).first()
    if hold is None:
        state = (await conn.execute(text(
            "SELECT status FROM holds WHERE payment_id = :p AND attempt = :a"),
            {"p": step.payment_id, "a": step.attempt})).scalar()
        return "already" if state == "captured" else "no_hold"
    balance_after = (await conn.execute(text(
        "UPDATE accounts SET balance = balance - :t, held = held - :t, "
        "version = version + 1, updated_at = now() WHERE id = :w RETURNING balance"),
        {"t": step.amount + step.fee, "w": hold.wallet_id})).scalar_one()
    await _post_payment(conn, step, hold.wallet_id, balance_after)
    return "captured"


async def post_late_charge(conn: AsyncConnection, step: CaptureFunds, wallet_id: str) -> str:
    """Reconciliation's `post` heal: a charge the gateway made after the payment released its
    hold is debited from the wallet's available balance. "posted", "already" or
    "insufficient_funds"."""
    if (await conn.execute(text("SELECT 1 FROM journals WHERE reference = :r"),
                           {"r": f"capture:{step.payment_id}:{step.attempt}"})).first():
        return "already"
    balance_after = (await conn.execute(text(
        "UPDATE accounts SET balance = balance - :t, version = version + 1, updated_at = now() "
        "WHERE id = :w AND balance - held >= :t RETURNING balance"),
        {"t": step.amount + step.fee, "w": wallet_id})).scalar()
    if balance_after is None:
        return "insufficient_funds"
    await _post_payment(conn, step, wallet_id, balance_after)
    return "posted"


async def _post_payment(conn: AsyncConnection, step: CaptureFunds, wallet_id: str,
                        balance_after: int) -> None:
    """The payment's journal, projection and events, once the wallet is debited."""
    journal = await ledger.journal(conn, "payment", f"capture:{step.payment_id}:{step.attempt}",
                                   step.payment_id, step.currency)
    settlement = await ledger.system_account(conn, "settlement", step.currency)
    fees = await ledger.system_account(conn, "fees", step.currency)
    after_payment = balance_after + step.fee
    await ledger.entries(conn, journal, step.currency, step.payment_id, [
        (wallet_id, "payment", -step.amount, after_payment),
        (wallet_id, "fee", -step.fee, after_payment - step.fee),
        (settlement, "payment", step.amount, None),
        (fees, "fee", step.fee, None),
    ])
    created = await ledger.project(conn, step.payment_id, PaymentStatus.COMPLETED,
                                   gateway_reference=step.gateway_reference)
    _took(created, "completed")
    on, c = (step.tenant_id, step.payment_id, step.attempt), step.currency
    await ledger.emit_all(conn, [
        Event("gateway.payment_approved", *on, {
            "gateway_reference": step.gateway_reference,
            "amount": money(step.amount, c), "currency": c,
            **({"connector": step.connector} if step.connector else {})}),
        Event("wallet.funds_deducted", *on, {
            "wallet_id": wallet_id, "amount": money(step.amount, c),
            "fee": money(step.fee, c), "currency": c,
            "balance_after": money(after_payment - step.fee, c)}, wallet_id=wallet_id),
        Event("payment.completed", *on, {
            "amount": money(step.amount, c), "fee": money(step.fee, c), "currency": c,
            "gateway_reference": step.gateway_reference}),
    ])

async def _open(conn: AsyncConnection, step: OpenPayment, plans: list[ConnectorPlan] | None = None,
                why: str | None = None) -> bool:
    """Open the payment's projection; True when this call created it (False: a retried step)."""
    p = step.payment
    connector = plans[0].name if plans else None
    row = (await conn.execute(text(
        """
        INSERT INTO payments (id, tenant_id, idempotency_key, fingerprint, run_id, user_id,
            service_id, amount, fee, currency, description, reference, metadata, status,
            max_manual_retries, created_at, connector, routing_reason)
        VALUES (:id, :tenant, :key, :fp, :run, :user, :service, :amount, :fee, :currency,
            :description, :reference, CAST(:metadata AS JSONB), 'pending', :max_retries,
            :created_at, :connector, :why)
        ON CONFLICT DO NOTHING
        RETURNING id
        """), {
            "id": p.payment_id, "tenant": p.tenant_id, "key": p.idempotency_key,
            "fp": p.fingerprint, "run": step.run_id, "user": p.user_id,
            "service": p.service_id, "amount": p.amount, "fee": p.fee,
            "currency": p.currency, "description": p.description,
            "reference": p.reference,
            "metadata": json.dumps(p.metadata) if p.metadata is not None else None,
            "max_retries": p.policy.max_manual_retries,
            "created_at": datetime.fromisoformat(p.created_at),
            "connector": connector, "why": why,
        })).first()
    if row is None:
        owner = (await conn.execute(
            text("SELECT run_id FROM payments WHERE id = :id"), {"id": p.payment_id}
        )).scalar()
        if owner != step.run_id:
            # The key was used by an earlier run whose history is gone: never pay twice.
            raise ApplicationError(
                f"payment {p.payment_id} already exists", type=PAYMENT_CONFLICT,
                non_retryable=True)
        return False
    opened = [Event("payment.initiated", p.tenant_id, p.payment_id, 0, {
        "payment_id": p.payment_id, "user_id": p.user_id, "service_id": p.service_id,
        "amount": money(p.amount, p.currency), "fee": money(p.fee, p.currency),
        "currency": p.currency,
    })]
    if plans:
        opened.append(Event("payment.routed", p.tenant_id, p.payment_id, 0, {
            "connector": connector, "route": [plan.name for plan in plans], "reason": why}))
    await ledger.emit_all(conn, opened)  # one round trip
    return True


async def _reserve(conn: AsyncConnection, step: ReserveFunds, *, charging: bool = False,
                   fresh: bool = False) -> Reservation:
    """Hold amount + fee on the wallet. `charging`: saga v2 charges in the same workflow task, so
    the payment is projected `processing` at once (v1 projects `reserved`, then its charge step
    moved it on). `fresh`: the payment was opened in this transaction, so it holds nothing yet."""
    done = None if fresh else await _existing_hold(conn, step.payment_id, step.attempt)
    if done is not None:
        return Reservation(ok=True, wallet_id=done)
    # One conditional statement: concurrent payments can never overdraw or lose an update.
    reserved = (await conn.execute(text(
        """
        UPDATE accounts SET held = held + :total, version = version + 1, updated_at = now()
        WHERE tenant_id = :t AND kind = 'wallet' AND user_id = :u AND currency = :c
          AND balance - held >= :total
        RETURNING id, version
        """), {"t": step.tenant_id, "u": step.user_id, "c": step.currency,
               "total": step.total})).first()
    if reserved is None:
        exists = (await conn.execute(text(
            "SELECT 1 FROM accounts WHERE tenant_id = :t AND kind = 'wallet' "
            "AND user_id = :u AND currency = :c"),
            {"t": step.tenant_id, "u": step.user_id, "c": step.currency})).first()
        if exists is None:
            return await _reservation_failed(
                conn, step, FailureCode.WALLET_NOT_FOUND,
                f"user {step.user_id} has no {step.currency} wallet")
        return await _reservation_failed(
            conn, step, FailureCode.INSUFFICIENT_FUNDS,
            "the wallet's available balance is lower than amount plus fee")
    wallet = reserved.id
    await conn.execute(text(
        """
        INSERT INTO holds (id, payment_id, attempt, wallet_id, amount, status, expires_at)
        VALUES (:id, :p, :a, :w, :amount, 'active', :expires)
        """), {"id": f"hold_{step.payment_id}_{step.attempt}", "p": step.payment_id,
               "a": step.attempt, "w": wallet, "amount": step.total,
               "expires": datetime.fromisoformat(step.expires_at)})
    await ledger.project(conn, step.payment_id,
                         PaymentStatus.PROCESSING if charging else PaymentStatus.RESERVED,
                         wallet_id=wallet, attempt=step.attempt)
    await ledger.emit(conn, "wallet.funds_reserved", step.tenant_id, step.payment_id,
                      step.attempt, {"wallet_id": wallet, "amount": money(step.total, step.currency),
                                     "currency": step.currency, "expires_at": step.expires_at,
                                     "wallet_version": reserved.version},
                      wallet_id=wallet)
    return Reservation(ok=True, wallet_id=wallet)


async def _begin_retry(conn: AsyncConnection, step: BeginRetry) -> None:
    await ledger.project(conn, step.payment_id, PaymentStatus.PENDING, attempt=step.attempt,
                         manual_retries=step.manual_retries, clear_failure=True)
    if step.connector is not None:  # the new attempt starts at the route's first connector
        await conn.execute(text("UPDATE payments SET connector = :c WHERE id = :p"),
                           {"c": step.connector, "p": step.payment_id})
    await ledger.emit(conn, "payment.retry_requested", step.tenant_id, step.payment_id,
                      step.attempt, {"manual_retries": step.manual_retries,
                                     "requested_by": step.source})


def _took(created: datetime | None, outcome: str) -> None:
    """The payment attempt's end-to-end time, once its outcome is recorded."""
    if created is not None:
        PAYMENT_DURATION.labels(outcome).observe(
            max((datetime.now(UTC) - created).total_seconds(), 0.0))


async def _existing_hold(conn: AsyncConnection, payment_id: str, attempt: int) -> str | None:
    return (await conn.execute(text(
        "SELECT wallet_id FROM holds WHERE payment_id = :p AND attempt = :a"),
        {"p": payment_id, "a": attempt})).scalar()


async def _reservation_failed(conn: AsyncConnection, step: ReserveFunds, code: str,
                              message: str) -> Reservation:
    await ledger.emit(conn, "wallet.reservation_failed", step.tenant_id, step.payment_id,
                      step.attempt, {"code": code, "message": message,
                                     "amount": money(step.total, step.currency),
                                     "currency": step.currency})
    return Reservation(ok=False, failure_code=code, failure_message=message)


async def _release(conn: AsyncConnection, payment_id: str, tenant_id: str, attempt: int,
                   reason: str) -> None:
    hold: Any = (await conn.execute(text(
        """
        UPDATE holds SET status = 'released', reason = :r, updated_at = now()
        WHERE payment_id = :p AND attempt = :a AND status = 'active'
        RETURNING wallet_id, amount
        """), {"p": payment_id, "a": attempt, "r": reason})).first()
    if hold is None:
        return  # nothing held, or released already
    currency = (await conn.execute(text(
        "UPDATE accounts SET held = held - :amount, version = version + 1, updated_at = now() "
        "WHERE id = :w RETURNING currency"), {"amount": hold.amount, "w": hold.wallet_id})).scalar_one()
    await ledger.emit(conn, "wallet.funds_released", tenant_id, payment_id, attempt,
                      {"wallet_id": hold.wallet_id, "amount": money(hold.amount, currency),
                       "currency": currency, "reason": reason},
                      wallet_id=hold.wallet_id)
