"""Reconciliation's steps: read a page of the gateway's report, compare it with the ledger in bulk,
record the findings (each with its domain event) and the page's counts in one transaction; heal one
finding; the ledger's side; finish.

Idempotent: a retried page rewrites its own counts row, findings are unique per gateway record and
class, events per finding, and every heal has its own idempotency key at the gateway.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from datetime import datetime
from typing import Any

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
from db import disputes, payments, processor_events, reconciliations
from domain import reconciliation as rules
from domain.ids import dispute_id, gateway_key
from domain.money import to_major
from domain.reconciliation import (
    Finding,
    Heal,
    LedgerDispute,
    LedgerPayment,
    LedgerTransfer,
    Verdict,
)
from gateway.client import Gateways
from temporal_client.ask import workflow_running


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
            await reconciliations.begin(conn, run.reconciliation_id, run.trigger,
                                        run.requested_by, datetime.fromisoformat(run.start),
                                        datetime.fromisoformat(run.end))

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
        disputed = [i for i in items if i.get("object") == "dispute"]
        verdicts: list[tuple[dict[str, Any], Verdict, LedgerPayment | LedgerTransfer | None]] = []
        async with self.engine.connect() as conn:
            known = await reconciliations.ledger_view(conn, charges, moved, refunds)
            recorded = await disputes.by_processor(conn, connector.name,
                                                   [str(d["id"]) for d in disputed])
        transfers, payments = known.transfers, known.payments
        reversed_ids, ledger_refunds = known.reversed, known.refunds
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
        replays = []
        for record in disputed:
            found = recorded.get(str(record["id"]))
            verdict = rules.classify_dispute(record, None if found is None else LedgerDispute(
                found.id, found.status, found.amount, found.currency))
            verdicts.append((record | {"idempotency_key": f"dispute:{record['id']}"}, verdict,
                             None))
            if verdict.heal == Heal.REPLAY:
                replays.append(record)
        counts = Counter(v.finding.value for _, v, _ in verdicts)
        async with self.engine.begin() as conn:
            to_heal = []
            for record, verdict, owner in verdicts:
                if verdict.finding in rules.QUIET:
                    continue
                finding = await reconciliations.record_finding(
                    conn, page.reconciliation_id, record, verdict, owner, connector.name)
                if finding is not None:
                    to_heal.append(finding)
            for record in replays:  # the processor's lost event, as its report tells it
                await _replay_dispute(conn, connector.name, record)
            await reconciliations.seen(conn, page.reconciliation_id,
                                       [str(c["idempotency_key"]) for c in charges])
            await reconciliations.count_page(conn, page.reconciliation_id,
                                             f"{connector.name}:{page.cursor}", counts)
        activity.logger.info("reconciliation %s: page at %d, %d records: %s",
                             page.reconciliation_id, page.cursor, len(items), dict(counts))
        return PageOutcome(len(items), body.get("next_cursor"), to_heal)

    async def _ask_running(self, payments: dict[str, LedgerPayment]) -> None:
        """Whether the workflows of payments still in flight run: only those are asked."""
        asking = {k: p for k, p in payments.items() if p.status in rules.IN_FLIGHT_STATUSES
                  and not p.captured}
        answers = await asyncio.gather(*(workflow_running(self.temporal, p.id) for p in asking.values()))
        for (key, p), answer in zip(asking.items(), answers, strict=True):
            payments[key] = replace(p, running=answer)

    # -- the ledger's side ----------------------------------------------------------------------

    @activity.defn(name="reconcile_ledger_side")
    async def reconcile_ledger_side(self, side: LedgerSide) -> LedgerSideOutcome:
        """Captures posted in the window whose charge the report did not list. A charge just
        outside the window is looked up by its key; what the gateway has no charge for is a
        `captured_without_charge` finding."""
        async with self.engine.connect() as conn:
            rows = await reconciliations.unseen_captures(
                conn, side.reconciliation_id, datetime.fromisoformat(side.start),
                datetime.fromisoformat(side.end), side.after, side.limit)
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
                await reconciliations.record_finding(
                    conn, side.reconciliation_id, record,
                    Verdict(Finding.CAPTURED_WITHOUT_CHARGE, detail=detail), payment,
                    self.gateway.at(r.connector).name)
            if rows:
                # ledger-side pages count under their own cursors, apart from the report's
                await reconciliations.count_page(conn, side.reconciliation_id,
                                                 f"ledger:{side.page}", counts)
        return LedgerSideOutcome(len(rows), rows[-1].reference if len(rows) == side.limit else None)

    # -- healing ----------------------------------------------------------------------------------

    @activity.defn(name="heal_finding")
    async def heal_finding(self, finding_id: int) -> str:
        async with self.engine.connect() as conn:
            f = await reconciliations.to_heal(conn, finding_id)
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
        await reconciliations.settle_heal(conn, finding_id, step, status, heal, outcome)
        return status

    @activity.defn(name="heal_failed")
    async def heal_failed(self, finding_id: int, why: str) -> None:
        """A heal whose retries are spent: an open exception, with its event like any heal's."""
        async with self.engine.connect() as conn:
            f = await reconciliations.failed_heal(conn, finding_id)
        parsed = rules.parse_gateway_key(f.gateway_key)
        step = CaptureFunds(f.id, f.tenant_id, parsed[1] if parsed else 0, f.amount, 0,
                            f.currency, None)
        await self._settle(finding_id, step, "open", Heal(f.heal), f"heal failed: {why}")

    # -- the end --------------------------------------------------------------------------------

    @activity.defn(name="finish_reconciliation")
    async def finish(self, run_id: str) -> ReconcileReport:
        async with self.engine.begin() as conn:
            total = await reconciliations.finish(conn, run_id)
        return ReconcileReport(run_id, total, rules.critical(total))


async def _replay_dispute(conn: AsyncConnection, connector: str, record: dict[str, Any]) -> None:
    """Store the dispute's event the processor's report implies into the inbox (once per dispute
    and status): the relay carries it to the dispute's saga, opening it if none runs."""
    status = str(record.get("status"))
    kind = "dispute.closed" if status in ("won", "lost") else "dispute.created"
    event_id = f"recon_{record['id']}_{status}"
    await processor_events.store(conn, connector, event_id, kind,
                                 dispute_id(connector, str(record["id"])),
                                 {"id": event_id, "type": kind, "data": {"object": record}})
