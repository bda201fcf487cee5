"""Saga v1's own steps (the steps it shares with saga v2 are the live activities). Thin: each one
transaction over db/ (and legacy/ledger.py for the statement only v1 needs)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from contracts.payment import BeginRetry, OpenPayment, ReserveFunds
from db import payments
from legacy import ledger
from legacy.types import RefundStep, Reservation


class LegacyLedgerActivities:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @activity.defn(name="open_payment")
    async def open_payment(self, step: OpenPayment) -> None:
        async with self.engine.begin() as conn:
            await payments.open_payment(conn, step)

    @activity.defn(name="reserve_funds")
    async def reserve_funds(self, step: ReserveFunds) -> Reservation:
        """v1 projects `reserved`, then its charge step moves the payment on."""
        async with self.engine.begin() as conn:
            done = await payments.reserve(conn, step)
        return Reservation(done.ok, done.wallet_id, done.failure_code, done.failure_message)

    @activity.defn(name="begin_retry")
    async def begin_retry(self, step: BeginRetry) -> None:
        async with self.engine.begin() as conn:
            await payments.begin_retry(conn, step)

    @activity.defn(name="post_refund")
    async def post_refund(self, step: RefundStep) -> None:
        async with self.engine.begin() as conn:
            await ledger.post_refund(conn, step)
