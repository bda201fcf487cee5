"""Dispute steps: each ledger step one transaction over db/disputes.py (its journal, projection
and event); the processor's side through gateway.client (evidence, acceptance, a lookup)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from activities.metrics import DISPUTES
from contracts.dispute import DisputeFacts, DisputeOpened, DisputeStep, OpenDispute
from db import disputes
from gateway.client import Gateways


class DisputeActivities:
    def __init__(self, engine: AsyncEngine, gateways: Gateways) -> None:
        self.engine = engine
        self.gateways = gateways

    @activity.defn(name="open_dispute")
    async def open_dispute(self, step: OpenDispute) -> DisputeOpened:
        async with self.engine.begin() as conn:
            opened = await disputes.open_dispute(conn, step.dispute_id, step.connector, step.facts)
        DISPUTES.labels("unexpected" if opened.unexpected else "created").inc()
        return opened

    @activity.defn(name="remind_dispute")
    async def remind_dispute(self, step: DisputeStep) -> None:
        async with self.engine.begin() as conn:
            await disputes.remind(conn, step)

    @activity.defn(name="submit_dispute_evidence")
    async def submit_evidence(self, step: DisputeStep) -> str:
        """Forward the evidence to the processor, then record it (the processor answers the same
        evidence again alike: safe to retry)."""
        assert step.evidence is not None
        await self.gateways.at(step.connector).dispute_evidence(
            step.processor_dispute_id, step.evidence.text, step.evidence.files)
        async with self.engine.begin() as conn:
            return await disputes.submit_evidence(conn, step)

    @activity.defn(name="decide_dispute")
    async def decide(self, step: DisputeStep) -> str:
        """Won or lost, once; an acceptance is told to the processor first."""
        if step.reason == "accepted":
            await self.gateways.at(step.connector).close_dispute(step.processor_dispute_id, "lost")
        async with self.engine.begin() as conn:
            status = await disputes.decide(conn, step)
        DISPUTES.labels(status).inc()
        return status

    @activity.defn(name="look_up_dispute")
    async def look_up(self, step: DisputeStep) -> str | None:
        """The processor's decision when it has one (a lost `dispute.closed`), else None."""
        found = await self.gateways.at(step.connector).dispute(step.processor_dispute_id)
        status = None if found is None else str(found.get("status"))
        return status if status in ("won", "lost") else None


def facts_of(obj: dict[str, object]) -> DisputeFacts:
    """A processor event's dispute object as the saga carries it."""
    return DisputeFacts(str(obj.get("id")), str(obj.get("charge_id")), str(obj.get("payment_id")),
                        str(obj.get("amount")), str(obj.get("fee") or "0"),
                        str(obj.get("currency")), str(obj.get("reason") or "general"),
                        str(obj.get("status")), str(obj.get("evidence_due_by")))
