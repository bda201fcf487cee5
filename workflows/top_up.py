"""The top-up saga (workflow type `TopUp`): money in. The card is charged amount + fee at the
gateway, then the wallet is credited exactly the amount (the fee to the fee account).

    processing -> succeeded    charged and credited: the workflow completes
               -> failed       declined, or nothing charged by the deadline: the workflow fails
                               with the failure code (gateway_declined, gateway_unavailable)

A charge whose outcome is unknown is never treated as failed: it is looked up by its idempotency
key (`<top-up id>:a0:<connector>`); a top-up never credits twice (one journal per top-up). Routing,
failover, retries and the circuit breaker are the payments' (workflows/charging.py). Ledger steps
are local activities: a happy top-up is two workflow tasks and one activity task.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from contracts.saga import ChargeRequest, ConnectorPlan, Failover
    from contracts.transfers import (
        Opened,
        OpenTransfer,
        SettleTransfer,
        TransferInput,
        TransferState,
    )
    from domain.status import FailureCode
    from workflows import charging, steps
    from workflows.transfer import TransferSaga


# Pinned: over by its charge deadline (HOLD_TTL_SECONDS) and a lookup, on the build it started on.
@workflow.defn(name="TopUp", versioning_behavior=VersioningBehavior.PINNED)
class TopUpWorkflow(TransferSaga):
    @workflow.run
    async def run(self, top_up: TransferInput) -> TransferState:
        self._state = TransferState(top_up.transfer_id, "processing")
        deadline = workflow.now() + timedelta(seconds=top_up.policy.hold_ttl_seconds)
        opened: Opened = await steps.ledger(
            top_up.policy, "open_top_up",
            OpenTransfer(top_up, workflow.info().run_id, deadline.isoformat()), Opened,
            summary="open the top-up and route its charge")

        def request(plan: ConnectorPlan | None, fail_fast: bool) -> ChargeRequest:
            return ChargeRequest(top_up.transfer_id, top_up.tenant_id, 0,
                                 top_up.amount + top_up.fee, top_up.currency,
                                 plan.name if plan else None, fail_fast)

        async def failover(plan: ConnectorPlan, following: ConnectorPlan, why: str) -> None:
            await steps.ledger(top_up.policy, "record_transfer_failover", Failover(
                top_up.transfer_id, top_up.tenant_id, 0, plan.name, following.name, why),
                summary=f"{plan.name}: {why}; on to {following.name}")

        charge, connector = await charging.along_route(
            opened.route, request, top_up.policy, deadline, failover, "the top-up")
        if charge.status == "succeeded":
            settle = SettleTransfer(top_up.transfer_id, top_up.tenant_id, True,
                                    charge.gateway_reference, connector)
        elif charge.status == "declined":
            settle = SettleTransfer(top_up.transfer_id, top_up.tenant_id, False,
                                    connector=connector, failure_code=FailureCode.GATEWAY_DECLINED,
                                    failure_message=f"the gateway declined the charge "
                                                    f"({charge.decline_code})")
        else:
            settle = SettleTransfer(top_up.transfer_id, top_up.tenant_id, False,
                                    connector=connector,
                                    failure_code=FailureCode.GATEWAY_UNAVAILABLE,
                                    failure_message="the gateway could not be reached; nothing "
                                                    "was charged")
        await steps.ledger(top_up.policy, "settle_top_up", settle,
                           summary="credit the wallet" if settle.succeeded
                           else f"failed: {settle.failure_code}")
        return await self._close(settle)
