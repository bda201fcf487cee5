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
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts.money_movement import (
        Opened,
        OpenTransfer,
        SettleTransfer,
        TransferInput,
        TransferState,
    )
    from contracts.payment import ChargeRequest, ConnectorPlan, Failover
    from domain.status import FailureCode
    from workflows import charging, steps
    from workflows.search import PAYMENT_FAILURE_CODE, TRANSFER_STATUS


# Pinned: over by its charge deadline (HOLD_TTL_SECONDS) and a lookup, on the build it started on.
@workflow.defn(name="TopUp", versioning_behavior=VersioningBehavior.PINNED)
class TopUpWorkflow:
    def __init__(self) -> None:
        self._state: TransferState | None = None

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
        self._state = TransferState(top_up.transfer_id,
                                    "succeeded" if settle.succeeded else "failed",
                                    settle.failure_code, settle.failure_message,
                                    settle.gateway_reference, connector)
        workflow.upsert_search_attributes(
            [TRANSFER_STATUS.value_set(self._state.status)]
            + ([PAYMENT_FAILURE_CODE.value_set(settle.failure_code)] if settle.failure_code else []))
        await workflow.wait_condition(workflow.all_handlers_finished)
        if not settle.succeeded:
            raise ApplicationError(settle.failure_message or "failed",
                                   type=settle.failure_code, non_retryable=True)
        return self._state

    @workflow.update
    async def outcome(self) -> TransferState:
        """Returns once the top-up has succeeded or failed (`Prefer: wait` answers from here)."""
        # (with Update-with-Start this handler runs before `run` has begun)
        await workflow.wait_condition(
            lambda: self._state is not None and self._state.status != "processing")
        return self.state()

    @workflow.query
    def state(self) -> TransferState:
        assert self._state is not None
        return self._state
