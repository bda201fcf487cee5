"""The payment saga (workflow type `Payment`): reserve the funds, charge the gateway, then capture
them or compensate.

    pending -> reserved -> processing -> completed                  the workflow completes
        any step can fail -> failed -> (manual retry: back to pending) ...
                                     -> exhausted                   the workflow fails (failure code)
        pending / reserved / failed -> canceled                     the workflow completes

    Manual capture (`capture_method: manual`): the charge is an authorization, and
    processing -> requires_capture -> completed      captured (all or less) by the `capture` update
                                   -> canceled       voided by a cancel
                                   -> expired        its window (`capture_before`) lapsed: voided
    The workflow is the authorization's window: one durable timer, nothing polls. A capture
    accepted before the deadline wins; after it, the expiry has already been decided.

The workflow stays open only while it waits for something: a charge in flight, or an operator's
retry of a failed payment. Refunds are their own workflows (`workflows.refund`).

The hold has a TTL, which bounds the charge's retries (its schedule-to-close timeout): when it runs
out, the gateway is asked what happened to the charge's idempotency key before anything is
released, so a charge that happened is captured, never released.

Ledger steps are local activities (each one database transaction with its projection and event),
run by the worker inside the workflow task; only the gateway call is a regular activity, and it
captures a charge that succeeds itself (the capture step's transaction; the step runs only when it
could not). A happy payment is two workflow tasks, one local activity and one activity task.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts.payment import (
        Authorized,
        AwaitProcessor,
        BeginRetry,
        CancelPayment,
        CaptureCharge,
        Captured,
        CaptureFunds,
        CaptureRequest,
        EndAuthorization,
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
    from domain.fees import fee_for
    from domain.money import MoneyError, to_major, to_minor
    from domain.status import CANCELABLE, FailureCode, PaymentStatus
    from workflows import charging, policies, steps
    from workflows.processor import AwaitsProcessor
    from workflows.search import PAYMENT_FAILURE_CODE, PAYMENT_STATUS



CANCELED = Failure("canceled", "canceled")
MANUAL_CAPTURE = "manual-capture"  # the patch that brought authorize-now-capture-later
ASYNC_OUTCOMES = "async-outcomes"  # the patch that brought outcomes that arrive later


# Auto-upgrade: a failed payment waits up to MANUAL_RETRY_WINDOW_SECONDS (3 days) for an
# operator, longer than a build should live; every change is patched (README: deploying).
@workflow.defn(name="Payment", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class PaymentWorkflow(AwaitsProcessor):
    def __init__(self) -> None:
        super().__init__()
        self._input: PaymentInput | None = None
        self._status = PaymentStatus.PENDING
        self._published = PaymentStatus.PENDING  # the status Temporal shows (as the API started it)
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
        self._capture: int | None = None  # manual capture: the amount asked for (minor units)
        self._closing: str | None = None  # manual capture: voided or expired, once decided
        self._next_action: str | None = None  # 3-D Secure: where the customer authenticates

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
        # A first try that settles ends this workflow task with the outcome: `processing` is
        # published only if the charge waits past it (SagaPolicy.processing_when_waiting).
        self._set_status(PaymentStatus.PROCESSING, publish=not (
            p.policy.processing_when_waiting and self._first_try_local()))
        charge = await self._charge_along_route(expires_at)

        if charge.status in ("processing", "requires_action") \
                and workflow.patched(ASYNC_OUTCOMES):
            charge = await self._settles_later(charge)

        if charge.status == "authorized" and p.manual and workflow.patched(MANUAL_CAPTURE):
            self._gateway_reference = charge.gateway_reference
            return await self._authorized()

        if charge.status == "succeeded":
            # Charged: completion is decided. The charge activity captured the hold (posted), or
            # the capture step retries until it is posted.
            self._gateway_reference = charge.gateway_reference
            self._set_status(PaymentStatus.COMPLETED)
            if not charge.posted:  # (always, in a history from before it could be)
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
        elif charge.status == "authentication_timeout":
            failure = Failure(FailureCode.AUTHENTICATION_TIMEOUT,
                              "the customer did not authenticate in time; the authorization "
                              "was voided")
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

    async def _settles_later(self, charge: Charge) -> Charge:
        """The processor answered `processing` (hold until ASYNC_PAYMENT_MAX_SECONDS) or
        `requires_action` (3-D Secure: the customer has ACTION_TIMEOUT_SECONDS), then wait for
        its event or a sync (workflows/processor.py)."""
        p = self._payment
        action = charge.status == "requires_action"
        wait = p.policy.action_timeout_seconds if action else p.policy.async_max_seconds
        deadline = workflow.now() + timedelta(seconds=wait)
        if action:
            self._next_action = charge.redirect_url
            self._set_status(PaymentStatus.REQUIRES_ACTION)
        else:
            self._publish_if_quiet()
        await self._ledger("await_processor", AwaitProcessor(
            p.payment_id, p.tenant_id, self._attempt, charge.gateway_reference,
            deadline.isoformat(), self._connector, charge.redirect_url if action else None),
            summary=(f"requires the customer's authentication until {deadline.isoformat()}"
                     if action else f"processing at {self._connector or 'the gateway'}: hold "
                     f"until {deadline.isoformat()}, wait for its event or a sync"))
        if action:
            self._outcome_recorded = True  # `Prefer: wait` answers here, with the next action
        req = ChargeRequest(p.payment_id, p.tenant_id, self._attempt, p.amount, p.currency,
                            self._connector)
        settled = await self._await_processor(charge, req, p.policy, self._plan(), deadline)
        self._next_action = None
        if action:
            self._outcome_recorded = False
            self._set_status(PaymentStatus.PROCESSING)
        if action and settled.status == "expired":
            # the window closed: a customer who authenticated at the last moment is charged (a
            # lookup decides); otherwise void it, then release the hold
            found = await charging.lookup(req, p.policy, self._plan())
            if found.status in ("succeeded", "declined"):
                return Charge(found.status, found.gateway_reference or charge.gateway_reference,
                              found.decline_code)
            self._gateway_reference = charge.gateway_reference
            await workflow.execute_activity(
                "void_charge", self._at_gateway(p.amount), result_type=Captured,
                start_to_close_timeout=policies.charge_timeout(p.policy, self._plan()),
                retry_policy=policies.lookup_retry(p.policy),
                summary="not authenticated in time: void the authorization")
            self._gateway_reference = None
            return Charge("authentication_timeout", charge.gateway_reference)
        return Charge(settled.status, settled.gateway_reference or charge.gateway_reference,
                      settled.decline_code)

    async def _charge_along_route(self, expires_at: datetime) -> Charge:
        """Charge along the route until the hold expires (workflows/charging.py)."""
        p = self._payment

        # A charge (not an authorization) that succeeds is captured by the charge activity. Not
        # patched: whether the capture step runs is read from the charge's recorded result
        # (`posted`), so a history from before replays as it ran (its charges were not posted),
        # and a patch marker would cost every payment a search-attribute upsert
        # (TemporalChangeVersion).
        post = not p.manual

        def request(plan: ConnectorPlan | None, fail_fast: bool) -> ChargeRequest:
            return ChargeRequest(p.payment_id, p.tenant_id, self._attempt, p.amount, p.currency,
                                 plan.name if plan else None, fail_fast, capture=not p.manual,
                                 post="payment" if post else None, post_fee=p.fee)

        if p.manual:  # an authorization's retries end with the hold's TTL, as a charge's
            expires_at = min(expires_at, workflow.now()
                             + timedelta(seconds=p.policy.hold_ttl_seconds))

        async def failover(plan: ConnectorPlan, following: ConnectorPlan, why: str) -> None:
            await self._ledger("record_failover", Failover(
                p.payment_id, p.tenant_id, self._attempt, plan.name, following.name, why),
                summary=f"{plan.name}: {why}; on to {following.name}")

        # The first attempt's first try at each connector runs in the workflow task (a local
        # activity: no activity task). A manual retry's charges are activities: the retry update
        # answers once the new attempt is reserved, not after its charge.
        charge, self._connector = await charging.along_route(  # people count attempts from 1
            self._route, request, p.policy, expires_at, failover, f"attempt {self._attempt + 1}",
            local=self._first_try_local(), on_wait=self._publish_if_quiet)
        return charge

    def _first_try_local(self) -> bool:
        return self._payment.policy.first_try_local and self._attempt == 0

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
        # canceled; or, for an authorization, whatever settled it first (a capture accepted in
        # the same instant wins, and the caller reads the state it answers)
        await workflow.wait_condition(lambda: self._status in (
            PaymentStatus.CANCELED, PaymentStatus.COMPLETED, PaymentStatus.EXPIRED))
        return self.state()

    @request_cancel.validator
    def _validate_cancel(self, requested_by: str | None = None) -> None:
        if not self._can_cancel():
            raise ApplicationError(self._refusal("canceled"), type="CannotCancelPayment")

    @workflow.update
    async def capture(self, request: CaptureRequest | None = None) -> PaymentState:
        """Capture a `requires_capture` payment, all of its authorization or less (REST
        `POST /v1/payments/{id}/capture`, or `temporal workflow update execute --name capture
        --input '{"amount": "6.00"}'`); answers the payment once the capture has settled it."""
        self._capture = self._capture_amount(request)
        await workflow.wait_condition(lambda: self._status != PaymentStatus.REQUIRES_CAPTURE)
        return self.state()

    @capture.validator
    def _validate_capture(self, request: CaptureRequest | None = None) -> None:
        if not self._payment.manual or self._status != PaymentStatus.REQUIRES_CAPTURE \
                or self._capture is not None or self._closing is not None \
                or self._cancel_requested:
            raise ApplicationError(self._capture_refusal(), type="CannotCapturePayment")
        self._capture_amount(request)

    def _capture_amount(self, request: CaptureRequest | None) -> int:
        p = self._payment
        if request is None or request.amount is None:
            return p.amount
        try:
            amount = to_minor(request.amount, p.currency)
        except MoneyError as err:
            raise ApplicationError(f"amount: {err.message}", type="InvalidCaptureAmount") from None
        if amount > p.amount:
            raise ApplicationError(f"amount: {to_major(amount, p.currency)} is more than the "
                                   f"{to_major(p.amount, p.currency)} authorized",
                                   type="InvalidCaptureAmount")
        return amount

    def _capture_refusal(self, verb: str = "captured") -> str:
        """Why a capture (or, while waiting for one, a retry or cancel) is refused."""
        p = self._payment
        refused = f"payment {p.payment_id} cannot be {verb}"
        if not p.manual:
            return f"{refused}: it is charged at once (automatic)"
        if self._capture is not None:
            return f"{refused}: it is being captured already"
        if self._closing is not None or self._cancel_requested:
            return f"{refused}: its authorization is being {self._closing or 'voided'}"
        return f"{refused}: status {self._status.value}"

    async def _authorized(self) -> Failure | None:
        """Park in `requires_capture` until a capture, a cancel or the window's end."""
        p = self._payment
        before = self._capture_before() or workflow.now()
        self._set_status(PaymentStatus.REQUIRES_CAPTURE)
        await self._ledger("authorize_payment", Authorized(
            p.payment_id, p.tenant_id, self._attempt, p.amount, p.currency,
            self._gateway_reference, before.isoformat(), self._connector),
            summary=f"authorized at {self._connector or 'the gateway'}: wait for a capture "
                    f"until {before.isoformat()}")
        self._outcome_recorded = True  # `Prefer: wait` answers here: the outcome for now
        window = before - workflow.now()
        if window > timedelta(0):
            # on timeout, a capture accepted in the same instant still wins, below
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._capture is not None or self._cancel_requested, timeout=window,
                    timeout_summary="the authorization window: then void it, expired")
        if self._capture is not None:
            return await self._capture_authorization(self._capture)
        if self._cancel_requested:
            return await self._end_authorization("voided", f"voided, asked by {self._requested_by}")
        return await self._end_authorization("expired", "the authorization window lapsed "
                                                        "uncaptured; voided")

    async def _capture_authorization(self, amount: int) -> Failure | None:
        p = self._payment
        captured: Captured = await workflow.execute_activity(
            "capture_charge", self._at_gateway(amount), result_type=Captured,
            start_to_close_timeout=policies.charge_timeout(p.policy, self._plan()),
            retry_policy=policies.lookup_retry(p.policy),  # until the processor answers
            summary=f"capture {to_major(amount, p.currency)} {p.currency} of "
                    f"{to_major(p.amount, p.currency)} at {self._connector or 'the gateway'}")
        if captured.status != "captured":
            return await self._end_authorization(
                "expired", f"the processor refused the capture ({captured.code})")
        await self._ledger("capture_funds", CaptureFunds(
            p.payment_id, p.tenant_id, self._attempt, amount, fee_for(amount, p.fee_bps),
            p.currency, self._gateway_reference, connector=self._connector),
            summary="captured: debit the captured amount and its fee, release the rest")
        # after the projection: whoever the capture answers reads it completed
        self._set_status(PaymentStatus.COMPLETED)
        return None

    async def _end_authorization(self, outcome: str, reason: str) -> Failure | None:
        """Void the authorization at the processor (retried until it answers: nothing is
        released while it may still capture), then release the hold."""
        p = self._payment
        self._closing = outcome
        voided: Captured = await workflow.execute_activity(
            "void_charge", self._at_gateway(p.amount), result_type=Captured,
            start_to_close_timeout=policies.charge_timeout(p.policy, self._plan()),
            retry_policy=policies.lookup_retry(p.policy),
            summary=f"void the authorization at {self._connector or 'the gateway'}")
        if voided.status == "refused":  # the processor captured it after all: the money moved
            return await self._capture_authorization(p.amount)
        await self._ledger("end_authorization", EndAuthorization(
            p.payment_id, p.tenant_id, self._attempt, outcome, reason, self._requested_by),
            summary=f"{outcome}: release the hold")
        if outcome == "expired":
            self._failure = Failure(FailureCode.AUTHORIZATION_EXPIRED, reason)
        self._set_status(PaymentStatus.EXPIRED if outcome == "expired" else PaymentStatus.CANCELED)
        return CANCELED

    def _at_gateway(self, amount: int) -> CaptureCharge:
        p = self._payment
        assert self._gateway_reference is not None
        return CaptureCharge(p.payment_id, p.tenant_id, self._attempt, self._gateway_reference,
                             amount, p.currency, self._connector)

    def _plan(self) -> ConnectorPlan | None:
        return next((c for c in self._route if c.name == self._connector), None)

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
            connector=self._connector, next_action_url=self._next_action,
        )

    # -- plumbing -----------------------------------------------------------------------------

    @property
    def _payment(self) -> PaymentInput:
        assert self._input is not None
        return self._input

    def _hold_expiry(self) -> datetime:
        """Until when the hold stands: its TTL, or a manual payment's authorization window."""
        ttl = workflow.now() + timedelta(seconds=self._payment.policy.hold_ttl_seconds)
        before = self._capture_before()
        return before if before is not None and before > ttl else ttl

    def _capture_before(self) -> datetime | None:
        p = self._payment
        return datetime.fromisoformat(p.capture_before) if p.manual and p.capture_before else None

    def _can_retry(self) -> bool:
        return (self._status == PaymentStatus.FAILED and not self._retry_requested
                and not self._cancel_requested
                and self._manual_retries < self._payment.policy.max_manual_retries)

    def _can_cancel(self) -> bool:
        if self._status == PaymentStatus.REQUIRES_CAPTURE:  # void the authorization
            return self._capture is None and self._closing is None and not self._cancel_requested
        return self._status in CANCELABLE and not self._charge_started and not self._retry_requested

    def _refusal(self, verb: str) -> str:
        if self._status == PaymentStatus.REQUIRES_CAPTURE:
            return self._capture_refusal(verb)
        return (f"payment {self._payment.payment_id} cannot be {verb}: status {self._status.value}, "
                f"manual retries {self._manual_retries} of {self._payment.policy.max_manual_retries}")

    def _set_status(self, status: PaymentStatus, *, publish: bool = True) -> None:
        """Move the payment's status; `publish` logs it and keeps the PaymentStatus search attribute
        in step, with PaymentFailureCode while it has failed (a transient status left within the
        same workflow task need neither; `_publish_if_quiet` publishes one the saga waits in)."""
        self._status = status
        if publish:
            self._publish()

    def _publish_if_quiet(self) -> None:
        """The saga is about to wait past this workflow task: publish a status moved quietly."""
        if self._status != self._published:
            self._publish()

    def _publish(self) -> None:
        status = self._status
        workflow.logger.info("payment %s: %s -> %s", self._payment.payment_id,
                             self._published.value, status.value)
        code = self._failure.code if self._failure else None
        changes = [PAYMENT_STATUS.value_set(status.value)]
        if code != self._indexed_failure_code:  # never an unset of what was never set
            changes.append(PAYMENT_FAILURE_CODE.value_set(code) if code
                           else PAYMENT_FAILURE_CODE.value_unset())
            self._indexed_failure_code = code
        workflow.upsert_search_attributes(changes)
        self._published = status

    async def _ledger(self, name: str, arg: Any, result_type: type | None = None, *,
                      summary: str) -> Any:
        """Run one ledger step as a local activity: our own database, retried with backoff until
        it works."""
        return await steps.ledger(self._payment.policy, name, arg, result_type, summary=summary)
