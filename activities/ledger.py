"""Ledger steps of the payment and refund sagas: each one transaction over db/ (the ledger's one
door), with its status projection and events. Thin: what is written lives in db/payments.py and
db/refunds.py; here the transaction, the step's name, and the metrics of what it recorded.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import postings
from activities.metrics import REFUNDS, took
from contracts.payment import (
    Authorized,
    AwaitProcessor,
    BeginRetry,
    CancelPayment,
    CaptureFunds,
    EndAuthorization,
    FailPayment,
    OpenPayment,
    Refusal,
    ReleaseHold,
    Reservation,
)
from contracts.refund import RefundPosted, RefundStep
from contracts.saga import Failover, Router
from db import direct, payments, refunds


class LedgerActivities:
    def __init__(self, engine: AsyncEngine, router: Router | None = None) -> None:
        self.engine = engine
        self.router = router

    @activity.defn(name="start_payment")
    async def start_payment(self, step: OpenPayment) -> Reservation:
        """Open the payment (routed by the declared rules) and reserve attempt 0."""
        p = step.payment
        plans, why = (self.router(p.payment_id, p.tenant_id, p.currency, p.amount) if self.router
                      else ([], None))
        async with direct.begin(self.engine) as conn:
            return await payments.start(conn, step, plans, why)

    @activity.defn(name="record_failover")
    async def record_failover(self, step: Failover) -> None:
        async with direct.begin(self.engine) as conn:
            await payments.record_failover(conn, step)

    @activity.defn(name="retry_payment")
    async def retry_payment(self, step: BeginRetry) -> Reservation:
        async with direct.begin(self.engine) as conn:
            return await payments.retry(conn, step)

    @activity.defn(name="capture_funds")
    async def capture_funds(self, step: CaptureFunds) -> None:
        posted = await postings.capture(self.engine, step)
        if posted.outcome == "no_hold":
            raise ApplicationError(f"no active hold for {step.payment_id}#{step.attempt} "
                                   f"(hold is {posted.hold_status}); an operator must reconcile")

    @activity.defn(name="release_hold")
    async def release_hold(self, step: ReleaseHold) -> None:
        async with direct.begin(self.engine) as conn:
            await payments.release_declined(conn, step.payment_id, step.tenant_id, step.attempt,
                                            step.reason, step.decline_code)

    @activity.defn(name="fail_payment")
    async def fail_payment(self, step: FailPayment) -> None:
        async with direct.begin(self.engine) as conn:
            created = await payments.fail(conn, step)
        took(created, "exhausted" if step.exhausted else "failed")

    @activity.defn(name="cancel_payment")
    async def cancel_payment(self, step: CancelPayment) -> None:
        async with direct.begin(self.engine) as conn:
            created = await payments.cancel(conn, step)
        took(created, "canceled")

    @activity.defn(name="await_processor")
    async def await_processor(self, step: AwaitProcessor) -> None:
        async with direct.begin(self.engine) as conn:
            await payments.await_processor(conn, step)

    @activity.defn(name="authorize_payment")
    async def authorize_payment(self, step: Authorized) -> None:
        async with direct.begin(self.engine) as conn:
            await payments.authorize(conn, step)

    @activity.defn(name="end_authorization")
    async def end_authorization(self, step: EndAuthorization) -> None:
        async with direct.begin(self.engine) as conn:
            created = await payments.end_authorization(conn, step)
        took(created, "expired" if step.outcome == "expired" else "canceled")

    @activity.defn(name="record_refusal")
    async def record_refusal(self, step: Refusal) -> None:
        """An operator's signal the payment refused: on its timeline, with who asked and why."""
        async with direct.begin(self.engine) as conn:
            await payments.record_refusal(conn, step)

    @activity.defn(name="settle_refund")
    async def settle_refund(self, step: RefundStep) -> RefundPosted:
        """Post the refund back to the wallet, with the payment's status and the event."""
        async with direct.begin(self.engine) as conn:
            posted, new = await refunds.settle(conn, step)
        if new:
            REFUNDS.labels("succeeded").inc()
        return posted

    @activity.defn(name="fail_refund")
    async def fail_refund(self, step: RefundStep) -> None:
        """The gateway refused the refund: it is failed and its amount is refundable again."""
        async with direct.begin(self.engine) as conn:
            failed = await refunds.fail(conn, step)
        if failed:
            REFUNDS.labels("failed").inc()
