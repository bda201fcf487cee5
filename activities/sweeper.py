"""Settles expired holds whose payment workflow no longer runs.

The rule of the saga holds here too: a hold is never released while the gateway may have
charged. The charge is looked up by its idempotency key first; a charge that happened is
captured, anything else is released with `reservation_expired`.

It also starts the saga of any refund left pending without one (the API reserves a refund, then
starts its workflow: a crash between the two leaves the reservation waiting for it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.metrics import took
from contracts.payment import CaptureFunds
from db import payments, refunds
from domain.ids import gateway_key
from domain.status import FailureCode
from gateway.client import Gateways
from settings import Settings
from temporal_client.ask import workflow_running, workflow_status
from temporal_client.start import start_refund


class SweeperActivities:
    def __init__(self, client: Client, engine: AsyncEngine, gateways: Gateways,
                 settings: Settings, grace_seconds: int = 60) -> None:
        self.client = client
        self.engine = engine
        self.gateways = gateways
        self.settings = settings
        self.grace_seconds = grace_seconds

    @activity.defn(name="sweep_orphaned_holds")
    async def sweep_orphaned_holds(self) -> int:
        async with self.engine.connect() as conn:
            holds = await payments.expired_holds(conn, self.grace_seconds)
            refunds_pending = await refunds.left_pending(conn, self.grace_seconds)
        swept = 0
        for hold in holds:
            if await workflow_running(self.client, hold.payment_id):
                continue  # its own saga will settle it
            await self._settle(hold)
            swept += 1
        for rid in refunds_pending:
            if await workflow_status(self.client, rid) is None:
                async with self.engine.connect() as conn:
                    step = await refunds.pending_step(conn, rid)
                if step is not None:
                    await start_refund(self.client, self.settings, step)
                    swept += 1
        return swept

    async def _settle(self, hold: Any) -> None:
        # failover moves on only once a connector is known not to have charged: the payment's
        # current connector is the only one that may have
        charge = await self.gateways.at(hold.connector).lookup(
            gateway_key(hold.payment_id, hold.attempt, hold.connector))
        async with self.engine.begin() as conn:
            if charge.status == "succeeded":
                posted = await payments.capture(conn, CaptureFunds(
                    hold.payment_id, hold.tenant_id, hold.attempt, hold.amount, hold.fee,
                    hold.currency, charge.gateway_reference, connector=hold.connector))
            else:
                await payments.release(conn, hold.payment_id, hold.tenant_id, hold.attempt,
                                       FailureCode.RESERVATION_EXPIRED)
                await payments.expire(conn, hold.payment_id, hold.tenant_id, hold.attempt,
                                      "the hold expired after its workflow stopped; released by "
                                      "the sweeper", source="sweeper")
                return
        if posted.outcome == "no_hold":
            raise ApplicationError(f"no active hold for {hold.payment_id}#{hold.attempt} "
                                   f"(hold is {posted.hold_status}); an operator must reconcile")
        took(posted.created_at, "completed")
