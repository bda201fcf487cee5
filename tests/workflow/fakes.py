"""Fake saga activities registered under the real activity names (saga v2), scripted per test."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from contracts.payment import (
    Authorized,
    AwaitProcessor,
    BeginRetry,
    CancelPayment,
    CaptureCharge,
    Captured,
    CaptureFunds,
    EndAuthorization,
    FailPayment,
    OpenPayment,
    Refusal,
    ReleaseHold,
    Reservation,
    ReserveFunds,
)
from contracts.refund import RefundPosted, RefundStep
from contracts.saga import GATEWAY_UNAVAILABLE, Charge, ChargeRequest


@dataclass
class FakeSaga:
    """What each step answers, and a log of every call the workflow made."""

    reserve: Callable[[ReserveFunds], Reservation] = lambda s: Reservation(ok=True, wallet_id="wal_1")
    charge: Callable[[ChargeRequest], Charge] = lambda r: Charge("succeeded", "ch_1")
    lookup: Callable[[ChargeRequest], Charge] = lambda r: Charge("not_found")
    slow: Callable[[ChargeRequest], float] = lambda r: 0.0  # seconds a charge takes
    refund: Callable[[RefundStep], str] = lambda s: "re_1"
    # manual capture: what the processor says to a capture and to a void
    capture: Callable[[CaptureCharge], Captured] = lambda c: Captured("captured", c.amount)
    void: Callable[[CaptureCharge], Captured] = lambda c: Captured("voided")
    calls: list[tuple[str, Any]] = field(default_factory=list)
    reserves: list[ReserveFunds] = field(default_factory=list)

    def _reserve(self, step: ReserveFunds) -> Reservation:
        self.reserves.append(step)
        return self.reserve(step)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def activities(self) -> list[Any]:
        saga = self

        @activity.defn(name="start_payment")
        async def start_payment(step: OpenPayment) -> Reservation:
            saga.calls.append(("start_payment", step))
            p = step.payment
            return saga._reserve(ReserveFunds(p.payment_id, p.tenant_id, 0, p.user_id, p.currency,
                                              p.amount + p.fee, step.expires_at))

        @activity.defn(name="retry_payment")
        async def retry_payment(step: BeginRetry) -> Reservation:
            saga.calls.append(("retry_payment", step))
            return saga._reserve(ReserveFunds(step.payment_id, step.tenant_id, step.attempt,
                                              step.user_id, step.currency, step.total,
                                              step.expires_at))

        @activity.defn(name="charge_gateway")
        async def charge_gateway(req: ChargeRequest) -> Charge:
            saga.calls.append(("charge_gateway", req))
            slow = saga.slow(req)
            if slow:
                await asyncio.sleep(slow)  # a processor that takes this long to answer
            return saga.charge(req)

        @activity.defn(name="lookup_charge")
        async def lookup_charge(req: ChargeRequest) -> Charge:
            saga.calls.append(("lookup_charge", req))
            return saga.lookup(req)

        @activity.defn(name="capture_funds")
        async def capture_funds(step: CaptureFunds) -> None:
            saga.calls.append(("capture_funds", step))

        @activity.defn(name="release_hold")
        async def release_hold(step: ReleaseHold) -> None:
            saga.calls.append(("release_hold", step))

        @activity.defn(name="fail_payment")
        async def fail_payment(step: FailPayment) -> None:
            saga.calls.append(("fail_payment", step))

        @activity.defn(name="cancel_payment")
        async def cancel_payment(step: CancelPayment) -> None:
            saga.calls.append(("cancel_payment", step))

        @activity.defn(name="refund_gateway")
        async def refund_gateway(step: RefundStep) -> str:
            saga.calls.append(("refund_gateway", step))
            return saga.refund(step)

        @activity.defn(name="settle_refund")
        async def settle_refund(step: RefundStep) -> RefundPosted:
            saga.calls.append(("settle_refund", step))
            return RefundPosted(step.refund_id, step.amount, step.fee, "partially_refunded")

        @activity.defn(name="fail_refund")
        async def fail_refund(step: RefundStep) -> None:
            saga.calls.append(("fail_refund", step))

        @activity.defn(name="record_refusal")
        async def record_refusal(step: Refusal) -> None:
            saga.calls.append(("record_refusal", step))

        @activity.defn(name="authorize_payment")
        async def authorize_payment(step: Authorized) -> None:
            saga.calls.append(("authorize_payment", step))

        @activity.defn(name="capture_charge")
        async def capture_charge(step: CaptureCharge) -> Captured:
            saga.calls.append(("capture_charge", step))
            return saga.capture(step)

        @activity.defn(name="void_charge")
        async def void_charge(step: CaptureCharge) -> Captured:
            saga.calls.append(("void_charge", step))
            return saga.void(step)

        @activity.defn(name="await_processor")
        async def await_processor(step: AwaitProcessor) -> None:
            saga.calls.append(("await_processor", step))

        @activity.defn(name="end_authorization")
        async def end_authorization(step: EndAuthorization) -> None:
            saga.calls.append(("end_authorization", step))

        return [record_refusal, start_payment, retry_payment,
                charge_gateway, lookup_charge, capture_funds, release_hold, fail_payment,
                cancel_payment, refund_gateway, settle_refund, fail_refund, authorize_payment,
                capture_charge, void_charge, end_authorization, await_processor]


def decline(_: ChargeRequest) -> Charge:
    return Charge(status="declined", decline_code="do_not_honor")


def unavailable(_: ChargeRequest) -> Charge:
    raise ApplicationError("gateway timed out", type=GATEWAY_UNAVAILABLE)
