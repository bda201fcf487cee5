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

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from contracts.transfers import PayoutRequest, SettleTransfer, TransferInput, TransferState
    from workflows import charging, steps
    from workflows.transfer import TransferSaga, settlement


# Pinned: over by its payout deadline (HOLD_TTL_SECONDS) and a lookup, on the build it started on.
@workflow.defn(name="Withdrawal", versioning_behavior=VersioningBehavior.PINNED)
class WithdrawalWorkflow(TransferSaga):
    @workflow.run
    async def run(self, w: TransferInput) -> TransferState:
        opened, deadline = await self._open(w, "open_withdrawal",
                                            "open the withdrawal and hold amount + fee")
        if not opened.ok:
            settle = SettleTransfer(w.transfer_id, w.tenant_id, False,
                                    failure_code=opened.failure_code,
                                    failure_message=opened.failure_message)
        else:
            plan = opened.route[0] if opened.route else None
            payout = await charging.pay_out(
                PayoutRequest(w.transfer_id, w.tenant_id, w.amount, w.currency,
                              plan.name if plan else None, post=True), w.policy, plan, deadline,
                local=w.policy.first_try_local)
            settle = settlement(w, payout.status, plan.name if plan else None,
                                reference=payout.gateway_reference,
                                decline_code=payout.decline_code, noun="payout",
                                nothing_done="paid out")
            if not payout.posted:  # the payout activity debited the hold, or this step does
                await steps.ledger(w.policy, "settle_withdrawal", settle,
                                   summary="debit the hold" if settle.succeeded
                                   else f"failed: {settle.failure_code}; release the hold")
        return await self._close(settle)
