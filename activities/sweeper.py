"""Settles expired holds whose payment workflow no longer runs.

The rule of the saga holds here too: a hold is never released while the gateway may have
charged. The charge is looked up by its idempotency key first; a charge that happened is
captured, anything else is released with `reservation_expired`.

It also starts the saga of any refund left pending without one (the API reserves a refund, then
starts its workflow: a crash between the two leaves the reservation waiting for it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from temporalio import activity
from temporalio.client import Client

from activities.gateway import GatewayActivities
from activities.ledger import LedgerActivities
from db import ledger, refunds
from domain.status import FailureCode, PaymentStatus
from settings import Settings
from workflows.client import workflow_running, workflow_status
from workflows.start import start_refund
from workflows.types import CaptureFunds, ChargeRequest, ReleaseHold


class SweeperActivities:
    def __init__(self, client: Client, ledger_steps: LedgerActivities,
                 gateway_steps: GatewayActivities, settings: Settings, grace_seconds: int = 60) -> None:
        self.client = client
        self.settings = settings
        self.ledger_steps = ledger_steps
        self.gateway_steps = gateway_steps
        self.grace_seconds = grace_seconds

    @activity.defn(name="sweep_orphaned_holds")
    async def sweep_orphaned_holds(self) -> int:
        async with self.ledger_steps.engine.connect() as conn:
            holds = (await conn.execute(text(
                """
                SELECT h.payment_id, h.attempt, p.tenant_id, p.amount, p.fee, p.currency,
                       p.connector
                FROM holds h JOIN payments p ON p.id = h.payment_id
                WHERE h.status = 'active' AND h.expires_at < now() - make_interval(secs => :g)
                ORDER BY h.expires_at LIMIT 200
                """), {"g": self.grace_seconds})).all()
            refunds_pending = (await conn.execute(text(
                "SELECT id FROM refunds WHERE status = 'pending' AND id LIKE 'rfd\\_%' "
                "AND created_at < now() - make_interval(secs => :g) ORDER BY created_at LIMIT 200"),
                {"g": self.grace_seconds})).scalars().all()
        swept = 0
        for hold in holds:
            if await workflow_running(self.client, hold.payment_id):
                continue  # its own saga will settle it
            await self._settle(hold)
            swept += 1
        for rid in refunds_pending:
            if await workflow_status(self.client, rid) is None:
                async with self.ledger_steps.engine.connect() as conn:
                    step = await refunds.pending_step(conn, rid)
                if step is not None:
                    await start_refund(self.client, self.settings, step)
                    swept += 1
        return swept

    async def _settle(self, hold: Any) -> None:
        # failover moves on only once a connector is known not to have charged: the payment's
        # current connector is the only one that may have
        request = ChargeRequest(hold.payment_id, hold.tenant_id, hold.attempt, hold.amount,
                                hold.currency, hold.connector)
        charge = await self.gateway_steps.lookup_charge(request)
        if charge.status == "succeeded":
            await self.ledger_steps.capture_funds(CaptureFunds(
                hold.payment_id, hold.tenant_id, hold.attempt, hold.amount, hold.fee,
                hold.currency, charge.gateway_reference, connector=hold.connector))
            return
        await self.ledger_steps.release_hold(ReleaseHold(
            hold.payment_id, hold.tenant_id, hold.attempt, FailureCode.RESERVATION_EXPIRED))
        async with self.ledger_steps.engine.begin() as conn:
            message = "the hold expired after its workflow stopped; released by the sweeper"
            await ledger.project(conn, hold.payment_id, PaymentStatus.FAILED,
                                 failure_code=FailureCode.RESERVATION_EXPIRED,
                                 failure_message=message)
            await ledger.emit(conn, "payment.failed", hold.tenant_id, hold.payment_id,
                              hold.attempt, {"code": FailureCode.RESERVATION_EXPIRED,
                                             "message": message, "source": "sweeper"})
