"""Disputes, as stored: each transition of a dispute's saga is one transaction with its ledger
journal (once, by reference), its projection and its domain event.

Money, for a dispute of `amount` (what the processor took back) with the processor's `fee`, on a
top-up that credited the wallet `credited`:

    opened   wallet  -from_wallet (min(amount, credited): what the top-up credited it)
             losses  -(amount - from_wallet)   the rest: the top-up fee the platform had earned
             losses  -fee                      the processor's dispute fee
             disputes +amount, settlement +fee  (held by the processor; paid to it)
    won      disputes -amount; wallet +from_wallet; losses +(amount - from_wallet)
    lost     disputes -amount; settlement +amount  (gone to the cardholder)

The wallet may go below zero: then it is restricted (it reserves nothing) until it is back.
A dispute on anything but a top-up's charge is `unexpected`: recorded, no money moved.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.dispute import OPEN, DisputeFacts, DisputeOpened, DisputeStep
from db import ledger
from db.ledger import SYSTEM_TENANT
from db.pages import Ask, Keyset, Page, Where, fetch
from domain.money import to_major as money
from domain.money import to_minor
from domain.times import rfc3339

COLUMNS = ("id, connector, processor_dispute_id, tenant_id, wallet_id, top_up_id, payment_id, "
           "charge_id, amount, from_wallet, fee, currency, reason, status, unexpected, evidence, "
           "evidence_due_by, outcome_reason, created_at, updated_at, closed_at, version")
LISTED = Keyset("disputes", scope="tenant_id = :t")


def _data(d: Any, **more: Any) -> dict[str, Any]:
    c = d.currency
    return {"dispute_id": d.id, "wallet_id": d.wallet_id, "top_up_id": d.top_up_id,
            "payment_id": d.payment_id, "charge_id": d.charge_id, "connector": d.connector,
            "amount": money(d.amount, c), "fee": money(d.fee, c),
            "from_wallet": money(d.from_wallet, c), "currency": c, "reason": d.reason,
            "status": d.status, "unexpected": d.unexpected,
            "evidence_due_by": rfc3339(d.evidence_due_by)} | more


async def _emit(conn: AsyncConnection, kind: str, d: Any, dedupe: str, **more: Any) -> None:
    await ledger.emit(conn, kind, d.tenant_id or SYSTEM_TENANT, d.id, 0, _data(d, **more),
                      wallet_id=d.wallet_id, dedupe=f"{d.id}:{dedupe}")


async def _row(conn: AsyncConnection, dispute_id: str) -> Any:
    return (await conn.execute(text(f"SELECT {COLUMNS} FROM disputes WHERE id = :id"),
                               {"id": dispute_id})).first()


async def open_dispute(conn: AsyncConnection, dispute_id: str, connector: str,
                       facts: DisputeFacts) -> DisputeOpened:
    """Record the dispute and, on a top-up's charge, take its money (once)."""
    known = await _row(conn, dispute_id)
    if known is None:
        known = await _insert(conn, dispute_id, connector, facts)
        if known.unexpected:
            await _emit(conn, "dispute.unexpected", known, "unexpected")
        else:
            balance = await _take(conn, known)
            await _emit(conn, "dispute.created", known, "created",
                        balance_after=money(balance, known.currency), restricted=balance < 0)
    return DisputeOpened(known.top_up_id, known.unexpected)


async def _insert(conn: AsyncConnection, dispute_id: str, connector: str,
                  facts: DisputeFacts) -> Any:
    c = facts.currency
    amount, fee = to_minor(facts.amount, c), to_minor(facts.fee, c)
    top_up = (await conn.execute(text(
        "SELECT tenant_id, wallet_id, amount FROM transfers "
        "WHERE id = :id AND kind = 'top_up' AND status = 'succeeded' AND currency = :c"),
        {"id": facts.owner, "c": c})).first()
    payment = None if top_up else (await conn.execute(text(
        "SELECT tenant_id, wallet_id FROM payments WHERE id = :id"), {"id": facts.owner})).first()
    owner = top_up or payment
    return (await conn.execute(text(
        f"""
        INSERT INTO disputes (id, connector, processor_dispute_id, tenant_id, wallet_id,
            top_up_id, payment_id, charge_id, amount, from_wallet, fee, currency, reason, status,
            unexpected, evidence_due_by)
        VALUES (:id, :conn, :pid, :t, :w, :tup, :pay, :ch, :amount, :from_wallet, :fee, :c,
                :reason, 'needs_response', :unexpected, :due)
        RETURNING {COLUMNS}
        """), {"id": dispute_id, "conn": connector, "pid": facts.processor_dispute_id,
               "t": owner.tenant_id if owner else None, "w": owner.wallet_id if owner else None,
               "tup": facts.owner if top_up else None,
               "pay": facts.owner if payment else None, "ch": facts.charge_id,
               "amount": amount, "from_wallet": min(amount, top_up.amount) if top_up else 0,
               "fee": fee, "c": c, "reason": facts.reason, "unexpected": top_up is None,
               "due": datetime.fromisoformat(facts.evidence_due_by.replace("Z", "+00:00"))})
    ).one()


async def _take(conn: AsyncConnection, d: Any) -> int:
    journal = await ledger.journal(conn, "dispute", f"dispute:{d.id}:opened", None, d.currency)
    balance: int = (await conn.execute(text(
        "UPDATE accounts SET balance = balance - :a, disputed = disputed + :a, "
        "version = version + 1, updated_at = now() WHERE id = :w RETURNING balance"),
        {"a": d.from_wallet, "w": d.wallet_id})).scalar_one()
    disputes = await ledger.system_account(conn, "disputes", d.currency)
    losses = await ledger.system_account(conn, "losses", d.currency)
    settlement = await ledger.system_account(conn, "settlement", d.currency)
    rows = [(d.wallet_id, "dispute", -d.from_wallet, balance),
            (losses, "dispute", -(d.amount - d.from_wallet), None),
            (losses, "dispute_fee", -d.fee, None),
            (disputes, "dispute", d.amount, None),
            (settlement, "dispute_fee", d.fee, None)]
    await ledger.entries(conn, journal, d.currency, None, rows)
    return balance


async def submit_evidence(conn: AsyncConnection, step: DisputeStep) -> str:
    """The evidence the processor took: `under_review`, with its event (once)."""
    assert step.evidence is not None
    d = (await conn.execute(text(
        f"UPDATE disputes SET status = 'under_review', evidence = CAST(:e AS JSONB), "
        f"version = version + 1, updated_at = now() "
        f"WHERE id = :id AND status = 'needs_response' RETURNING {COLUMNS}"),
        {"id": step.dispute_id, "e": json.dumps(
            {"text": step.evidence.text, "files": step.evidence.files})})).first()
    if d is not None:
        await _emit(conn, "dispute.evidence_submitted", d, "evidence_submitted")
        return str(d.status)
    return str((await _row(conn, step.dispute_id)).status)


async def decide(conn: AsyncConnection, step: DisputeStep) -> str:
    """The dispute is `won` (its money goes back) or `lost` (it stays gone), once."""
    d = (await conn.execute(text(
        f"UPDATE disputes SET status = :s, outcome_reason = :r, closed_at = now(), "
        f"version = version + 1, updated_at = now() "
        f"WHERE id = :id AND status = ANY(CAST(:open AS TEXT[])) RETURNING {COLUMNS}"),
        {"id": step.dispute_id, "s": step.status, "r": step.reason, "open": list(OPEN)})).first()
    if d is None:
        return str((await _row(conn, step.dispute_id)).status)
    more: dict[str, Any] = {"outcome_reason": step.reason}
    if not d.unexpected:
        balance = await _settle(conn, d, won=step.status == "won")
        more |= {"balance_after": money(balance, d.currency), "restricted": balance < 0}
    await _emit(conn, f"dispute.{d.status}", d, str(d.status), **more)
    return str(d.status)


async def _settle(conn: AsyncConnection, d: Any, *, won: bool) -> int:
    back = d.from_wallet if won else 0
    balance: int = (await conn.execute(text(
        "UPDATE accounts SET balance = balance + :back, disputed = disputed - :a, "
        "version = version + 1, updated_at = now() WHERE id = :w RETURNING balance"),
        {"back": back, "a": d.from_wallet, "w": d.wallet_id})).scalar_one()
    journal = await ledger.journal(conn, "dispute", f"dispute:{d.id}:{'won' if won else 'lost'}",
                                   None, d.currency)
    disputes = await ledger.system_account(conn, "disputes", d.currency)
    if won:
        losses = await ledger.system_account(conn, "losses", d.currency)
        rows = [(disputes, "dispute", -d.amount, None),
                (d.wallet_id, "dispute_won", d.from_wallet, balance),
                (losses, "dispute_won", d.amount - d.from_wallet, None)]
    else:
        settlement = await ledger.system_account(conn, "settlement", d.currency)
        rows = [(disputes, "dispute", -d.amount, None),
                (settlement, "dispute_lost", d.amount, None)]
    await ledger.entries(conn, journal, d.currency, None, rows)
    return balance


async def remind(conn: AsyncConnection, step: DisputeStep) -> None:
    """`dispute.evidence_due_soon`, once per reminder."""
    d = await _row(conn, step.dispute_id)
    if d.status == "needs_response":
        await _emit(conn, "dispute.evidence_due_soon", d, f"due_soon:{step.reminder_hours}",
                    hours_left=step.reminder_hours)


# -- reading ----------------------------------------------------------------------------------

async def get(conn: AsyncConnection, tenant_id: str, dispute_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(text(
        f"SELECT {COLUMNS} FROM disputes WHERE id = :id AND tenant_id = :t"),
        {"id": dispute_id, "t": tenant_id})).mappings().first()
    return dict(row) if row else None


async def page(conn: AsyncConnection, tenant_id: str, ask: Ask, *, statuses: list[str],
               wallet_id: str | None) -> Page:
    """The tenant's disputes, newest first."""
    where = Where(["tenant_id = :t"], {"t": tenant_id})
    if statuses:
        where.add("status = ANY(CAST(:statuses AS TEXT[]))", statuses=statuses)
    if wallet_id:
        where.add("wallet_id = :w", w=wallet_id)
    return await fetch(conn, LISTED, ask, select=COLUMNS, where=where)


async def timeline(conn: AsyncConnection, dispute_id: str) -> list[dict[str, Any]]:
    """The dispute's domain events, oldest first."""
    return [dict(r) for r in (await conn.execute(text(
        "SELECT type, data, created_at FROM events WHERE payment_id = :id ORDER BY id"),
        {"id": dispute_id})).mappings()]


async def by_processor(conn: AsyncConnection, connector: str,
                       processor_ids: list[str]) -> dict[str, Any]:
    """Reconciliation's side: the ledger's disputes by the processor's dispute id."""
    return {r.processor_dispute_id: r for r in await conn.execute(text(
        "SELECT processor_dispute_id, id, tenant_id, amount, currency, status, unexpected "
        "FROM disputes WHERE connector = :c "
        "AND processor_dispute_id = ANY(CAST(:ids AS TEXT[]))"),
        {"c": connector, "ids": processor_ids})}
