"""Ledger and outbox primitives shared by the saga's activities and the API's deposits.

All functions run inside the caller's transaction; none commits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.ids import new_id

SYSTEM_TENANT = "_system"


_EMIT = text(
    """
    INSERT INTO events (dedupe_key, type, tenant_id, payment_id, wallet_id, data)
    VALUES (:k, :type, :tenant, :p, :w, CAST(:data AS JSONB))
    ON CONFLICT (dedupe_key) DO NOTHING
    """)


@dataclass
class Event:
    """A domain event for the outbox, written once per (subject, attempt, type)."""

    type: str
    tenant_id: str
    payment_id: str | None
    attempt: int
    data: dict[str, Any]
    wallet_id: str | None = None
    dedupe: str | None = None

    def row(self) -> dict[str, Any]:
        return {"k": self.dedupe or f"{self.payment_id}:{self.attempt}:{self.type}",
                "type": self.type, "tenant": self.tenant_id, "p": self.payment_id,
                "w": self.wallet_id, "data": json.dumps(self.data)}


async def emit(conn: AsyncConnection, event_type: str, tenant_id: str, payment_id: str | None,
               attempt: int, data: dict[str, Any], *, wallet_id: str | None = None,
               dedupe: str | None = None) -> bool:
    """Write a domain event to the outbox, once per (subject, attempt, type); False when it was
    written before (a retried step)."""
    event = Event(event_type, tenant_id, payment_id, attempt, data, wallet_id, dedupe)
    return bool((await conn.execute(_EMIT, event.row())).rowcount == 1)


def events_values(count: int) -> str:
    """`count` typed rows of (dedupe_key, type, tenant_id, payment_id, wallet_id, data), for an
    `INSERT INTO events` inside a larger statement (`VALUES ...` or `SELECT ... FROM (VALUES
    ...)`), their parameters from `numbered`; one INSERT keeps the events' ids in their order."""
    return ", ".join(f"(CAST(:k{i} AS TEXT), CAST(:type{i} AS TEXT), CAST(:tenant{i} AS TEXT), "
                     f"CAST(:p{i} AS TEXT), CAST(:w{i} AS TEXT), CAST(:data{i} AS JSONB))"
                     for i in range(count))


def numbered(events: list[Event]) -> dict[str, Any]:
    """The parameters of `events_values(len(events))`."""
    return {f"{name}{i}": value for i, event in enumerate(events)
            for name, value in event.row().items()}


async def emit_all(conn: AsyncConnection, events: list[Event]) -> None:
    """Write several events in one round trip, in order."""
    await conn.execute(_EMIT, [e.row() for e in events] if len(events) > 1 else events[0].row())


async def project(conn: AsyncConnection, payment_id: str, status: str, *,
                  wallet_id: str | None = None, attempt: int | None = None,
                  manual_retries: int | None = None, gateway_reference: str | None = None,
                  failure_code: str | None = None, failure_message: str | None = None,
                  clear_failure: bool = False, paid: tuple[int, int] | None = None,
                  next_action_url: str | None = None) -> datetime | None:
    """Update the payment's read projection to what the workflow just did; the payment's
    creation time, for the end-to-end latency. `paid`: (amount, fee) once captured, all of it or
    (a manual payment's partial capture) less; `next_action_url` stands only while the payment
    requires the customer's action."""
    created: datetime | None = (await conn.execute(text(
        """
        UPDATE payments SET
            status = :status,
            wallet_id = COALESCE(:wallet, wallet_id),
            attempt = COALESCE(:attempt, attempt),
            manual_retries = COALESCE(:retries, manual_retries),
            gateway_reference = COALESCE(:gref, gateway_reference),
            failure_code = CASE WHEN :clear THEN NULL ELSE COALESCE(:fcode, failure_code) END,
            failure_message = CASE WHEN :clear THEN NULL ELSE COALESCE(:fmsg, failure_message) END,
            amount = COALESCE(:paid, amount),
            fee = COALESCE(:paid_fee, fee),
            amount_captured = COALESCE(:paid, amount_captured),
            next_action_url = CASE WHEN :status = 'requires_action'
                                   THEN COALESCE(:action, next_action_url) END,
            version = version + 1,
            updated_at = now()
        WHERE id = :id
        RETURNING created_at
        """), {"status": str(status), "wallet": wallet_id, "attempt": attempt,
               "retries": manual_retries, "gref": gateway_reference, "fcode": failure_code,
               "fmsg": failure_message, "clear": clear_failure, "id": payment_id,
               "paid": paid[0] if paid else None, "paid_fee": paid[1] if paid else None,
               "action": next_action_url})).scalar()
    return created


_KNOWN_SYSTEM_ACCOUNTS: set[tuple[str, str]] = set()


async def system_account(conn: AsyncConnection, kind: str, currency: str) -> str:
    """The funding, settlement or fee account of a currency, created on first use (and, once
    seen committed, remembered by this process per database, so the hot path does not ask again)."""
    account_id = f"acc_{kind}_{currency.lower()}"
    known = (str(conn.engine.url), account_id)
    if known in _KNOWN_SYSTEM_ACCOUNTS:
        return account_id
    created = (await conn.execute(text(
        """
        INSERT INTO accounts (id, tenant_id, kind, user_id, currency)
        VALUES (:id, :tenant, :kind, '', :c)
        ON CONFLICT DO NOTHING RETURNING id
        """), {"id": account_id, "tenant": SYSTEM_TENANT, "kind": kind, "c": currency})).first()
    if created is None:  # it existed before this transaction: safe to remember
        _KNOWN_SYSTEM_ACCOUNTS.add(known)
    return account_id


async def journal(conn: AsyncConnection, kind: str, reference: str, payment_id: str | None,
                  currency: str) -> str:
    journal_id = new_id("jnl")
    await conn.execute(text(
        "INSERT INTO journals (id, kind, reference, payment_id, currency) "
        "VALUES (:id, :kind, :ref, :p, :c)"),
        {"id": journal_id, "kind": kind, "ref": reference, "p": payment_id, "c": currency})
    return journal_id


async def journal_once(conn: AsyncConnection, kind: str, reference: str, payment_id: str | None,
                       currency: str) -> str | None:
    """A new journal, or None when one with this reference was posted already."""
    journal_id = new_id("jnl")
    made = (await conn.execute(text(
        "INSERT INTO journals (id, kind, reference, payment_id, currency) "
        "VALUES (:id, :kind, :ref, :p, :c) ON CONFLICT (reference) DO NOTHING RETURNING id"),
        {"id": journal_id, "kind": kind, "ref": reference, "p": payment_id, "c": currency})).scalar()
    return str(made) if made else None


Row = tuple[str, str, int, int | None]  # (account, type, signed amount, balance after)


def balanced(rows: list[Row]) -> list[Row]:
    """A journal's rows without the zero ones; ValueError unless they sum to zero."""
    if sum(amount for _, _, amount, _ in rows) != 0:
        raise ValueError("a journal's entries must sum to zero")
    return [row for row in rows if row[2] != 0]


async def entries(conn: AsyncConnection, journal_id: str, currency: str, payment_id: str | None,
                  rows: list[Row]) -> None:
    """Post (account, type, signed amount, balance after) rows; they must sum to zero."""
    await conn.execute(text(
        """
        INSERT INTO entries (journal_id, account_id, type, amount, balance_after, currency, payment_id)
        VALUES (:j, :account, :type, :amount, :after, :c, :p)
        """), [{"j": journal_id, "account": account, "type": kind, "amount": amount,
                "after": after, "c": currency, "p": payment_id}
               for account, kind, amount, after in balanced(rows)])
