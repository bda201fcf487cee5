"""The money invariants, checked against the database and the gateway's record of charges.

`python -m db.invariants` (DATABASE_URL, CONNECTORS or GATEWAY_URL) prints each violation and exits
1 if any. Charges are counted across every connector.

1. per currency, all ledger entries sum to zero;
2. every wallet's balance equals the sum of its entries, its held amount equals its active holds,
   and its available balance is never negative but by what disputes took from it (a wallet below
   zero reserves nothing: a restricted wallet never pays out);
3. every completed (or refunded) payment has exactly one accepted charge (or captured
   authorization) and one capture; the database refuses a capture above its authorization;
4. no failed, canceled, exhausted or expired payment has an accepted charge (a manual payment's
   authorization, voided or lapsed, took no money; nothing is captured for one);
5. no hold is active for a payment that is not in flight (an authorization waiting for its
   capture is in flight: its hold stands until `capture_before`);
6. refunds at the gateway match refunds posted in the ledger;
7. (given a Temporal client) every payment whose workflow has ended has a settled projection;
8. every succeeded top-up has exactly one accepted charge and is credited exactly once; a failed
   one has no accepted charge and no credit;
9. every succeeded withdrawal has exactly one payout and is debited exactly once; nothing is paid
   out for a failed one, and no hold stays active once it has ended;
10. every charge at the gateway belongs to a payment or a top-up, every payout to a withdrawal;
11. every dispute at the processor is recorded; each one on a top-up moved its money once when
    opened and once when decided (won: back to the wallet), none for an unexpected one; a
    wallet's `disputed` is what its open disputes took.

Reconciliation explains some gateway records: a charge that a heal refunded at the gateway is no
charge, its refund (key `recon:...`) is not the ledger's, and a record whose finding an operator
resolved with a note is accounted for by that note.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowExecutionStatus

from domain.reconciliation import HEAL_KEY_PREFIX

CHARGED = ("completed", "partially_refunded", "refunded")
NOT_CHARGED = ("failed", "canceled", "exhausted", "expired")
IN_FLIGHT = ("pending", "reserved", "processing", "requires_capture", "requires_action")


def moved_money(record: dict[str, Any]) -> bool:
    """A gateway charge record that took money: a charge, or a captured authorization (a bare,
    voided or lapsed authorization took none, nor did a charge still `processing` or one that
    settled declined; a charge the processor reversed on its side did, first)."""
    if "amount_authorized" in record:
        return record.get("status") == "succeeded"
    return record.get("status", "succeeded") in ("succeeded", "voided")


@dataclass(frozen=True)
class Violation:
    subject: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.rule}: {self.detail}"


async def check(engine: AsyncEngine, gateway_records: list[dict[str, Any]],
                temporal: Client | None = None) -> list[Violation]:
    found: list[Violation] = []
    async with engine.connect() as conn:
        async def rows(sql: str) -> list[Any]:
            return list((await conn.execute(text(sql))).all())

        for r in await rows("SELECT currency, sum(amount) AS total FROM entries GROUP BY currency "
                            "HAVING sum(amount) <> 0"):
            found.append(Violation(r.currency, "ledger sums to zero", f"entries sum to {r.total}"))

        for r in await rows(
                """
                SELECT a.id, a.balance, a.held,
                       COALESCE((SELECT sum(amount) FROM entries e WHERE e.account_id = a.id), 0) AS posted,
                       COALESCE((SELECT sum(amount) FROM holds h
                                 WHERE h.wallet_id = a.id AND h.status = 'active'), 0) AS holding,
                       COALESCE((SELECT sum(from_wallet) FROM disputes d WHERE d.wallet_id = a.id
                                 AND d.status <> 'won'), 0) AS taken,
                       COALESCE((SELECT sum(from_wallet) FROM disputes d WHERE d.wallet_id = a.id
                                 AND d.status IN ('needs_response', 'under_review')), 0) AS open,
                       a.disputed
                FROM accounts a WHERE a.kind = 'wallet'
                """):
            if r.balance != r.posted:
                found.append(Violation(r.id, "balance equals entries",
                                       f"balance {r.balance}, entries {r.posted}"))
            if r.held != r.holding:
                found.append(Violation(r.id, "held equals active holds",
                                       f"held {r.held}, active holds {r.holding}"))
            if r.balance - r.held + r.taken < 0:
                found.append(Violation(r.id, "available never negative but by disputes",
                                       f"available {r.balance - r.held}, disputes took {r.taken}"))
            if r.disputed != r.open:
                found.append(Violation(r.id, "disputed equals what open disputes took",
                                       f"disputed {r.disputed}, open disputes {r.open}"))

        for r in await rows(
                """
                SELECT d.id, d.status, d.unexpected,
                       count(j.id) FILTER (WHERE split_part(j.reference, ':', 3) = 'opened') AS opened,
                       count(j.id) FILTER (WHERE split_part(j.reference, ':', 3) = 'won') AS won,
                       count(j.id) FILTER (WHERE split_part(j.reference, ':', 3) = 'lost') AS lost
                FROM disputes d LEFT JOIN journals j ON j.kind = 'dispute'
                     AND split_part(j.reference, ':', 2) = d.id
                GROUP BY d.id
                """):
            want = (0, 0, 0) if r.unexpected else (
                1, int(r.status == "won"), int(r.status == "lost"))
            if (r.opened, r.won, r.lost) != want:
                found.append(Violation(r.id, "a dispute moves its money once per transition",
                                       f"{r.status}: opened {r.opened}, won {r.won}, "
                                       f"lost {r.lost} journals"))
        disputes = {(r.connector, r.processor_dispute_id) for r in await rows(
            "SELECT connector, processor_dispute_id FROM disputes")}

        explained = {s for r in await rows(
            "SELECT gateway_key, payment_id FROM reconciliation_findings WHERE status = 'resolved'")
            for s in (r.gateway_key, r.payment_id) if s}
        payments = {r.id: r for r in await rows(
            "SELECT p.id, p.status, p.amount_refunded, "
            "(SELECT count(*) FROM journals j WHERE j.payment_id = p.id AND j.kind = 'payment') AS captures "
            "FROM payments p")}
        moved = {r.id: r for r in await rows(
            "SELECT t.id, t.kind, t.status, "
            "(SELECT count(*) FROM journals j WHERE j.reference = t.kind || ':' || t.id) AS posted "
            "FROM transfers t")}
        active_holds = {r.payment_id for r in await rows(
            "SELECT DISTINCT payment_id FROM holds WHERE status = 'active'")}
        posted_refunds = {r.id: r.amount for r in await rows(
            "SELECT id, amount FROM refunds WHERE status = 'succeeded'")}
        for r in await rows(
                """
                SELECT p.id, p.amount, p.amount_refunded, p.refund_reserved,
                       COALESCE(sum(r.amount) FILTER (WHERE r.status = 'succeeded'), 0) AS done,
                       COALESCE(sum(r.amount) FILTER (WHERE r.status IN ('pending', 'succeeded')), 0)
                           AS taken
                FROM payments p LEFT JOIN refunds r ON r.payment_id = p.id
                GROUP BY p.id HAVING p.refund_reserved > 0 OR count(r.id) > 0
                """):
            if r.amount_refunded != r.done:
                found.append(Violation(r.id, "amount refunded equals posted refunds",
                                       f"amount_refunded {r.amount_refunded}, posted {r.done}"))
            if r.refund_reserved != r.taken:
                found.append(Violation(r.id, "refund reservation equals pending and posted refunds",
                                       f"reserved {r.refund_reserved}, refunds {r.taken}"))
            if r.taken > r.amount:
                found.append(Violation(r.id, "refunds never exceed the payment",
                                       f"refunds {r.taken} of {r.amount}"))

    healed = {r.get("charge_id") for r in gateway_records if r.get("object") == "refund"
              and str(r.get("idempotency_key", "")).startswith(HEAL_KEY_PREFIX)}
    charges = Counter(c["payment_id"] for c in gateway_records
                      if c.get("object") == "charge" and c.get("id") not in healed
                      and moved_money(c))
    for pid, p in payments.items():
        if p.status in CHARGED:
            if charges[pid] != 1 or p.captures != 1:
                found.append(Violation(pid, "completed: one charge and one capture",
                                       f"{charges[pid]} charges, {p.captures} captures"))
        elif p.status in NOT_CHARGED and charges[pid]:
            found.append(Violation(pid, f"{p.status}: no accepted charge",
                                   f"{charges[pid]} charges at the gateway"))
        if p.status not in IN_FLIGHT and pid in active_holds:
            found.append(Violation(pid, "no active hold once settled", f"status {p.status}"))
    payouts = Counter(p["payment_id"] for p in gateway_records if p.get("object") == "payout")
    for tid, t in moved.items():
        made = charges[tid] if t.kind == "top_up" else payouts[tid]
        what = "charge" if t.kind == "top_up" else "payout"
        if t.status == "succeeded" and (made != 1 or t.posted != 1):
            found.append(Violation(tid, f"succeeded {t.kind}: one {what}, posted once",
                                   f"{made} {what}s, posted {t.posted} times"))
        elif t.status == "failed" and (made or t.posted):
            found.append(Violation(tid, f"failed {t.kind}: no {what}, nothing posted",
                                   f"{made} {what}s, posted {t.posted} times"))
        if t.status != "processing" and tid in active_holds:
            found.append(Violation(tid, "no active hold once settled", f"status {t.status}"))
    for pid in charges:
        if pid not in payments and pid not in moved:
            found.append(Violation(pid, "every charge has a payment", "unknown to the ledger"))
    for wid in payouts:
        if wid not in moved:
            found.append(Violation(wid, "every payout has a withdrawal", "unknown to the ledger"))
    for record in gateway_records:
        if record.get("object") == "refund" and not str(record["idempotency_key"]).startswith(
                HEAL_KEY_PREFIX):
            rid = record["idempotency_key"]
            if rid not in posted_refunds:
                # in flight is fine only while the payment's workflow is still posting it
                found.append(Violation(rid, "gateway refunds are posted", "not in the ledger"))
    for record in gateway_records:
        if record.get("object") == "dispute" and (
                str(record.get("connector")), str(record["id"])) not in disputes:
            found.append(Violation(str(record["id"]), "every dispute is recorded",
                                   "unknown to the ledger"))
    if temporal is not None:
        for pid, p in payments.items():
            if p.status in IN_FLIGHT:
                desc = await temporal.get_workflow_handle(pid).describe()
                if desc.status != WorkflowExecutionStatus.RUNNING:
                    found.append(Violation(pid, "ended workflow, settled projection",
                                           f"workflow {desc.status.name if desc.status else '?'}, "
                                           f"projection {p.status}"))
    return [v for v in found if v.subject not in explained]


async def _main() -> int:
    from db.engine import make_engine
    from settings import get_settings

    s = get_settings()
    engine = make_engine(s.database_url_or_dev, pool_size=1)
    records = []
    for connector in s.connector_list:  # every processor's charges and refunds
        async with httpx.AsyncClient(base_url=connector.base_url) as http:
            records += (await http.get("/charges")).json()
    temporal = await Client.connect(s.temporal_address, namespace=s.temporal_namespace)
    violations = await check(engine, records, temporal)
    await engine.dispose()
    for v in violations:
        print(v)
    print(f"{len(violations)} violations")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main()))
