"""The first payment saga (workflow type `PaymentWorkflow`), frozen: only its in-flight runs use it.

New payments run `workflows.payment` (type `Payment`). This class stays registered on the worker so
payments started before the upgrade replay and finish exactly as they were recorded; change nothing
here that would alter the commands an existing history produced (tests/workflow/test_replay.py
replays the recorded ones). Adding a handler, or an optional argument to one (the API now says who asked), is
safe: histories that never received it replay identically. See "Upgrading the saga" in the README.

The original description follows.

The payment saga: reserve the funds, charge the gateway, then capture them or compensate.

    pending -> reserved -> processing -> completed -> partially_refunded -> refunded
        any step can fail -> failed -> (manual retry: back to pending) ... -> exhausted
        pending / reserved / failed -> canceled

A completed payment stays open for refunds (updates, validated against the refundable amount
here, so concurrent refunds can never exceed the payment) until the refund window closes.

The hold has a TTL: a durable timer bounds the charge, and when it fires the gateway is asked what
happened to the charge's idempotency key before anything is released, so a charge that happened is
captured, never released.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from domain.fees import refund_fee_share
    from domain.status import CANCELABLE, FailureCode, PaymentStatus
    from legacy.types import (
        GATEWAY_DECLINED,
        BeginRetry,
        CancelPayment,
        CaptureFunds,
        Charge,
        ChargeRequest,
        FailPayment,
        OpenPayment,
        PaymentInput,
        PaymentState,
        RefundRequest,
        RefundStep,
        RefundView,
        ReleaseHold,
        Reservation,
        ReserveFunds,
    )
    from workflows import policies
    from workflows.search import PAYMENT_STATUS



@dataclass
class Failure:
    code: str
    message: str


CANCELED = Failure("canceled", "canceled")


@workflow.defn(name="PaymentWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class PaymentWorkflowV1:
    def __init__(self) -> None:
        self._input: PaymentInput | None = None
        self._status = PaymentStatus.PENDING
        self._attempt = 0
        self._manual_retries = 0
        self._failure: Failure | None = None
        self._gateway_reference: str | None = None
        self._wallet_id: str | None = None
        self._charge_started = False
        self._retry_requested = False
        self._cancel_requested = False
        self._refunds: dict[str, RefundView] = {}
        self._refund_queue: list[RefundView] = []
        self._refunded = 0
        self._refund_window_closed = False

    # -- the business process -------------------------------------------------------------

    @workflow.run
    async def run(self, payment: PaymentInput) -> PaymentState:
        self._input = payment
        await self._step("open_payment", OpenPayment(payment, workflow.info().run_id))
        while True:
            failure = await self._attempt_payment()
            if failure is None:
                await self._serve_refunds()
                return self.state()
            if failure is CANCELED or not await self._fail_and_wait_for_retry(failure):
                return self.state()

    async def _attempt_payment(self) -> Failure | None:
        p = self._payment
        if self._cancel_requested:
            return await self._cancel()
        expires_at = workflow.now() + timedelta(seconds=p.policy.hold_ttl_seconds)
        reservation: Reservation = await self._step(
            "reserve_funds",
            ReserveFunds(p.payment_id, p.tenant_id, self._attempt, p.user_id, p.currency,
                         p.amount + p.fee, expires_at.isoformat()),
            result_type=Reservation,
        )
        if not reservation.ok:
            return Failure(reservation.failure_code or FailureCode.INSUFFICIENT_FUNDS,
                           reservation.failure_message or "reservation failed")
        self._wallet_id = reservation.wallet_id
        self._set_status(PaymentStatus.RESERVED)
        if self._cancel_requested:
            return await self._cancel()

        self._charge_started = True
        self._set_status(PaymentStatus.PROCESSING)
        expired = False
        charging = asyncio.ensure_future(self._charge())
        try:
            await workflow.wait_condition(charging.done, timeout=expires_at - workflow.now())
            charge = charging.result()
        except TimeoutError:
            # The hold's TTL ran out first: stop charging, wait until no call is in flight, then
            # let what the gateway did with the idempotency key decide.
            expired = True
            charging.cancel()
            with contextlib.suppress(ActivityError, asyncio.CancelledError):
                await charging
            charge = await self._lookup_charge()

        if charge.status == "succeeded":
            # Charged: completion is decided. The capture step retries until it is posted, and
            # the workflow's state is never behind the projection clients read.
            self._gateway_reference = charge.gateway_reference
            self._set_status(PaymentStatus.COMPLETED)
            await self._step("capture_funds", CaptureFunds(
                p.payment_id, p.tenant_id, self._attempt, p.amount, p.fee, p.currency,
                charge.gateway_reference))
            return None

        if charge.status == "declined":
            failure = Failure(FailureCode.GATEWAY_DECLINED,
                              f"the gateway declined the charge ({charge.decline_code})")
        elif expired:
            failure = Failure(FailureCode.RESERVATION_EXPIRED,
                              "the hold expired before the gateway charged")
        else:
            failure = Failure(FailureCode.GATEWAY_UNAVAILABLE,
                              "the gateway could not be reached; nothing was charged")
        await self._step("release_hold",
                         ReleaseHold(p.payment_id, p.tenant_id, self._attempt, failure.code))
        self._charge_started = False  # the gateway has settled this attempt: nothing charged
        return failure

    async def _serve_refunds(self) -> None:
        p = self._payment
        closes = workflow.now() + timedelta(seconds=p.policy.refund_window_seconds)
        while self._refunded < p.amount or self._refund_queue:
            try:
                await workflow.wait_condition(
                    lambda: bool(self._refund_queue) or self._refund_window_closed,
                    timeout=closes - workflow.now())
            except TimeoutError:
                return
            if not self._refund_queue:
                return  # closed by the upgrade: refunds are their own workflows now
            await self._refund(self._refund_queue[0])
            self._refund_queue.pop(0)

    async def _refund(self, refund: RefundView) -> None:
        """The refund saga: the gateway gives the money back, then the ledger reverses it."""
        p = self._payment
        step = RefundStep(p.payment_id, p.tenant_id, refund.refund_id, refund.amount, refund.fee,
                          p.currency, self._gateway_reference, refund.reason,
                          fingerprint=refund.fingerprint)
        try:
            await workflow.execute_activity(
                "refund_gateway", step, start_to_close_timeout=policies.gateway_timeout(p.policy),
                retry_policy=policies.lookup_retry(p.policy))
        except ActivityError as err:
            refund.status = "failed"
            refund.failure_message = str(err.cause.message if err.cause else err)  # type: ignore[attr-defined]
            step.failure_message = refund.failure_message
            await self._step("fail_refund", step)
            return
        self._refunded += refund.amount
        step.fully_refunded = self._refunded == p.amount
        refund.status = "succeeded"
        self._set_status(PaymentStatus.REFUNDED if step.fully_refunded
                         else PaymentStatus.PARTIALLY_REFUNDED)
        await self._step("post_refund", step)

    async def _charge(self) -> Charge:
        p = self._payment
        try:
            charge: Charge = await workflow.execute_activity(
                "charge_gateway",
                ChargeRequest(p.payment_id, p.tenant_id, self._attempt, p.amount, p.currency),
                result_type=Charge,
                start_to_close_timeout=policies.gateway_timeout(p.policy),
                retry_policy=policies.gateway_retry(p.policy),
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
            return charge
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, CancelledError):
                raise
            if isinstance(cause, ApplicationError) and cause.type == GATEWAY_DECLINED:
                code = cause.details[0] if cause.details else "declined"
                return Charge(status="declined", decline_code=str(code))
            # Retries are spent and the outcome is unknown (timeouts, 5xx): ask before compensating.
            return await self._lookup_charge()

    async def _lookup_charge(self) -> Charge:
        p = self._payment
        charge: Charge = await workflow.execute_activity(
            "lookup_charge",
            ChargeRequest(p.payment_id, p.tenant_id, self._attempt, p.amount, p.currency),
            result_type=Charge,
            start_to_close_timeout=policies.gateway_timeout(p.policy),
            retry_policy=policies.lookup_retry(p.policy),
        )
        return charge

    async def _fail_and_wait_for_retry(self, failure: Failure) -> bool:
        """Record the failure; True when a manual retry arrived in time, False when finished."""
        p = self._payment
        exhausted = self._manual_retries >= p.policy.max_manual_retries
        # The workflow's own state moves first, so it is never behind the projection that
        # clients read before they ask for a retry or a cancel.
        self._failure = failure
        self._set_status(PaymentStatus.EXHAUSTED if exhausted else PaymentStatus.FAILED)
        await self._step("fail_payment", FailPayment(
            p.payment_id, p.tenant_id, self._attempt, failure.code, failure.message, exhausted))
        if exhausted:
            return False
        try:
            await workflow.wait_condition(
                lambda: self._retry_requested or self._cancel_requested,
                timeout=timedelta(seconds=p.policy.manual_retry_window_seconds),
            )
        except TimeoutError:
            self._set_status(PaymentStatus.EXHAUSTED)
            await self._step("fail_payment", FailPayment(
                p.payment_id, p.tenant_id, self._attempt, failure.code,
                f"{failure.message}; the manual retry window elapsed", True))
            return False
        if self._cancel_requested:
            await self._cancel()
            return False
        self._manual_retries += 1
        self._attempt += 1
        self._failure = None
        self._set_status(PaymentStatus.PENDING)
        await self._step("begin_retry", BeginRetry(
            p.payment_id, p.tenant_id, self._attempt, self._manual_retries, "manual"))
        self._retry_requested = False
        return True

    async def _cancel(self) -> Failure:
        p = self._payment
        await self._step("cancel_payment",
                         CancelPayment(p.payment_id, p.tenant_id, self._attempt, "canceled"))
        self._set_status(PaymentStatus.CANCELED)
        return CANCELED

    # -- operators: signals (temporal CLI) and updates (REST, validated) --------------------

    @workflow.signal
    def close_refund_window(self) -> None:
        """Added for the upgrade to saga v2: a completed payment stops waiting for refunds (they are
        Refund workflows now) once the refunds it already accepted are done."""
        self._refund_window_closed = True

    @workflow.signal
    def retry(self, requested_by: str | None = None) -> None:
        if self._can_retry():
            self._retry_requested = True

    @workflow.signal
    def cancel(self, requested_by: str | None = None) -> None:
        if self._can_cancel():
            self._cancel_requested = True

    @workflow.update
    async def request_retry(self, requested_by: str | None = None) -> PaymentState:
        self._retry_requested = True
        await workflow.wait_condition(lambda: not self._retry_requested)
        return self.state()

    @request_retry.validator
    def _validate_retry(self, requested_by: str | None = None) -> None:
        if not self._can_retry():
            raise ApplicationError(self._refusal("retried"), type="CannotRetryPayment")

    @workflow.update
    async def request_cancel(self, requested_by: str | None = None) -> PaymentState:
        self._cancel_requested = True
        await workflow.wait_condition(lambda: self._status == PaymentStatus.CANCELED)
        return self.state()

    @request_cancel.validator
    def _validate_cancel(self, requested_by: str | None = None) -> None:
        if not self._can_cancel():
            raise ApplicationError(self._refusal("canceled"), type="CannotCancelPayment")

    @workflow.update
    def request_refund(self, req: RefundRequest) -> RefundView:
        known = self._refunds.get(req.refund_id)
        if known is not None:
            return dataclasses.replace(known, replayed=True)
        p = self._payment
        amount = req.amount or self._refundable()
        refund = RefundView(req.refund_id, amount,
                            refund_fee_share(p.fee, p.amount, self._refund_committed(), amount),
                            "pending", req.fingerprint, req.reason)
        self._refunds[req.refund_id] = refund
        self._refund_queue.append(refund)
        return refund

    @request_refund.validator
    def _validate_refund(self, req: RefundRequest) -> None:
        if req.refund_id in self._refunds:
            return
        refundable = self._refundable()
        if self._status not in (PaymentStatus.COMPLETED, PaymentStatus.PARTIALLY_REFUNDED):
            raise ApplicationError(self._refusal("refunded"), type="CannotRefundPayment")
        if refundable <= 0 or req.amount < 0 or req.amount > refundable:
            raise ApplicationError(
                f"payment {self._payment.payment_id} has {refundable} minor units left to refund",
                refundable, type="CannotRefundPayment")

    def _refund_committed(self) -> int:
        """Refunded plus queued: what no new refund may take again."""
        return self._refunded + sum(r.amount for r in self._refund_queue if r.status == "pending")

    def _refundable(self) -> int:
        return self._payment.amount - self._refund_committed()

    @workflow.query
    def state(self) -> PaymentState:
        p = self._payment
        return PaymentState(
            payment_id=p.payment_id, status=self._status.value, attempt=self._attempt,
            manual_retries=self._manual_retries, max_manual_retries=p.policy.max_manual_retries,
            failure_code=self._failure.code if self._failure else None,
            failure_message=self._failure.message if self._failure else None,
            gateway_reference=self._gateway_reference, wallet_id=self._wallet_id,
            amount_refunded=self._refunded,
        )

    # -- plumbing -----------------------------------------------------------------------------

    @property
    def _payment(self) -> PaymentInput:
        assert self._input is not None
        return self._input

    def _can_retry(self) -> bool:
        return (self._status == PaymentStatus.FAILED and not self._retry_requested
                and not self._cancel_requested
                and self._manual_retries < self._payment.policy.max_manual_retries)

    def _can_cancel(self) -> bool:
        return self._status in CANCELABLE and not self._charge_started and not self._retry_requested

    def _refusal(self, verb: str) -> str:
        return (f"payment {self._payment.payment_id} cannot be {verb}: status {self._status.value}, "
                f"manual retries {self._manual_retries} of {self._payment.policy.max_manual_retries}")

    def _set_status(self, status: PaymentStatus) -> None:
        workflow.logger.info("payment %s: %s -> %s", self._payment.payment_id, self._status.value,
                             status.value)
        self._status = status
        workflow.upsert_search_attributes([PAYMENT_STATUS.value_set(status.value)])

    async def _step(self, name: str, arg: Any, result_type: type | None = None) -> Any:
        """Run one ledger step: our own database, retried with backoff until it works."""
        return await workflow.execute_activity(
            name, arg, result_type=result_type,
            start_to_close_timeout=policies.ledger_timeout(),
            retry_policy=policies.ledger_retry(self._payment.policy),
        )
