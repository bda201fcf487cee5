"""The business figures `/metrics` reports, read from the tables at scrape time (so every API
process reports the same, whole-system truth): events by type, payment failures by code, money
moved by currency, payments by status, those waiting for an operator, holds, the oldest payment
in flight, reconciliation's findings, heals and open exceptions, the outbox's backlog, manual
captures by outcome and the authorizations about to lapse."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.money import currency_exponent


@dataclass
class Figures:
    events: dict[str, int] = field(default_factory=dict)  # by type
    failures: dict[str, int] = field(default_factory=dict)  # payment.failed, by code
    moved: dict[tuple[str, str], int] = field(default_factory=dict)  # (currency, outcome): minor
    payments: dict[str, int] = field(default_factory=dict)  # by status
    waiting: dict[str, int] = field(default_factory=dict)  # failed payments, by failure code
    holds: dict[str, tuple[int, int]] = field(default_factory=dict)  # currency: (count, amount)
    oldest_in_flight_seconds: float = 0.0
    findings: dict[tuple[str, str], int] = field(default_factory=dict)  # (class, severity)
    heals: dict[str, int] = field(default_factory=dict)  # by heal
    open_exceptions: dict[str, int] = field(default_factory=dict)  # by severity
    last_reconciliation: float = 0.0  # epoch seconds, 0: never
    outbox_pending: int = 0
    outbox_lag_seconds: float = 0.0
    captures: dict[str, int] = field(default_factory=dict)  # manual capture: by outcome
    expiring_soon: int = 0  # authorizations waiting for a capture that lapse within 24 h
    processor_events: dict[str, int] = field(default_factory=dict)  # by status
    waiting_on_processor: int = 0  # payments whose charge's outcome arrives later
    waiting_on_processor_oldest_seconds: float = 0.0
    disputes: dict[str, int] = field(default_factory=dict)  # by status
    disputes_due_soon: int = 0  # needing a response, evidence due within 24 h


async def figures(conn: AsyncConnection) -> Figures:
    f = Figures()
    f.events = {r.type: r.n for r in await conn.execute(text(
        "SELECT type, count(*) AS n FROM events GROUP BY type"))}
    f.failures = {(r.code or "unknown"): r.n for r in await conn.execute(text(
        "SELECT data->>'code' AS code, count(*) AS n FROM events "
        "WHERE type = 'payment.failed' GROUP BY 1"))}
    for r in await conn.execute(text(
            """
            SELECT data->>'currency' AS currency, type, jsonb_typeof(data->'amount') AS form,
                   sum((data->>'amount')::numeric) AS total
            FROM events WHERE type IN ('payment.completed', 'payment.refunded')
              AND data ? 'currency' GROUP BY 1, 2, 3
            """)):
        # events before the money format change carried minor units as numbers
        minor = int(r.total if r.form == "number"
                    else r.total.scaleb(currency_exponent(r.currency)))
        key = (r.currency, "completed" if r.type == "payment.completed" else "refunded")
        f.moved[key] = f.moved.get(key, 0) + minor
    f.payments = {r.status: r.n for r in await conn.execute(text(
        "SELECT status, count(*) AS n FROM payments GROUP BY status"))}
    f.waiting = {(r.failure_code or "unknown"): r.n for r in await conn.execute(text(
        "SELECT failure_code, count(*) AS n FROM payments WHERE status = 'failed' "
        "GROUP BY failure_code"))}
    f.holds = {r.currency: (r.n, r.total) for r in await conn.execute(text(
        # every wallet currency, 0 when nothing is held
        "SELECT a.currency, count(h.id) AS n, COALESCE(sum(h.amount), 0) AS total "
        "FROM accounts a LEFT JOIN holds h ON h.wallet_id = a.id AND h.status = 'active' "
        "WHERE a.kind = 'wallet' GROUP BY a.currency"))}
    f.oldest_in_flight_seconds = float((await conn.execute(text(
        "SELECT EXTRACT(EPOCH FROM now() - min(created_at)) FROM payments "
        "WHERE status IN ('pending', 'reserved', 'processing')"))).scalar() or 0)
    f.findings = {(r[0], r.severity): r.n for r in await conn.execute(text(
        "SELECT data->>'class' AS class, data->>'severity' AS severity, count(*) AS n "
        "FROM events WHERE type = 'reconciliation.finding' GROUP BY 1, 2"))}
    f.heals = {r.heal: r.n for r in await conn.execute(text(
        "SELECT data->>'heal' AS heal, count(*) AS n FROM events "
        "WHERE type = 'reconciliation.healed' GROUP BY 1"))}
    f.open_exceptions = {r.severity: r.n for r in await conn.execute(text(
        "SELECT severity, count(*) AS n FROM reconciliation_findings "
        "WHERE status IN ('open', 'healing') GROUP BY 1"))}
    f.last_reconciliation = float((await conn.execute(text(
        "SELECT EXTRACT(EPOCH FROM max(completed_at)) FROM reconciliations"))).scalar() or 0)
    outbox = (await conn.execute(text(
        "SELECT count(*) AS n, EXTRACT(EPOCH FROM now() - min(created_at)) AS age "
        "FROM events WHERE published_at IS NULL"))).one()
    f.outbox_pending, f.outbox_lag_seconds = outbox.n, float(outbox.age or 0)
    manual = (await conn.execute(text(
        """
        SELECT count(*) FILTER (WHERE amount_captured IS NOT NULL) AS captured,
               count(*) FILTER (WHERE status = 'requires_capture'
                                  AND capture_before < now() + interval '24 hours') AS soon
        FROM payments WHERE capture_method = 'manual'
        """))).one()
    f.captures = {"captured": manual.captured, "voided": f.events.get("payment.voided", 0),
                  "expired": f.events.get("payment.authorization_expired", 0)}
    f.expiring_soon = manual.soon
    f.processor_events = {r.status: r.n for r in await conn.execute(text(
        "SELECT status, count(*) AS n FROM processor_events GROUP BY status"))}
    waiting = (await conn.execute(text(
        "SELECT count(*) AS n, EXTRACT(EPOCH FROM now() - min(updated_at)) AS age FROM payments "
        "WHERE status IN ('processing', 'requires_action') AND gateway_reference IS NOT NULL"))
    ).one()
    f.waiting_on_processor = waiting.n
    f.waiting_on_processor_oldest_seconds = float(waiting.age or 0)
    f.disputes = {r.status: r.n for r in await conn.execute(text(
        "SELECT status, count(*) AS n FROM disputes GROUP BY status"))}
    f.disputes_due_soon = int((await conn.execute(text(
        "SELECT count(*) FROM disputes WHERE status = 'needs_response' "
        "AND evidence_due_by < now() + interval '24 hours'"))).scalar() or 0)
    return f
