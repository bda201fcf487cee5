"""The payment saga (workflow type `Payment`): reserve the funds, charge the gateway, then capture
them or compensate.

    pending -> reserved -> processing -> completed                  the workflow completes
        any step can fail -> failed -> (manual retry: back to pending) ...
                                     -> exhausted                   the workflow fails (failure code)
        pending / reserved / failed -> canceled                     the workflow completes

The workflow stays open only while it waits for something: a charge in flight, or an operator's
retry of a failed payment. Refunds are their own workflows (`workflows.refund`).

The hold has a TTL, which bounds the charge's retries (its schedule-to-close timeout): when it runs
out, the gateway is asked what happened to the charge's idempotency key before anything is
released, so a charge that happened is captured, never released.

Ledger steps are local activities (each one database transaction with its projection and event),
run by the worker inside the workflow task; only the gateway call is a regular activity. A happy
payment is two workflow tasks and one activity task.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts.payment import (
        BeginRetry,
        CancelPayment,
        CaptureFunds,
        FailPayment,
        Failure,
        OpenPayment,
        PaymentInput,
        PaymentState,
        Refusal,
        ReleaseHold,
        Reservation,
    )
    from contracts.saga import Charge, ChargeRequest, ConnectorPlan, Failover
    from domain.status import CANCELABLE, FailureCode, PaymentStatus
    from workflows import charging, steps
    from workflows.search import PAYMENT_FAILURE_CODE, PAYMENT_STATUS



CANCELED = Failure("canceled", "canceled")


# Auto-upgrade: a failed payment waits up to MANUAL_RETRY_WINDOW_SECONDS (3 days) for an
# operator, longer than a build should live; every change is patched (README: deploying).
@workflow.defn(name="Payment", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class PaymentWorkflow:
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
        self._requested_by = "temporal-cli"
        self._outcome_recorded = False  # the current attempt's outcome is in the projection
        self._route: list[ConnectorPlan] = []  # the connectors to try, in order (none: default)
        self._connector: str | None = None  # the one that settled the current attempt
        self._indexed_failure_code: str | None = None  # PaymentFailureCode as Temporal holds it

    # -- the business process -------------------------------------------------------------

    @workflow.run
    async def run(self, payment: PaymentInput) -> PaymentState:
        self._input = payment
        expires_at = self._hold_expiry()
        reservation = await self._ledger(
            "start_payment", OpenPayment(payment, workflow.info().run_id, expires_at.isoformat()),
            Reservation, summary="open the payment, route it, and hold amount + fee")
        self._route = reservation.route
        while True:
            failure = await self._attempt_payment(reservation, expires_at)
            if failure is None or failure is CANCELED:
                break
            if not await self._fail_and_wait_for_retry(failure):
                break
            expires_at = self._hold_expiry()
            reservation = await self._ledger("retry_payment", BeginRetry(
                payment.payment_id, payment.tenant_id, self._attempt, self._manual_retries,
                self._requested_by, payment.user_id, payment.currency, payment.amount + payment.fee,
                expires_at.isoformat()), Reservation, summary="record the retry and hold again")
            self._retry_requested = False
        # answer every waiting update before the workflow closes
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._status == PaymentStatus.EXHAUSTED:
            assert self._failure is not None
            raise ApplicationError(self._failure.message, type=self._failure.code, non_retryable=True)
        return self.state()

    async def _attempt_payment(self, reservation: Reservation, expires_at: datetime) -> Failure | None:
        p = self._payment
        if not reservation.ok:
            return Failure(reservation.failure_code or FailureCode.INSUFFICIENT_FUNDS,
                           reservation.failure_message or "reservation failed")
        self._wallet_id = reservation.wallet_id
        self._set_status(PaymentStatus.RESERVED, publish=False)
        if self._cancel_requested:
            return await self._cancel()

        self._charge_started = True
        self._set_status(PaymentStatus.PROCESSING)
        charge = await self._charge_along_route(expires_at)

        if charge.status == "succeeded":
            # Charged: completion is decided. The capture step retries until it is posted, and
            # the workflow's state is never behind the projection clients read.
            self._gateway_reference = charge.gateway_reference
            self._set_status(PaymentStatus.COMPLETED)
            await self._ledger("capture_funds", CaptureFunds(
                p.payment_id, p.tenant_id, self._attempt, p.amount, p.fee, p.currency,
                charge.gateway_reference, connector=self._connector),
                summary="capture the hold: debit the wallet")
            self._outcome_recorded = True
            return None

        if charge.status == "declined":
            failure = Failure(FailureCode.GATEWAY_DECLINED,
                              f"the gateway declined the charge ({charge.decline_code})")
        elif charge.status == "expired":
            failure = Failure(FailureCode.RESERVATION_EXPIRED,
                              "the hold expired before the gateway charged")
        else:
            failure = Failure(FailureCode.GATEWAY_UNAVAILABLE,
                              "the gateway could not be reached; nothing was charged")
        await self._ledger("release_hold",
                           ReleaseHold(p.payment_id, p.tenant_id, self._attempt, failure.code,
                                       charge.decline_code if charge.status == "declined" else None),
                           summary=f"release the hold: {failure.code}"
                                   + (f" ({charge.decline_code})" if charge.decline_code else ""))
        self._charge_started = False  # the gateway has settled this attempt: nothing charged
        return failure

    async def _charge_along_route(self, expires_at: datetime) -> Charge:
        """Charge along the route until the hold expires (workflows/charging.py)."""
        p = self._payment

        def request(plan: ConnectorPlan | None, fail_fast: bool) -> ChargeRequest:
            return ChargeRequest(p.payment_id, p.tenant_id, self._attempt, p.amount, p.currency,
                                 plan.name if plan else None, fail_fast)

        async def failover(plan: ConnectorPlan, following: ConnectorPlan, why: str) -> None:
            await self._ledger("record_failover", Failover(
                p.payment_id, p.tenant_id, self._attempt, plan.name, following.name, why),
                summary=f"{plan.name}: {why}; on to {following.name}")

        charge, self._connector = await charging.along_route(  # people count attempts from 1
            self._route, request, p.policy, expires_at, failover, f"attempt {self._attempt + 1}")
        return charge

    async def _fail_and_wait_for_retry(self, failure: Failure) -> bool:
        """Record the failure; True when a manual retry arrived in time, False when finished."""
        p = self._payment
        exhausted = self._manual_retries >= p.policy.max_manual_retries
        # The workflow's own state moves first, so it is never behind the projection that
        # clients read before they ask for a retry or a cancel.
        self._failure = failure
        self._set_status(PaymentStatus.EXHAUSTED if exhausted else PaymentStatus.FAILED)
        await self._ledger("fail_payment", FailPayment(
            p.payment_id, p.tenant_id, self._attempt, failure.code, failure.message, exhausted),
            summary=f"{'exhausted' if exhausted else 'failed'}: {failure.code}")
        self._outcome_recorded = True
        if exhausted:
            return False
        try:
            await workflow.wait_condition(
                lambda: self._retry_requested or self._cancel_requested,
                timeout=timedelta(seconds=p.policy.manual_retry_window_seconds),
                timeout_summary="manual retry window: then exhausted",
            )
        except TimeoutError:
            self._failure = Failure(failure.code, f"{failure.message}; the manual retry window elapsed")
            self._set_status(PaymentStatus.EXHAUSTED)
            await self._ledger("fail_payment", FailPayment(
                p.payment_id, p.tenant_id, self._attempt, failure.code, self._failure.message, True),
                summary="exhausted: the manual retry window elapsed")
            return False
        if self._cancel_requested:
            await self._cancel()
            return False
        self._manual_retries += 1
        self._attempt += 1
        self._failure = None
        self._outcome_recorded = False
        self._set_status(PaymentStatus.PENDING)
        return True

    async def _cancel(self) -> Failure:
        p = self._payment
        await self._ledger("cancel_payment",
                           CancelPayment(p.payment_id, p.tenant_id, self._attempt, "canceled",
                                         self._requested_by),
                           summary=f"cancel, asked by {self._requested_by}: release any hold")
        self._set_status(PaymentStatus.CANCELED)
        self._outcome_recorded = True
        return CANCELED

    # -- operators: signals (temporal CLI) and updates (REST, validated) --------------------

    # Who asked travels with the command: the API passes its key id; the temporal CLI may pass a
    # name (`--input '"alice"'`), else it is recorded as "temporal-cli".

    @workflow.signal
    async def retry(self, requested_by: str | None = None) -> None:
        """A signal cannot answer: a refused one is logged and recorded on the timeline as
        `payment.retry_refused` (the update `request_retry` answers instead)."""
        if self._can_retry():
            self._retry_requested = True
            self._requested_by = requested_by or "temporal-cli"
        else:
            await self._refused("retry", self._refusal("retried"), requested_by)

    @workflow.signal
    async def cancel(self, requested_by: str | None = None) -> None:
        if self._can_cancel():
            self._cancel_requested = True
            self._requested_by = requested_by or "temporal-cli"
        else:
            await self._refused("cancel", self._refusal("canceled"), requested_by)

    @workflow.update
    async def request_retry(self, requested_by: str | None = None) -> PaymentState:
        self._retry_requested = True
        self._requested_by = requested_by or "temporal-cli"
        await workflow.wait_condition(lambda: not self._retry_requested)
        return self.state()

    @request_retry.validator
    def _validate_retry(self, requested_by: str | None = None) -> None:
        if not self._can_retry():
            raise ApplicationError(self._refusal("retried"), type="CannotRetryPayment")

    @workflow.update
    async def request_cancel(self, requested_by: str | None = None) -> PaymentState:
        self._cancel_requested = True
        self._requested_by = requested_by or "temporal-cli"
        await workflow.wait_condition(lambda: self._status == PaymentStatus.CANCELED)
        return self.state()

    @request_cancel.validator
    def _validate_cancel(self, requested_by: str | None = None) -> None:
        if not self._can_cancel():
            raise ApplicationError(self._refusal("canceled"), type="CannotCancelPayment")

    async def _refused(self, command: str, reason: str, requested_by: str | None) -> None:
        who = requested_by or "temporal-cli"
        workflow.logger.warning("refused %s asked by %s: %s", command, who, reason)
        p = self._payment
        await self._ledger("record_refusal", Refusal(
            p.payment_id, p.tenant_id, self._attempt, command, reason, who, str(workflow.uuid4())),
            summary=f"refused {command} asked by {who}")

    @workflow.update
    async def outcome(self) -> PaymentState:
        """Returns when the current attempt's outcome is recorded (completed, failed, exhausted or
        canceled): `Prefer: wait` answers from here instead of polling the database."""
        await workflow.wait_condition(lambda: self._outcome_recorded)
        return self.state()

    @workflow.query
    def state(self) -> PaymentState:
        p = self._payment
        return PaymentState(
            payment_id=p.payment_id, status=self._status.value, attempt=self._attempt,
            manual_retries=self._manual_retries, max_manual_retries=p.policy.max_manual_retries,
            failure_code=self._failure.code if self._failure else None,
            failure_message=self._failure.message if self._failure else None,
            gateway_reference=self._gateway_reference, wallet_id=self._wallet_id,
            connector=self._connector,
        )

    # -- plumbing -----------------------------------------------------------------------------

    @property
    def _payment(self) -> PaymentInput:
        assert self._input is not None
        return self._input

    def _hold_expiry(self) -> datetime:
        return workflow.now() + timedelta(seconds=self._payment.policy.hold_ttl_seconds)

    def _can_retry(self) -> bool:
        return (self._status == PaymentStatus.FAILED and not self._retry_requested
                and not self._cancel_requested
                and self._manual_retries < self._payment.policy.max_manual_retries)

    def _can_cancel(self) -> bool:
        return self._status in CANCELABLE and not self._charge_started and not self._retry_requested

    def _refusal(self, verb: str) -> str:
        return (f"payment {self._payment.payment_id} cannot be {verb}: status {self._status.value}, "
                f"manual retries {self._manual_retries} of {self._payment.policy.max_manual_retries}")

    def _set_status(self, status: PaymentStatus, *, publish: bool = True) -> None:
        """Move the payment's status; `publish` logs it and keeps the PaymentStatus search attribute
        in step, with PaymentFailureCode while it has failed (a transient status left within the
        same workflow task need neither)."""
        if publish:
            workflow.logger.info("payment %s: %s -> %s", self._payment.payment_id,
                                 self._status.value, status.value)
            code = self._failure.code if self._failure else None
            changes = [PAYMENT_STATUS.value_set(status.value)]
            if code != self._indexed_failure_code:  # never an unset of what was never set
                changes.append(PAYMENT_FAILURE_CODE.value_set(code) if code
                               else PAYMENT_FAILURE_CODE.value_unset())
                self._indexed_failure_code = code
            workflow.upsert_search_attributes(changes)
        self._status = status

    async def _ledger(self, name: str, arg: Any, result_type: type | None = None, *,
                      summary: str) -> Any:
        """Run one ledger step as a local activity: our own database, retried with backoff until
        it works."""
        return await steps.ledger(self._payment.policy, name, arg, result_type, summary=summary)
