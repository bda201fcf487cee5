"""Reconciliation's steps: read a page of the gateway's report, compare it with the ledger in bulk,
record the findings (each with its domain event) and the page's counts in one transaction; heal one
finding; the ledger's side; finish.

Idempotent: a retried page rewrites its own counts row, findings are unique per gateway record and
class, events per finding, and every heal has its own idempotency key at the gateway.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio import activity
from temporalio.client import Client

from activities.metrics import took
from contracts.payment import CaptureFunds
from contracts.reconciliation import (
    LedgerSide,
    LedgerSideOutcome,
    PageOutcome,
    ReconcileReport,
    ReconcileRun,
    ReportPage,
)
from db import ledger, payments
from db.ledger import SYSTEM_TENANT
from domain import reconciliation as rules
from domain.ids import gateway_key
from domain.money import MoneyError, to_major, to_minor
from domain.reconciliation import Finding, Heal, LedgerPayment, LedgerTransfer, Verdict
from gateway.client import Gateways
from workflows.client import workflow_running


def _money(amount: object, currency: str) -> str:
    """A gateway amount in the API's form (decimal string in major units), when it parses."""
    try:
        return to_major(to_minor(str(amount), currency), currency)
    except (MoneyError, ValueError):
        return str(amount)


class ReconciliationActivities:
    def __init__(self, engine: AsyncEngine, gateway: Gateways, temporal: Client,
                 released_charge: str = "refund") -> None:
        self.engine = engine
        self.gateway = gateway  # each connector's client
        self.temporal = temporal
        self.released_charge = rules.released_charge_heal(released_charge)

    @activity.defn(name="begin_reconciliation")
    async def begin(self, run: ReconcileRun) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO reconciliations (id, trigger, requested_by, window_start, window_end, "
                "status) VALUES (:id, :trigger, :by, :s, :e, 'running') ON CONFLICT (id) DO NOTHING"),
                {"id": run.reconciliation_id, "trigger": run.trigger, "by": run.requested_by,
                 "s": datetime.fromisoformat(run.start), "e": datetime.fromisoformat(run.end)})

    # -- the report's side ----------------------------------------------------------------------

    @activity.defn(name="reconcile_page")
    async def reconcile_page(self, page: ReportPage) -> PageOutcome:
        connector = self.gateway.at(page.connector)
        body = await connector.report(page.start, page.end, page.cursor, page.limit)
        items: list[dict[str, Any]] = body["items"]
        moved = [i for i in items if rules.transfer_of(i) is not None
                 and i.get("object") in ("charge", "payout")]
        charges = [i for i in items if i.get("object") == "charge" and i not in moved]
        refunds = [i for i in items if i.get("object") == "refund"]
        verdicts: list[tuple[dict[str, Any], Verdict, LedgerPayment | LedgerTransfer | None]] = []
        async with self.engine.connect() as conn:
            transfers = await self._transfers(conn, moved)
            payments = await self._payments(conn, charges)
            reversed_ids = await self._reversed(conn, [str(c["id"]) for c in charges])
            ledger_refunds = await self._refunds(conn, [str(r["idempotency_key"]) for r in refunds])
        await self._ask_running(payments)
        for record in charges:
            payment = payments.get(str(record["idempotency_key"]))
            verdicts.append((record, rules.classify_charge(
                record, payment, reversed_by_heal=str(record["id"]) in reversed_ids,
                released_charge_heal=self.released_charge), payment))
        for record in moved:
            transfer = transfers.get(str(rules.transfer_of(record)))
            verdicts.append((record, rules.classify_transfer(record, transfer), transfer))
        for record in refunds:
            key = str(record["idempotency_key"])
            found = ledger_refunds.get(key)
            verdicts.append((record, rules.classify_refund(
                record, None if found is None else (found[0], found[1]),
                heal_refund=key.startswith(rules.HEAL_KEY_PREFIX),
                currency=None if found is None else found[2]), None))
        counts = Counter(v.finding.value for _, v, _ in verdicts)
        async with self.engine.begin() as conn:
            to_heal = []
            for record, verdict, owner in verdicts:
                if verdict.finding in rules.QUIET:
                    continue
                finding = await self._record(conn, page.reconciliation_id, record, verdict, owner,
                                             connector.name)
                if finding is not None:
                    to_heal.append(finding)
            await conn.execute(text(
                "INSERT INTO reconciliation_seen (reconciliation_id, key) "
                "SELECT :r, unnest(CAST(:keys AS TEXT[])) ON CONFLICT DO NOTHING"),
                {"r": page.reconciliation_id, "keys": [str(c["idempotency_key"]) for c in charges]})
            await self._count(conn, page.reconciliation_id,
                              f"{connector.name}:{page.cursor}", counts)
        activity.logger.info("reconciliation %s: page at %d, %d records: %s",
                             page.reconciliation_id, page.cursor, len(items), dict(counts))
        return PageOutcome(len(items), body.get("next_cursor"), to_heal)

    async def _payments(self, conn: AsyncConnection,
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

    async def _transfers(self, conn: AsyncConnection,
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

    async def _reversed(self, conn: AsyncConnection, charge_ids: list[str]) -> set[str]:
        """Charges an earlier heal refunded at the gateway."""
        return {r.gateway_reference for r in await conn.execute(text(
            "SELECT gateway_reference FROM reconciliation_findings WHERE heal = 'refund' "
            "AND status = 'healed' AND gateway_reference = ANY(CAST(:ids AS TEXT[]))"),
            {"ids": charge_ids})}

    async def _refunds(self, conn: AsyncConnection, ids: list[str]) -> dict[str, tuple[str, int, str]]:
        if not ids:
            return {}
        return {r.id: (r.status, r.amount, r.currency) for r in await conn.execute(text(
            "SELECT id, status, amount, currency FROM refunds WHERE id = ANY(CAST(:ids AS TEXT[]))"),
            {"ids": ids})}

    async def _ask_running(self, payments: dict[str, LedgerPayment]) -> None:
        """Whether the workflows of payments still in flight run: only those are asked."""
        asking = {k: p for k, p in payments.items() if p.status in rules.IN_FLIGHT_STATUSES
                  and not p.captured}
        answers = await asyncio.gather(*(workflow_running(self.temporal, p.id) for p in asking.values()))
        for (key, p), answer in zip(asking.items(), answers, strict=True):
            payments[key] = replace(p, running=answer)

    async def _record(self, conn: AsyncConnection, run_id: str, record: dict[str, Any],
                      verdict: Verdict, payment: LedgerPayment | LedgerTransfer | None,
                      connector: str) -> int | None:
        """Record a finding (once per gateway record and class) with its event; its id when the
        workflow should heal it now."""
        currency = str(record.get("currency"))
        ledger_view: dict[str, Any] | None = None
        if isinstance(payment, LedgerPayment):
            ledger_view = {"payment_id": payment.id, "status": payment.status,
                           "attempt": payment.attempt,
                           "amount": to_major(payment.amount, payment.currency),
                           "currency": payment.currency, "hold": payment.hold}
        elif isinstance(payment, LedgerTransfer):
            ledger_view = {f"{payment.kind}_id": payment.id, "status": payment.status,
                           "amount": to_major(payment.amount, payment.currency),
                           "fee": to_major(payment.fee, payment.currency),
                           "currency": payment.currency}
        evidence = {"gateway": record, "detail": verdict.detail, "ledger": ledger_view}
        status = "open" if verdict.heal == Heal.NONE else "healing"
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
                   "tenant": payment.tenant_id if payment else None,
                   "p": payment.id if payment else record.get("payment_id"),
                   "evidence": json.dumps(evidence), "heal": verdict.heal.value, "status": status,
                   "run": run_id, "connector": connector})).one()
        if row.inserted:
            await ledger.emit(conn, "reconciliation.finding",
                              payment.tenant_id if payment else SYSTEM_TENANT,
                              payment.id if payment else None, 0, {
                                  "finding_id": row.id, "class": verdict.finding.value,
                                  "severity": rules.SEVERITY[verdict.finding],
                                  "gateway_key": str(record["idempotency_key"]),
                                  "gateway_reference": str(record.get("id")),
                                  "amount": _money(record.get("amount"), currency),
                                  "currency": currency, "heal": verdict.heal.value,
                                  "connector": connector,
                                  "reconciliation_id": run_id, "detail": verdict.detail},
                              dedupe=f"finding:{row.id}:found")
        return int(row.id) if row.status == "healing" else None

    async def _count(self, conn: AsyncConnection, run_id: str, cursor: str,
                     counts: Counter[str]) -> None:
        await conn.execute(text(
            "INSERT INTO reconciliation_pages (reconciliation_id, cursor, counts) "
            "VALUES (:r, :c, CAST(:n AS JSONB)) "
            "ON CONFLICT (reconciliation_id, cursor) DO UPDATE SET counts = excluded.counts"),
            {"r": run_id, "c": cursor, "n": json.dumps(dict(counts))})

    # -- the ledger's side ----------------------------------------------------------------------

    @activity.defn(name="reconcile_ledger_side")
    async def reconcile_ledger_side(self, side: LedgerSide) -> LedgerSideOutcome:
        """Captures posted in the window whose charge the report did not list. A charge just
        outside the window is looked up by its key; what the gateway has no charge for is a
        `captured_without_charge` finding."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
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
                """), {"s": datetime.fromisoformat(side.start),
                       "e": datetime.fromisoformat(side.end), "after": side.after,
                       "r": side.reconciliation_id, "n": side.limit})).all()
        counts: Counter[str] = Counter()
        missing = []
        for r in rows:
            key = gateway_key(r.payment_id, int(r.attempt_of), r.connector)
            found = await self.gateway.at(r.connector).record(key)
            if found is not None and found.get("status") == "succeeded":
                counts[Finding.MATCHED.value] += 1  # charged just outside the window
            else:
                counts[Finding.CAPTURED_WITHOUT_CHARGE.value] += 1
                missing.append((r, key, found))
        async with self.engine.begin() as conn:
            for r, key, gateway in missing:
                payment = LedgerPayment(r.payment_id, r.tenant_id, r.status, r.attempt, r.amount,
                                        r.currency, captured=True, hold="captured")
                detail = ("the gateway has no charge with this key" if gateway is None
                          else f"the gateway's charge is {gateway.get('status')}")
                record = gateway or {"idempotency_key": key, "id": r.gateway_reference,
                                     "amount": to_major(r.amount, r.currency),
                                     "currency": r.currency}
                await self._record(conn, side.reconciliation_id, record,
                                   Verdict(Finding.CAPTURED_WITHOUT_CHARGE, detail=detail), payment,
                                   self.gateway.at(r.connector).name)
            if rows:
                # ledger-side pages count under negative cursors, apart from the report's
                await self._count(conn, side.reconciliation_id, f"ledger:{side.page}", counts)
        return LedgerSideOutcome(len(rows), rows[-1].reference if len(rows) == side.limit else None)

    # -- healing ----------------------------------------------------------------------------------

    @activity.defn(name="heal_finding")
    async def heal_finding(self, finding_id: int) -> str:
        async with self.engine.connect() as conn:
            f = (await conn.execute(text(
                "SELECT f.*, p.amount, p.fee, p.currency, p.wallet_id, p.tenant_id AS p_tenant "
                "FROM reconciliation_findings f LEFT JOIN payments p ON p.id = f.payment_id "
                "WHERE f.id = :f"), {"f": finding_id})).one()
        if f.status != "healing":
            return str(f.status)  # healed (or settled by an operator) before
        parsed = rules.parse_gateway_key(f.gateway_key)
        assert parsed is not None
        assert f.payment_id is not None
        step = CaptureFunds(f.payment_id, f.p_tenant, parsed[1], f.amount, f.fee, f.currency,
                            f.gateway_reference, connector=f.connector)
        if f.heal == Heal.REFUND:
            return await self._refund(f, step)
        if f.heal == Heal.POST and await workflow_running(self.temporal, f.payment_id):
            return await self._settle(finding_id, step, "open", Heal.POST,
                                      "not posted: the payment's workflow still runs (it may be "
                                      "retried); an operator decides")
        async with self.engine.begin() as conn:
            if f.heal == Heal.CAPTURE:
                posted = await payments.capture(conn, step)
            else:
                posted = await payments.post_late_charge(conn, step, f.wallet_id)
            done = posted.outcome
            if done in ("captured", "posted", "already"):
                outcome = {"captured": "captured the active hold: the payment is completed",
                           "posted": "posted the charge to the wallet: the payment is completed",
                           "already": "the ledger had it already"}[done]
                healed = await self._settle(finding_id, step, "healed", Heal(f.heal), outcome,
                                            conn)
        if done in ("captured", "posted", "already"):
            took(posted.created_at, "completed")  # once committed
            return healed
        return await self._settle(finding_id, step, "open", Heal(f.heal),
                                  f"could not {f.heal}: {done.replace('_', ' ')}")

    async def _refund(self, f: Any, step: CaptureFunds) -> str:
        amount = f.evidence["gateway"]["amount"]
        key = rules.heal_key(f.gateway_reference)
        refunded = await self.gateway.at(f.connector).refund(key, f.gateway_reference,
                                                             str(amount))
        if refunded.status == "succeeded":
            return await self._settle(f.id, step, "healed", Heal.REFUND,
                                      f"refunded {amount} {f.currency} at the gateway "
                                      f"({refunded.refund_id})")
        return await self._settle(f.id, step, "open", Heal.REFUND,
                                  f"the gateway refused the refund ({refunded.code})")

    async def _settle(self, finding_id: int, step: CaptureFunds, status: str, heal: Heal,
                      outcome: str, conn: AsyncConnection | None = None) -> str:
        """The heal's outcome on the finding, with its event, in the heal's own transaction."""
        if conn is None:
            async with self.engine.begin() as own:
                return await self._settle(finding_id, step, status, heal, outcome, own)
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
        return status

    @activity.defn(name="heal_failed")
    async def heal_failed(self, finding_id: int, why: str) -> None:
        """A heal whose retries are spent: an open exception, with its event like any heal's."""
        async with self.engine.connect() as conn:
            f = (await conn.execute(text(
                "SELECT f.gateway_key, f.heal, p.id, p.tenant_id, p.amount, p.currency "
                "FROM reconciliation_findings f JOIN payments p ON p.id = f.payment_id "
                "WHERE f.id = :f"), {"f": finding_id})).one()
        parsed = rules.parse_gateway_key(f.gateway_key)
        step = CaptureFunds(f.id, f.tenant_id, parsed[1] if parsed else 0, f.amount, 0,
                            f.currency, None)
        await self._settle(finding_id, step, "open", Heal(f.heal), f"heal failed: {why}")

    # -- the end --------------------------------------------------------------------------------

    @activity.defn(name="finish_reconciliation")
    async def finish(self, run_id: str) -> ReconcileReport:
        async with self.engine.begin() as conn:
            counts: Counter[str] = Counter()
            for (page,) in await conn.execute(text(
                    "SELECT counts FROM reconciliation_pages WHERE reconciliation_id = :r"),
                    {"r": run_id}):
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
            else:  # finished before (a retried step): its stored counts
                stored = (await conn.execute(text(
                    "SELECT counts FROM reconciliations WHERE id = :r"), {"r": run_id})).scalar()
                total = dict(stored or {})
        return ReconcileReport(run_id, total, rules.critical(total))
