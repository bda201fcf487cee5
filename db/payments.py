"""The payments ledger, behind one door: every statement that opens, reserves, captures, releases,
fails, retries or cancels a payment, each with its status projection and its domain events, run
inside the caller's transaction (none commits). The activities call these; the API reads through
`projection`. Every step is idempotent by (payment id, attempt): holds are unique per attempt,
journals per reference, events per dedupe key, and a repeated step finds its earlier work.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio.exceptions import ApplicationError

from contracts.payment import (
    PAYMENT_CONFLICT,
    Authorized,
    AwaitProcessor,
    BeginRetry,
    CancelPayment,
    CaptureFunds,
    EndAuthorization,
    FailPayment,
    OpenPayment,
    Refusal,
    Reservation,
    ReserveFunds,
)
from contracts.saga import ConnectorPlan, Failover
from db import direct, ledger
from db.ledger import Event
from db.pages import Ask, Keyset, Page, Where, fetch
from domain.ids import new_id
from domain.money import to_major as money
from domain.status import FailureCode, PaymentStatus

COLUMNS = ("id, tenant_id, fingerprint, status, user_id, service_id, wallet_id, amount, fee, "
           "currency, description, reference, metadata, failure_code, failure_message, "
           "manual_retries, max_manual_retries, amount_refunded, gateway_reference, "
           "connector, routing_reason, created_at, updated_at, capture_method, capture_before, "
           "amount_authorized, amount_captured, next_action_url")


@dataclass
class Posted:
    """What a capture (or a late charge's posting) did: captured, posted, already, no_hold,
    insufficient_funds; `created_at` (the payment's) when this call completed the payment."""

    outcome: str
    created_at: datetime | None = None
    hold_status: str | None = None


LISTED = Keyset("payments", scope="tenant_id = :t")


@dataclass
class Filters:
    """What a list of payments may be narrowed by (every one given must hold)."""

    statuses: list[str] = field(default_factory=list)
    failure_codes: list[str] = field(default_factory=list)
    user_id: str | None = None
    service_id: str | None = None
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # exclusive


async def payments_page(conn: AsyncConnection, tenant_id: str, f: Filters, ask: Ask) -> Page:
    """The tenant's payments, newest first."""
    where = Where(["tenant_id = :t"], {"t": tenant_id})
    if f.statuses:
        where.add("status = ANY(:statuses)", statuses=f.statuses)
    if f.failure_codes:
        where.add("failure_code = ANY(:codes)", codes=f.failure_codes)
    if f.user_id is not None:
        where.add("user_id = :user_id", user_id=f.user_id)
    if f.service_id is not None:
        where.add("service_id = :service_id", service_id=f.service_id)
    if f.created_from is not None:
        where.add("created_at >= :cf", cf=f.created_from)
    if f.created_to is not None:
        where.add("created_at < :ct", ct=f.created_to)
    return await fetch(conn, LISTED, ask, select=COLUMNS, where=where)


_PROJECTION = text(f"SELECT {COLUMNS} FROM payments WHERE id = :id AND tenant_id = :t")


async def projection(engine: AsyncEngine, tenant_id: str, payment_id: str) -> dict[str, Any] | None:
    """The payment's read projection, or None (not yet opened, or another tenant's)."""
    async with direct.connect(engine) as conn:
        row = (await conn.execute(_PROJECTION, {"id": payment_id, "t": tenant_id})).mappings().first()
    return dict(row) if row else None


async def start(conn: AsyncConnection, step: OpenPayment, plans: list[ConnectorPlan],
                why: str | None) -> Reservation:
    """Saga v2's first step: open the payment and reserve attempt 0, in one transaction."""
    p = step.payment
    opened = await open_payment(conn, step, plans, why)
    reservation = await reserve(conn, ReserveFunds(
        p.payment_id, p.tenant_id, 0, p.user_id, p.currency, p.amount + p.fee, step.expires_at),
        fresh=opened)
    reservation.route, reservation.route_reason = plans, why
    return reservation


async def retry(conn: AsyncConnection, step: BeginRetry) -> Reservation:
    """Saga v2's manual retry: the retry is recorded and the new attempt reserved."""
    await begin_retry(conn, step)
    return await reserve(conn, ReserveFunds(step.payment_id, step.tenant_id, step.attempt,
                                            step.user_id, step.currency, step.total,
                                            step.expires_at))


async def record_failover(conn: AsyncConnection, step: Failover) -> None:
    """Charging moves to the next connector: on the payment, and on its timeline."""
    await conn.execute(text(
        "UPDATE payments SET connector = :c, version = version + 1, updated_at = now() "
        "WHERE id = :p"), {"c": step.target, "p": step.payment_id})
    await ledger.emit(conn, "gateway.failover", step.tenant_id, step.payment_id, step.attempt,
                      {"from": step.source, "to": step.target, "reason": step.reason},
                      dedupe=f"{step.payment_id}:{step.attempt}:failover:{step.target}")


async def release_declined(conn: AsyncConnection, payment_id: str, tenant_id: str, attempt: int,
                           reason: str, decline_code: str | None) -> None:
    """Release the attempt's hold, recording the gateway's decline with it when there was one."""
    if decline_code is not None:
        await ledger.emit(conn, "gateway.payment_rejected", tenant_id, payment_id, attempt,
                          {"decline_code": decline_code})
    await release(conn, payment_id, tenant_id, attempt, reason)


async def fail(conn: AsyncConnection, step: FailPayment) -> datetime | None:
    """Project failed (or exhausted) with its events; the payment's creation time when this call
    recorded the outcome (None: recorded before)."""
    status = PaymentStatus.EXHAUSTED if step.exhausted else PaymentStatus.FAILED
    created = await ledger.project(conn, step.payment_id, status, failure_code=step.code,
                                   failure_message=step.message)
    data = {"code": step.code, "message": step.message, "attempt": step.attempt}
    first = await ledger.emit(conn, "payment.failed", step.tenant_id, step.payment_id,
                              step.attempt, data)
    if step.exhausted:
        first = await ledger.emit(conn, "payment.exhausted", step.tenant_id, step.payment_id,
                                  step.attempt, data)
    return created if first else None


async def cancel(conn: AsyncConnection, step: CancelPayment) -> datetime | None:
    """Release any hold and project canceled; the creation time when this call canceled it."""
    await release(conn, step.payment_id, step.tenant_id, step.attempt, step.reason)
    created = await ledger.project(conn, step.payment_id, PaymentStatus.CANCELED)
    first = await ledger.emit(conn, "payment.canceled", step.tenant_id, step.payment_id,
                              step.attempt, {"reason": step.reason,
                                             "requested_by": step.requested_by})
    return created if first else None


async def await_processor(conn: AsyncConnection, step: AwaitProcessor) -> None:
    """The charge's outcome arrives later: the hold lasts until then, `payment.processing`."""
    await conn.execute(text(
        "UPDATE holds SET expires_at = GREATEST(expires_at, :until), updated_at = now() "
        "WHERE payment_id = :p AND attempt = :a AND status = 'active'"),
        {"until": datetime.fromisoformat(step.until), "p": step.payment_id, "a": step.attempt})
    action = step.next_action_url is not None  # 3-D Secure: the customer authenticates first
    await ledger.project(conn, step.payment_id, PaymentStatus.REQUIRES_ACTION if action
                         else PaymentStatus.PROCESSING, gateway_reference=step.gateway_reference,
                         next_action_url=step.next_action_url)
    await ledger.emit(conn, "payment.requires_action" if action else "payment.processing",
                      step.tenant_id, step.payment_id, step.attempt,
                      {"gateway_reference": step.gateway_reference, "until": step.until,
                       **({"connector": step.connector} if step.connector else {}),
                       **({"next_action": {"type": "redirect_to_url",
                                           "url": step.next_action_url}} if action else {})})


async def authorize(conn: AsyncConnection, step: Authorized) -> None:
    """A manual payment's authorization succeeded: `requires_capture`, with its charge, and
    `payment.authorized` (the hold stays until `capture_before`)."""
    await ledger.project(conn, step.payment_id, PaymentStatus.REQUIRES_CAPTURE,
                         gateway_reference=step.gateway_reference)
    c = step.currency
    await ledger.emit(conn, "payment.authorized", step.tenant_id, step.payment_id, step.attempt,
                      {"amount": money(step.amount, c), "currency": c,
                       "gateway_reference": step.gateway_reference,
                       "capture_before": step.capture_before,
                       **({"connector": step.connector} if step.connector else {})})


async def end_authorization(conn: AsyncConnection, step: EndAuthorization) -> datetime | None:
    """A manual payment's authorization ends uncaptured (voided at the gateway, or lapsed): the
    hold is released, the payment `canceled` (payment.voided) or `expired` with
    `authorization_expired` (payment.authorization_expired). The creation time when this call
    ended it."""
    await release(conn, step.payment_id, step.tenant_id, step.attempt, step.reason)
    expired = step.outcome == "expired"
    created = await ledger.project(
        conn, step.payment_id, PaymentStatus.EXPIRED if expired else PaymentStatus.CANCELED,
        failure_code=FailureCode.AUTHORIZATION_EXPIRED if expired else None,
        failure_message=step.reason if expired else None)
    first = await ledger.emit(conn, "payment.authorization_expired" if expired
                              else "payment.voided", step.tenant_id, step.payment_id,
                              step.attempt, {"reason": step.reason,
                                             **({} if expired
                                                else {"requested_by": step.requested_by})})
    return created if first else None


async def record_refusal(conn: AsyncConnection, step: Refusal) -> None:
    """An operator's signal the payment refused: on its timeline, with who asked and why."""
    await ledger.emit(conn, f"payment.{step.command}_refused", step.tenant_id, step.payment_id,
                      step.attempt, {"reason": step.reason, "requested_by": step.requested_by},
                      dedupe=f"{step.payment_id}:refused:{step.refusal_id}")


async def expire(conn: AsyncConnection, payment_id: str, tenant_id: str, attempt: int,
                 message: str, source: str) -> None:
    """A hold that expired with nobody to settle it: the payment fails `reservation_expired`."""
    await ledger.project(conn, payment_id, PaymentStatus.FAILED,
                         failure_code=FailureCode.RESERVATION_EXPIRED, failure_message=message)
    await ledger.emit(conn, "payment.failed", tenant_id, payment_id, attempt, {
        "code": FailureCode.RESERVATION_EXPIRED, "message": message, "source": source})


async def capture(conn: AsyncConnection, step: CaptureFunds) -> Posted:
    """Capture the attempt's active hold: debit the wallet, post the journal, project `completed`
    and write its events. "captured", "already" (this ran before) or "no_hold"."""
    # one statement: the hold captured and the wallet debited what was captured with its fee,
    # the whole hold released (less than the hold after a manual payment's partial capture)
    hold = (await conn.execute(_CAPTURE_HOLD, {"p": step.payment_id, "a": step.attempt,
                                               "t": step.amount + step.fee})).first()
    if hold is None:
        state = (await conn.execute(text(
            "SELECT status FROM holds WHERE payment_id = :p AND attempt = :a"),
            {"p": step.payment_id, "a": step.attempt})).scalar()
        return Posted("already" if state == "captured" else "no_hold", hold_status=state)
    released: list[Event] = []
    if hold.amount > step.amount + step.fee:  # the part of the hold a partial capture left
        released.append(Event("wallet.funds_released", step.tenant_id, step.payment_id,
                              step.attempt, {"wallet_id": hold.wallet_id,
                                             "amount": money(hold.amount - step.amount - step.fee,
                                                             step.currency),
                                             "currency": step.currency,
                                             "reason": "partial_capture"},
                              wallet_id=hold.wallet_id))
    created = await _post_payment(conn, step, hold.wallet_id, hold.balance, released)
    return Posted("captured", created)



async def post_late_charge(conn: AsyncConnection, step: CaptureFunds, wallet_id: str) -> Posted:
    """Reconciliation's `post` heal: a charge the gateway made after the payment released its
    hold is debited from the wallet's available balance. "posted", "already" or
    "insufficient_funds"."""
    if (await conn.execute(text("SELECT 1 FROM journals WHERE reference = :r"),
                           {"r": f"capture:{step.payment_id}:{step.attempt}"})).first():
        return Posted("already")
    balance_after = (await conn.execute(text(
        "UPDATE accounts SET balance = balance - :t, version = version + 1, updated_at = now() "
        "WHERE id = :w AND balance - held >= :t RETURNING balance"),
        {"t": step.amount + step.fee, "w": wallet_id})).scalar()
    if balance_after is None:
        return Posted("insufficient_funds")
    return Posted("posted", await _post_payment(conn, step, wallet_id, balance_after))



_CAPTURE_HOLD = text(
    """
    WITH h AS (
        UPDATE holds SET status = 'captured', updated_at = now()
        WHERE payment_id = :p AND attempt = :a AND status = 'active'
        RETURNING wallet_id, amount
    )
    UPDATE accounts SET balance = balance - :t, held = held - h.amount,
        version = accounts.version + 1, updated_at = now()
    FROM h WHERE accounts.id = h.wallet_id
    RETURNING h.wallet_id, h.amount, accounts.balance
    """)


@functools.cache
def _posting(entries: int, events: int) -> Any:
    """The rest of a payment's posting in one statement: its journal, its `entries` rows, its
    `events` (in this order: one INSERT keeps their ids in order) and its projection `completed`
    (what was paid: all of it, or a partial capture's less with its fee recomputed)."""
    return text(
        """
        WITH j AS (
            INSERT INTO journals (id, kind, reference, payment_id, currency)
            VALUES (:jid, 'payment', :ref, :p, :c)
        ), e AS (
            INSERT INTO entries (journal_id, account_id, type, amount, balance_after, currency,
                                 payment_id)
            VALUES """ + ", ".join(
            f"(:jid, :acc{i}, :entry{i}, :amount{i}, CAST(:after{i} AS BIGINT), :c, :p)"
            for i in range(entries)) + """
        ), ev AS (
            INSERT INTO events (dedupe_key, type, tenant_id, payment_id, wallet_id, data)
            VALUES """ + ledger.events_values(events) + """
            ON CONFLICT (dedupe_key) DO NOTHING
        )
        UPDATE payments SET status = 'completed',
            gateway_reference = COALESCE(:gref, gateway_reference),
            amount = :paid, fee = :paid_fee, amount_captured = :paid, next_action_url = NULL,
            version = version + 1, updated_at = now()
        WHERE id = :p
        RETURNING created_at
        """)


async def _post_payment(conn: AsyncConnection, step: CaptureFunds, wallet_id: str,
                        balance_after: int, more: list[Event] | None = None) -> datetime | None:
    """The payment's journal, entries, events and projection, in one statement, once the wallet
    is debited; when the payment was created. `more`: events after the three of a payment."""
    settlement = await ledger.system_account(conn, "settlement", step.currency)
    fees = await ledger.system_account(conn, "fees", step.currency)
    after_payment = balance_after + step.fee
    rows = ledger.balanced([
        (wallet_id, "payment", -step.amount, after_payment),
        (wallet_id, "fee", -step.fee, after_payment - step.fee),
        (settlement, "payment", step.amount, None),
        (fees, "fee", step.fee, None),
    ])
    on, c = (step.tenant_id, step.payment_id, step.attempt), step.currency
    events = [
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
        *(more or []),
    ]
    params: dict[str, Any] = {
        "jid": new_id("jnl"), "ref": f"capture:{step.payment_id}:{step.attempt}",
        "p": step.payment_id, "c": c, "gref": step.gateway_reference,
        "paid": step.amount, "paid_fee": step.fee, **ledger.numbered(events)}
    for i, (account, kind, amount, after) in enumerate(rows):
        params |= {f"acc{i}": account, f"entry{i}": kind, f"amount{i}": amount, f"after{i}": after}
    created: datetime | None = (await conn.execute(_posting(len(rows), len(events)),
                                                   params)).scalar()
    return created


@functools.cache
def _opening(events: int) -> Any:
    """The payment's projection and (only when this statement created it) its opening events,
    in one statement; the new payment's id, or no row when it existed."""
    return text(
        """
        WITH p AS (
            INSERT INTO payments (id, tenant_id, idempotency_key, fingerprint, run_id, user_id,
                service_id, amount, fee, currency, description, reference, metadata, status,
                max_manual_retries, created_at, connector, routing_reason, capture_method,
                capture_before, amount_authorized)
            VALUES (:id, :tenant, :key, :fp, :run, :user, :service, :amount, :fee, :currency,
                :description, :reference, CAST(:metadata AS JSONB), 'pending', :max_retries,
                :created_at, :connector, :why, :method, :before, :authorized)
            ON CONFLICT DO NOTHING
            RETURNING id
        ), ev AS (
            INSERT INTO events (dedupe_key, type, tenant_id, payment_id, wallet_id, data)
            SELECT * FROM (VALUES """ + ledger.events_values(events) + """) AS v
            WHERE EXISTS (SELECT 1 FROM p)
            ON CONFLICT (dedupe_key) DO NOTHING
        )
        SELECT id FROM p
        """)


async def open_payment(conn: AsyncConnection, step: OpenPayment, plans: list[ConnectorPlan] | None = None,
                why: str | None = None) -> bool:
    """Open the payment's projection with its events (`payment.initiated`, and
    `payment.routed` when routed), one statement; True when this call created it (False: a
    retried step)."""
    p = step.payment
    connector = plans[0].name if plans else None
    opened = [Event("payment.initiated", p.tenant_id, p.payment_id, 0, {
        "payment_id": p.payment_id, "user_id": p.user_id, "service_id": p.service_id,
        "amount": money(p.amount, p.currency), "fee": money(p.fee, p.currency),
        "currency": p.currency,
    })]
    if plans:
        opened.append(Event("payment.routed", p.tenant_id, p.payment_id, 0, {
            "connector": connector, "route": [plan.name for plan in plans], "reason": why}))
    params: dict[str, Any] = {
        "id": p.payment_id, "tenant": p.tenant_id, "key": p.idempotency_key,
        "fp": p.fingerprint, "run": step.run_id, "user": p.user_id,
        "service": p.service_id, "amount": p.amount, "fee": p.fee,
        "currency": p.currency, "description": p.description,
        "reference": p.reference,
        "metadata": json.dumps(p.metadata) if p.metadata is not None else None,
        "max_retries": p.policy.max_manual_retries,
        "created_at": datetime.fromisoformat(p.created_at),
        "connector": connector, "why": why, "method": p.capture_method,
        "before": datetime.fromisoformat(p.capture_before) if p.capture_before else None,
        "authorized": p.amount if p.manual else None,
    }
    if (await conn.execute(_opening(len(opened)), params | ledger.numbered(opened))
            ).first() is None:
        owner = (await conn.execute(
            text("SELECT run_id FROM payments WHERE id = :id"), {"id": p.payment_id}
        )).scalar()
        if owner != step.run_id:
            # The key was used by an earlier run whose history is gone: never pay twice.
            raise ApplicationError(
                f"payment {p.payment_id} already exists", type=PAYMENT_CONFLICT,
                non_retryable=True)
        return False
    return True



# the happy path of a reservation, one round trip: hold on the wallet if its available balance
# covers the total, then (only if it held) the hold's row, the payment projected `processing`
# on it and `wallet.funds_reserved` with the wallet and its version (the event's parameters are
# `ledger.numbered`'s; the statement adds the wallet, which only it knows)
_RESERVE = text(
    """
    WITH r AS (
        UPDATE accounts SET held = held + :total, version = version + 1, updated_at = now()
        WHERE tenant_id = :t AND kind = 'wallet' AND user_id = :u AND currency = :c
          AND balance - held >= :total
        RETURNING id, version
    ), h AS (
        INSERT INTO holds (id, payment_id, attempt, wallet_id, amount, status, expires_at)
        SELECT CAST(:hold AS TEXT), CAST(:p AS TEXT), CAST(:a AS INTEGER), r.id,
               CAST(:total AS BIGINT), 'active', CAST(:expires AS TIMESTAMPTZ) FROM r
    ), projected AS (
        UPDATE payments SET status = 'processing', wallet_id = r.id, attempt = :a,
            next_action_url = NULL, version = payments.version + 1, updated_at = now()
        FROM r WHERE payments.id = :p
    ), ev AS (
        INSERT INTO events (dedupe_key, type, tenant_id, payment_id, wallet_id, data)
        SELECT CAST(:k0 AS TEXT), CAST(:type0 AS TEXT), CAST(:tenant0 AS TEXT),
               CAST(:p0 AS TEXT), r.id, CAST(:data0 AS JSONB)
            || jsonb_build_object('wallet_id', r.id, 'wallet_version', r.version)
        FROM r
        ON CONFLICT (dedupe_key) DO NOTHING
    )
    SELECT id, version FROM r
    """)


async def reserve(conn: AsyncConnection, step: ReserveFunds, *, fresh: bool = False) -> Reservation:
    """Hold amount + fee on the wallet; the saga charges in the same workflow task, so the payment
    is projected `processing` at once. `fresh`: the payment was opened in this transaction, so it
    holds nothing yet."""
    done = None if fresh else await _existing_hold(conn, step.payment_id, step.attempt)
    if done is not None:
        return Reservation(ok=True, wallet_id=done)
    # One statement: the conditional hold on the wallet (concurrent payments can never overdraw
    # or lose an update), the hold's row, the projection and the event, each only if it held.
    reserved = (await conn.execute(_RESERVE, {
        "t": step.tenant_id, "u": step.user_id, "c": step.currency, "total": step.total,
        "hold": f"hold_{step.payment_id}_{step.attempt}", "p": step.payment_id,
        "a": step.attempt, "expires": datetime.fromisoformat(step.expires_at),
        **ledger.numbered([Event("wallet.funds_reserved", step.tenant_id, step.payment_id,
                                 step.attempt, {"amount": money(step.total, step.currency),
                                                "currency": step.currency,
                                                "expires_at": step.expires_at})])})).first()
    if reserved is None:
        exists = (await conn.execute(text(
            "SELECT balance FROM accounts WHERE tenant_id = :t AND kind = 'wallet' "
            "AND user_id = :u AND currency = :c"),
            {"t": step.tenant_id, "u": step.user_id, "c": step.currency})).first()
        if exists is None:
            return await _reservation_failed(
                conn, step, FailureCode.WALLET_NOT_FOUND,
                f"the user has no {step.currency} wallet")
        if exists.balance < 0:
            return await _reservation_failed(
                conn, step, FailureCode.WALLET_RESTRICTED,
                "the wallet is restricted: a dispute took its balance below zero")
        return await _reservation_failed(
            conn, step, FailureCode.INSUFFICIENT_FUNDS,
            "the wallet's available balance is lower than amount plus fee")
    return Reservation(ok=True, wallet_id=reserved.id)



async def begin_retry(conn: AsyncConnection, step: BeginRetry) -> None:
    await ledger.project(conn, step.payment_id, PaymentStatus.PENDING, attempt=step.attempt,
                         manual_retries=step.manual_retries, clear_failure=True)
    if step.connector is not None:  # the new attempt starts at the route's first connector
        await conn.execute(text("UPDATE payments SET connector = :c WHERE id = :p"),
                           {"c": step.connector, "p": step.payment_id})
    await ledger.emit(conn, "payment.retry_requested", step.tenant_id, step.payment_id,
                      step.attempt, {"manual_retries": step.manual_retries,
                                     "requested_by": step.source})



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



async def release(conn: AsyncConnection, payment_id: str, tenant_id: str, attempt: int,
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


async def expired_holds(conn: AsyncConnection, grace_seconds: int, limit: int = 200) -> list[Any]:
    """Active holds expired more than `grace_seconds` ago, oldest first, with their payment:
    (payment_id, attempt, tenant_id, amount, fee, currency, connector)."""
    return list((await conn.execute(text(
        """
        SELECT h.payment_id, h.attempt, p.tenant_id, p.amount, p.fee, p.currency, p.connector
        FROM holds h JOIN payments p ON p.id = h.payment_id
        WHERE h.status = 'active' AND h.expires_at < now() - make_interval(secs => :g)
        ORDER BY h.expires_at LIMIT :n
        """), {"g": grace_seconds, "n": limit})).all())


async def charged_at(conn: AsyncConnection, connector: str) -> int:
    """Payments charged at `connector` (completed, or refunded since)."""
    return int((await conn.execute(text(
        "SELECT count(*) FROM payments WHERE connector = :c "
        "AND status IN ('completed', 'partially_refunded', 'refunded')"),
        {"c": connector})).scalar() or 0)
