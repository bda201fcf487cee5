"""Top-up and withdrawal steps. Ledger steps (local activities): one transaction over
db/transfers.py each. Gateway steps: a payout and its lookup through gateway.client (a top-up's
charge is the payments' `charge_gateway`)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from activities import postings
from activities.metrics import transfer_settled
from contracts.payment import AwaitProcessor
from contracts.saga import ConnectorPlan, Failover, Router
from contracts.transfers import Opened, OpenTransfer, Payout, PayoutRequest, SettleTransfer
from db import direct, transfers
from domain.ids import gateway_key
from domain.money import to_major
from gateway.client import Gateways


class TransferActivities:
    def __init__(self, engine: AsyncEngine, gateways: Gateways, router: Router | None = None) -> None:
        self.engine = engine
        self.gateways = gateways
        self.router = router

    def _route(self, step: OpenTransfer) -> tuple[list[ConnectorPlan], str | None]:
        t = step.transfer
        if self.router is None:
            return [], None
        return self.router(t.transfer_id, t.tenant_id, t.currency, t.amount)

    @activity.defn(name="open_top_up")
    async def open_top_up(self, step: OpenTransfer) -> Opened:
        plans, why = self._route(step)
        async with direct.begin(self.engine) as conn:
            return await transfers.open_top_up(conn, step, plans, why)

    @activity.defn(name="top_up_processing")
    async def top_up_processing(self, step: AwaitProcessor) -> None:
        async with direct.begin(self.engine) as conn:
            await transfers.await_processor(conn, step)

    @activity.defn(name="open_withdrawal")
    async def open_withdrawal(self, step: OpenTransfer) -> Opened:
        plans, why = self._route(step)
        async with direct.begin(self.engine) as conn:
            opened, recorded = await transfers.open_withdrawal(conn, step, plans, why)
        transfer_settled(transfers.WITHDRAWAL, False, recorded)
        return opened

    @activity.defn(name="record_transfer_failover")
    async def record_transfer_failover(self, step: Failover) -> None:
        async with direct.begin(self.engine) as conn:
            await transfers.record_failover(conn, step)

    @activity.defn(name="settle_top_up")
    async def settle_top_up(self, step: SettleTransfer) -> None:
        await self._settle(transfers.TOP_UP, step)

    @activity.defn(name="settle_withdrawal")
    async def settle_withdrawal(self, step: SettleTransfer) -> None:
        await self._settle(transfers.WITHDRAWAL, step)

    async def _settle(self, kind: str, step: SettleTransfer) -> None:
        await postings.settle(self.engine, kind, step)

    @activity.defn(name="send_payout")
    async def send_payout(self, req: PayoutRequest) -> Payout:
        """Pay out; one that succeeds is settled here too when the saga asks (`post`), as its
        settle step would (one local activity and one activation fewer); if it cannot be, the
        saga's settle step does it."""
        client = self.gateways.at(req.connector)
        key = gateway_key(req.withdrawal_id, 0, req.connector)
        activity.logger.info("paying out %s at %s", key, client.name)
        payout = await client.payout(key, req.withdrawal_id, to_major(req.amount, req.currency),
                                     req.currency)
        if payout.status == "succeeded" and req.post:
            try:
                await self._settle(transfers.WITHDRAWAL, SettleTransfer(
                    req.withdrawal_id, req.tenant_id, True, payout.gateway_reference,
                    req.connector))
                payout.posted = True
            except Exception:  # paid out: whatever failed here, the payout is answered
                activity.logger.warning("paid out %s, but not settled here: the settle step "
                                        "settles it", req.withdrawal_id, exc_info=True)
        return payout

    @activity.defn(name="lookup_payout")
    async def lookup_payout(self, req: PayoutRequest) -> Payout:
        return await self.gateways.at(req.connector).lookup_payout(
            gateway_key(req.withdrawal_id, 0, req.connector))
