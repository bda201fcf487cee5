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

from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from contracts.transfers import (
        Opened,
        OpenTransfer,
        PayoutRequest,
        SettleTransfer,
        TransferInput,
        TransferState,
    )
    from domain.status import FailureCode
    from workflows import charging, steps
    from workflows.transfer import TransferSaga


# Pinned: over by its payout deadline (HOLD_TTL_SECONDS) and a lookup, on the build it started on.
@workflow.defn(name="Withdrawal", versioning_behavior=VersioningBehavior.PINNED)
class WithdrawalWorkflow(TransferSaga):
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
            payout = await charging.pay_out(
                PayoutRequest(w.transfer_id, w.tenant_id, w.amount, w.currency,
                              plan.name if plan else None), w.policy, plan, deadline)
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
        return await self._close(settle)
