"""Reconciliation, as stored: runs, each page's counts, the charges a run has seen, findings (once
per gateway record and class, each with its domain event), heals and an operator's resolution,
and the ledger's side of a comparison (what it knows of the payments, top-ups, payouts and refunds
a page of the gateway's report names, in bulk)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.payment import CaptureFunds
from db import ledger
from db.ledger import SYSTEM_TENANT
from db.models import Reconciliation
from db.pages import Ask, Keyset, Page, Where, fetch
from domain import reconciliation as rules
from domain.money import MoneyError, to_major, to_minor
from domain.reconciliation import Heal, LedgerPayment, LedgerTransfer, Verdict

RUNS = Keyset("reconciliations")
FINDINGS = Keyset("reconciliation_findings", ("id",), descending=False, integer_ids=True)


def _money(amount: object, currency: str) -> str:
    """A gateway amount in the API's form (decimal string in major units), when it parses."""
    try:
        return to_major(to_minor(str(amount), currency), currency)
    except (MoneyError, ValueError):
        return str(amount)


# -- runs -------------------------------------------------------------------------------------

async def begin(conn: AsyncConnection, run_id: str, trigger: str, requested_by: str | None,
                start: datetime, end: datetime) -> None:
    await conn.execute(text(
        "INSERT INTO reconciliations (id, trigger, requested_by, window_start, window_end, "
        "status) VALUES (:id, :trigger, :by, :s, :e, 'running') ON CONFLICT (id) DO NOTHING"),
        {"id": run_id, "trigger": trigger, "by": requested_by, "s": start, "e": end})


async def run(engine: AsyncEngine, run_id: str) -> Reconciliation | None:
    async with AsyncSession(engine) as session:
        return await session.get(Reconciliation, run_id)


async def runs_page(conn: AsyncConnection, ask: Ask) -> Page:
    """Runs, newest first, not counted."""
    return await fetch(conn, RUNS, ask, select="*", count=False)


async def count_page(conn: AsyncConnection, run_id: str, cursor: str,
                     counts: Counter[str]) -> None:
    """A page's counts by class (a retried page rewrites its own row)."""
    await conn.execute(text(
        "INSERT INTO reconciliation_pages (reconciliation_id, cursor, counts) "
        "VALUES (:r, :c, CAST(:n AS JSONB)) "
        "ON CONFLICT (reconciliation_id, cursor) DO UPDATE SET counts = excluded.counts"),
        {"r": run_id, "c": cursor, "n": json.dumps(dict(counts))})


async def seen(conn: AsyncConnection, run_id: str, keys: list[str]) -> None:
    """The charges' idempotency keys the report listed (the ledger's side skips them)."""
    await conn.execute(text(
        "INSERT INTO reconciliation_seen (reconciliation_id, key) "
        "SELECT :r, unnest(CAST(:keys AS TEXT[])) ON CONFLICT DO NOTHING"),
        {"r": run_id, "keys": keys})


async def finish(conn: AsyncConnection, run_id: str) -> dict[str, int]:
    """Sum the pages' counts into the run, once, with `reconciliation.completed`; a run finished
    before answers its stored counts. The run's scratch rows go."""
    await _unmatched_events(conn, run_id)
    counts: Counter[str] = Counter()
    for (page,) in await conn.execute(text(
            "SELECT counts FROM reconciliation_pages WHERE reconciliation_id = :r"), {"r": run_id}):
        counts.update(page)
    total = dict(sorted(counts.items()))
    done = await conn.execute(text(
        "UPDATE reconciliations SET status = 'completed', counts = CAST(:c AS JSONB), "
        "completed_at = now() WHERE id = :r AND status = 'running'"),
        {"c": json.dumps(total), "r": run_id})
    await conn.execute(text("DELETE FROM reconciliation_seen WHERE reconciliation_id = :r"),
                       {"r": run_id})
    await conn.execute(text("DELETE FROM reconciliation_pages WHERE reconciliation_id = :r"),
                       {"r": run_id})
    if done.rowcount:
        await ledger.emit(conn, "reconciliation.completed", SYSTEM_TENANT, None, 0,
                          {"reconciliation_id": run_id, "counts": total,
                           "critical": rules.critical(total)},
                          dedupe=f"{run_id}:completed")
        return total
    stored = (await conn.execute(text("SELECT counts FROM reconciliations WHERE id = :r"),
                                 {"r": run_id})).scalar()
    return dict(stored or {})


async def _unmatched_events(conn: AsyncConnection, run_id: str) -> None:
    """The processors' events received in the run's window that the inbox could not match to a
    payment or top-up: one `unmatched_processor_event` finding each (an event seen by an earlier
    run counts again, as `times_seen`), counted under their own page."""
    rows = (await conn.execute(text(
        """
        SELECT e.connector, e.event_id, e.type, e.subject, e.outcome, e.payload, e.received_at
        FROM processor_events e JOIN reconciliations r ON r.id = :r AND r.status = 'running'
        WHERE e.status = 'unmatched' AND e.received_at >= r.window_start
          AND e.received_at < r.window_end
        ORDER BY e.id
        """), {"r": run_id})).all()
    for e in rows:
        charge = (e.payload.get("data") or {}).get("object") or {}
        record = {"idempotency_key": f"event:{e.connector}:{e.event_id}", "id": e.event_id,
                  "type": e.type, "subject": e.subject, "charge_id": charge.get("id"),
                  "amount": charge.get("amount"), "currency": charge.get("currency"),
                  "received_at": e.received_at.isoformat()}
        await record_finding(conn, run_id, record, Verdict(
            rules.Finding.UNMATCHED_PROCESSOR_EVENT,
            detail=f"{e.type}: {e.outcome or 'about nothing paysaga knows'}"), None, e.connector)
    if rows:
        await count_page(conn, run_id, "events", Counter(
            {rules.Finding.UNMATCHED_PROCESSOR_EVENT.value: len(rows)}))


# -- the ledger's side of a page --------------------------------------------------------------

@dataclass
class LedgerView:
    """What the ledger knows of a page's records."""

    payments: dict[str, LedgerPayment] = field(default_factory=dict)  # by charge key
    transfers: dict[str, LedgerTransfer] = field(default_factory=dict)  # by transfer id
    reversed: set[str] = field(default_factory=set)  # charge ids an earlier heal refunded
    refunds: dict[str, tuple[str, int, str]] = field(default_factory=dict)  # id: status, amount, cur


async def ledger_view(conn: AsyncConnection, charges: list[dict[str, Any]],
                      moved: list[dict[str, Any]], refunds: list[dict[str, Any]]) -> LedgerView:
    return LedgerView(await _payments(conn, charges), await _transfers(conn, moved),
                      await _reversed(conn, [str(c["id"]) for c in charges]),
                      await _refunds(conn, [str(r["idempotency_key"]) for r in refunds]))


async def _payments(conn: AsyncConnection,
                    charges: list[dict[str, Any]]) -> dict[str, LedgerPayment]:
    """The ledger's view of each charge's payment and attempt, in three queries per page."""
    keyed = {str(c["idempotency_key"]): rules.parse_gateway_key(str(c["idempotency_key"]))
             for c in charges}
    ids = sorted({p for p, _ in filter(None, keyed.values())})
    if not ids:
        return {}
    rows = {r.id: r for r in await conn.execute(text(
        "SELECT id, tenant_id, status, attempt, amount, currency, gateway_reference "
        "FROM payments WHERE id = ANY(CAST(:ids AS TEXT[]))"), {"ids": ids})}
    captured = {r.reference for r in await conn.execute(text(
        "SELECT reference FROM journals WHERE reference = ANY(CAST(:refs AS TEXT[]))"),
        {"refs": [f"capture:{p}:{a}" for p, a in filter(None, keyed.values())]})}
    holds = {(r.payment_id, r.attempt): r.status for r in await conn.execute(text(
        "SELECT payment_id, attempt, status FROM holds WHERE payment_id = ANY(CAST(:ids AS TEXT[]))"),
        {"ids": ids})}
    charge_ids = {str(c["idempotency_key"]): str(c["id"]) for c in charges}
    found = {}
    for key, parsed in keyed.items():
        if parsed is None or parsed[0] not in rows:
            continue
        r = rows[parsed[0]]
        found[key] = LedgerPayment(
            r.id, r.tenant_id, r.status, r.attempt, r.amount, r.currency,
            # captured with this very charge (one capture per payment, whichever connector)
            captured=f"capture:{parsed[0]}:{parsed[1]}" in captured
            and r.gateway_reference in (None, charge_ids[key]),
            hold=holds.get(parsed))
    return found


async def _transfers(conn: AsyncConnection,
                     records: list[dict[str, Any]]) -> dict[str, LedgerTransfer]:
    """The ledger's view of each top-up charge's and payout's transfer, in one query."""
    ids = sorted({str(rules.transfer_of(r)) for r in records})
    if not ids:
        return {}
    return {r.id: LedgerTransfer(r.id, r.kind, r.tenant_id, r.status, r.amount, r.fee,
                                 r.currency, r.gateway_reference)
            for r in await conn.execute(text(
                "SELECT id, kind, tenant_id, status, amount, fee, currency, gateway_reference "
                "FROM transfers WHERE id = ANY(CAST(:ids AS TEXT[]))"), {"ids": ids})}


async def _reversed(conn: AsyncConnection, charge_ids: list[str]) -> set[str]:
    """Charges an earlier heal refunded at the gateway."""
    return {r.gateway_reference for r in await conn.execute(text(
        "SELECT gateway_reference FROM reconciliation_findings WHERE heal = 'refund' "
        "AND status = 'healed' AND gateway_reference = ANY(CAST(:ids AS TEXT[]))"),
        {"ids": charge_ids})}


async def _refunds(conn: AsyncConnection, ids: list[str]) -> dict[str, tuple[str, int, str]]:
    if not ids:
        return {}
    return {r.id: (r.status, r.amount, r.currency) for r in await conn.execute(text(
        "SELECT id, status, amount, currency FROM refunds WHERE id = ANY(CAST(:ids AS TEXT[]))"),
        {"ids": ids})}


async def unseen_captures(conn: AsyncConnection, run_id: str, start: datetime, end: datetime,
                          after: str, limit: int) -> Sequence[Any]:
    """Captures posted in the window whose charge the report did not list, by journal reference:
    (reference, payment_id, tenant_id, amount, currency, status, attempt, gateway_reference,
    connector, attempt_of)."""
    return (await conn.execute(text(
        """
        SELECT j.reference, j.payment_id, p.tenant_id, p.amount, p.currency, p.status,
               p.attempt, p.gateway_reference, p.connector,
               split_part(j.reference, ':', 3) AS attempt_of
        FROM journals j JOIN payments p ON p.id = j.payment_id
        WHERE j.kind = 'payment' AND j.created_at >= :s AND j.created_at < :e
          AND j.reference > :after
          AND NOT EXISTS (SELECT 1 FROM reconciliation_seen s
                          WHERE s.reconciliation_id = :r
                            AND s.key = j.payment_id || '\\:a' || split_part(j.reference, ':', 3)
                                        || COALESCE('\\:' || p.connector, ''))
        ORDER BY j.reference LIMIT :n
        """), {"s": start, "e": end, "after": after, "r": run_id, "n": limit})).all()


# -- findings -----------------------------------------------------------------------------------

async def record_finding(conn: AsyncConnection, run_id: str, record: dict[str, Any],
                         verdict: Verdict, owner: LedgerPayment | LedgerTransfer | None,
                         connector: str) -> int | None:
    """Record a finding (once per gateway record and class) with its event; its id when the
    workflow should heal it now."""
    currency = str(record.get("currency"))
    ledger_side: dict[str, Any] | None = None
    if isinstance(owner, LedgerPayment):
        ledger_side = {"payment_id": owner.id, "status": owner.status, "attempt": owner.attempt,
                       "amount": to_major(owner.amount, owner.currency),
                       "currency": owner.currency, "hold": owner.hold}
    elif isinstance(owner, LedgerTransfer):
        ledger_side = {f"{owner.kind}_id": owner.id, "status": owner.status,
                       "amount": to_major(owner.amount, owner.currency),
                       "fee": to_major(owner.fee, owner.currency), "currency": owner.currency}
    evidence = {"gateway": record, "detail": verdict.detail, "ledger": ledger_side}
    # a replayed dispute event is healed by being stored: the inbox's relay carries it
    status = {Heal.NONE: "open", Heal.REPLAY: "healed"}.get(verdict.heal, "healing")
    row = (await conn.execute(text(
        """
        INSERT INTO reconciliation_findings (class, severity, gateway_key, gateway_reference,
            tenant_id, payment_id, evidence, heal, status, first_reconciliation_id,
            last_reconciliation_id, connector)
        VALUES (:class, :severity, :key, :ref, :tenant, :p, CAST(:evidence AS JSONB), :heal,
                :status, :run, :run, :connector)
        ON CONFLICT (gateway_key, class) DO UPDATE SET
            times_seen = reconciliation_findings.times_seen
                + (reconciliation_findings.last_reconciliation_id <> :run)::int,
            last_reconciliation_id = :run, updated_at = now()
        RETURNING id, status, (xmax = 0) AS inserted
        """), {"class": verdict.finding.value, "severity": rules.SEVERITY[verdict.finding],
               "key": str(record["idempotency_key"]),
               "ref": record.get("charge_id") or record.get("id"),
               "tenant": owner.tenant_id if owner else None,
               "p": owner.id if owner else record.get("payment_id"),
               "evidence": json.dumps(evidence), "heal": verdict.heal.value, "status": status,
               "run": run_id, "connector": connector})).one()
    if row.inserted:
        await ledger.emit(conn, "reconciliation.finding",
                          owner.tenant_id if owner else SYSTEM_TENANT,
                          owner.id if owner else None, 0, {
                              "finding_id": row.id, "class": verdict.finding.value,
                              "severity": rules.SEVERITY[verdict.finding],
                              "gateway_key": str(record["idempotency_key"]),
                              "gateway_reference": str(record.get("id")),
                              "amount": _money(record.get("amount"), currency),
                              "currency": currency, "heal": verdict.heal.value,
                              "connector": connector, "reconciliation_id": run_id,
                              "detail": verdict.detail},
                          dedupe=f"finding:{row.id}:found")
    return int(row.id) if row.status == "healing" else None


async def to_heal(conn: AsyncConnection, finding_id: int) -> Any:
    """A finding with its payment's amount, fee, currency, wallet and tenant (`p_tenant`)."""
    return (await conn.execute(text(
        "SELECT f.*, p.amount, p.fee, p.currency, p.wallet_id, p.tenant_id AS p_tenant "
        "FROM reconciliation_findings f LEFT JOIN payments p ON p.id = f.payment_id "
        "WHERE f.id = :f"), {"f": finding_id})).one()


async def failed_heal(conn: AsyncConnection, finding_id: int) -> Any:
    """A finding whose heal failed, with its payment: (gateway_key, heal, id, tenant_id, amount,
    currency)."""
    return (await conn.execute(text(
        "SELECT f.gateway_key, f.heal, p.id, p.tenant_id, p.amount, p.currency "
        "FROM reconciliation_findings f JOIN payments p ON p.id = f.payment_id "
        "WHERE f.id = :f"), {"f": finding_id})).one()


async def settle_heal(conn: AsyncConnection, finding_id: int, step: CaptureFunds, status: str,
                      heal: Heal, outcome: str) -> None:
    """The heal's outcome on the finding, with its event."""
    await conn.execute(text(
        "UPDATE reconciliation_findings SET status = :s, outcome = :o, updated_at = now() "
        "WHERE id = :f AND status = 'healing'"), {"s": status, "o": outcome, "f": finding_id})
    await ledger.emit(conn, "reconciliation.healed" if status == "healed"
                      else "reconciliation.heal_failed", step.tenant_id, step.payment_id,
                      step.attempt, {"finding_id": finding_id, "heal": heal.value,
                                     "outcome": outcome,
                                     "amount": to_major(step.amount, step.currency),
                                     "currency": step.currency},
                      dedupe=f"finding:{finding_id}:healed")


async def findings_page(conn: AsyncConnection, run_id: str | None, statuses: list[str],
                        classes: list[str], ask: Ask) -> Page:
    """Findings (of one run, when given), oldest first, not counted."""
    where = Where()
    if run_id is not None:
        where.add("(last_reconciliation_id = :run OR first_reconciliation_id = :run)", run=run_id)
    if statuses:
        where.add("status = ANY(CAST(:statuses AS TEXT[]))", statuses=statuses)
    if classes:
        where.add("class = ANY(CAST(:classes AS TEXT[]))", classes=classes)
    return await fetch(conn, FINDINGS, ask, select="*", where=where, count=False)


async def resolve(conn: AsyncConnection, finding_id: int, note: str,
                  resolved_by: str) -> tuple[Any | None, str | None]:
    """An open finding resolved by an operator, with its event: (its row, None); else (None,
    its status, or None when there is no such finding)."""
    row = (await conn.execute(text(
        "UPDATE reconciliation_findings SET status = 'resolved', note = :n, resolved_by = :by, "
        "resolved_at = now(), updated_at = now() WHERE id = :f AND status = 'open' "
        "RETURNING *"), {"n": note, "by": resolved_by, "f": finding_id})).mappings().first()
    if row is None:
        return None, (await conn.execute(text(
            "SELECT status FROM reconciliation_findings WHERE id = :f"), {"f": finding_id})).scalar()
    await ledger.emit(conn, "reconciliation.resolved", row["tenant_id"] or SYSTEM_TENANT,
                      row["payment_id"], 0, {"finding_id": finding_id, "class": row["class"],
                                             "note": note, "resolved_by": resolved_by},
                      dedupe=f"finding:{finding_id}:resolved")
    return row, None
