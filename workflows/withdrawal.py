"""The withdrawal saga (workflow type `Withdrawal`): money out. amount + fee is held on the wallet
(one conditional statement, like a payment's), the payout is sent to the gateway, then the hold is
debited when the payout is made or released when it definitely was not.

    processing -> succeeded    paid out and debited: the workflow completes
               -> failed       insufficient funds, a declined payout, or none made by the
                               deadline: the hold is released; the workflow fails with the code

A payout whose outcome is unknown is looked up by its idempotency key (`<withdrawal id>:a0:
<connector>`) before anything is released, and is never sent twice: every retry carries the same
key. A payout goes to the route's first connector only (money out does not fail over).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

with workflow.unsafe.imports_passed_through():
    from contracts.money_movement import (
        Opened,
        OpenTransfer,
        Payout,
        PayoutRequest,
        SettleTransfer,
        TransferInput,
        TransferState,
    )
    from contracts.payment import ConnectorPlan
    from domain.status import FailureCode
    from workflows import policies, steps
    from workflows.search import PAYMENT_FAILURE_CODE, TRANSFER_STATUS


# Pinned: over by its payout deadline (HOLD_TTL_SECONDS) and a lookup, on the build it started on.
@workflow.defn(name="Withdrawal", versioning_behavior=VersioningBehavior.PINNED)
class WithdrawalWorkflow:
    def __init__(self) -> None:
        self._state: TransferState | None = None

    @workflow.run
    async def run(self, w: TransferInput) -> TransferState:
        self._state = TransferState(w.transfer_id, "processing")
        deadline = workflow.now() + timedelta(seconds=w.policy.hold_ttl_seconds)
        opened: Opened = await steps.ledger(
            w.policy, "open_withdrawal",
            OpenTransfer(w, workflow.info().run_id, deadline.isoformat()), Opened,
            summary="open the withdrawal and hold amount + fee")
        if not opened.ok:
            settle = SettleTransfer(w.transfer_id, w.tenant_id, False,
                                    failure_code=opened.failure_code,
                                    failure_message=opened.failure_message)
        else:
            plan = opened.route[0] if opened.route else None
            payout = await self._pay_out(w, plan, deadline)
            connector = plan.name if plan else None
            if payout.status == "succeeded":
                settle = SettleTransfer(w.transfer_id, w.tenant_id, True,
                                        payout.gateway_reference, connector)
            elif payout.status == "declined":
                settle = SettleTransfer(w.transfer_id, w.tenant_id, False, connector=connector,
                                        failure_code=FailureCode.GATEWAY_DECLINED,
                                        failure_message=f"the gateway declined the payout "
                                                        f"({payout.decline_code})")
            else:
                settle = SettleTransfer(w.transfer_id, w.tenant_id, False, connector=connector,
                                        failure_code=FailureCode.GATEWAY_UNAVAILABLE,
                                        failure_message="the gateway could not be reached; "
                                                        "nothing was paid out")
            await steps.ledger(w.policy, "settle_withdrawal", settle,
                               summary="debit the hold" if settle.succeeded
                               else f"failed: {settle.failure_code}; release the hold")
        self._state = TransferState(w.transfer_id, "succeeded" if settle.succeeded else "failed",
                                    settle.failure_code, settle.failure_message,
                                    settle.gateway_reference, settle.connector)
        workflow.upsert_search_attributes(
            [TRANSFER_STATUS.value_set(self._state.status)]
            + ([PAYMENT_FAILURE_CODE.value_set(settle.failure_code)] if settle.failure_code else []))
        await workflow.wait_condition(workflow.all_handlers_finished)
        if not settle.succeeded:
            raise ApplicationError(settle.failure_message or "failed",
                                   type=settle.failure_code, non_retryable=True)
        return self._state

    async def _pay_out(self, w: TransferInput, plan: ConnectorPlan | None,
                       deadline: datetime) -> Payout:
        """The payout, retried until the deadline; an unknown outcome is looked up. `expired`:
        the deadline passed and the gateway has no payout under the key."""
        req = PayoutRequest(w.transfer_id, w.tenant_id, w.amount, w.currency,
                            plan.name if plan else None)
        where = plan.name if plan else "the gateway"
        try:
            payout: Payout = await workflow.execute_activity(
                "send_payout", req, result_type=Payout,
                start_to_close_timeout=policies.charge_timeout(w.policy, plan),
                schedule_to_close_timeout=max(deadline - workflow.now(), timedelta(seconds=1)),
                retry_policy=policies.charge_retry(w.policy, plan),
                summary=f"pay out at {where}, until the hold expires")
            return payout
        except ActivityError as err:
            if err.retry_state == RetryState.TIMEOUT:
                await workflow.sleep(policies.charge_timeout(w.policy, plan),
                                     summary="hold expired: let any call in flight end")
                found = await self._lookup(w, req, plan)
                return found if found.status != "not_found" else Payout(status="expired")
            return await self._lookup(w, req, plan)

    async def _lookup(self, w: TransferInput, req: PayoutRequest,
                      plan: ConnectorPlan | None) -> Payout:
        found: Payout = await workflow.execute_activity(
            "lookup_payout", req, result_type=Payout,
            start_to_close_timeout=policies.charge_timeout(w.policy, plan),
            retry_policy=policies.lookup_retry(w.policy),
            summary="outcome unknown: look the payout up by its idempotency key")
        return found

    @workflow.update
    async def outcome(self) -> TransferState:
        """Returns once the withdrawal has succeeded or failed (`Prefer: wait`)."""
        # (with Update-with-Start this handler runs before `run` has begun)
        await workflow.wait_condition(
            lambda: self._state is not None and self._state.status != "processing")
        return self.state()

    @workflow.query
    def state(self) -> TransferState:
        assert self._state is not None
        return self._state
