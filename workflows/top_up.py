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
    from contracts.payment import AwaitProcessor
    from contracts.saga import Charge, ChargeRequest, ConnectorPlan, Failover
    from contracts.transfers import TransferInput, TransferState
    from workflows import charging, steps
    from workflows.transfer import TransferSaga, settlement


# Pinned: over by its charge deadline (HOLD_TTL_SECONDS) and a lookup, on the build it started on.
@workflow.defn(name="TopUp", versioning_behavior=VersioningBehavior.PINNED)
class TopUpWorkflow(TransferSaga):
    @workflow.run
    async def run(self, top_up: TransferInput) -> TransferState:
        opened, deadline = await self._open(top_up, "open_top_up",
                                            "open the top-up and route its charge")

        def request(plan: ConnectorPlan | None, fail_fast: bool) -> ChargeRequest:
            return ChargeRequest(top_up.transfer_id, top_up.tenant_id, 0,
                                 top_up.amount + top_up.fee, top_up.currency,
                                 plan.name if plan else None, fail_fast,
                                 source_type=top_up.instrument.get("type"), post="top_up")

        async def failover(plan: ConnectorPlan, following: ConnectorPlan, why: str) -> None:
            await steps.ledger(top_up.policy, "record_transfer_failover", Failover(
                top_up.transfer_id, top_up.tenant_id, 0, plan.name, following.name, why),
                summary=f"{plan.name}: {why}; on to {following.name}")

        charge, connector = await charging.along_route(
            opened.route, request, top_up.policy, deadline, failover, "the top-up",
            local=top_up.policy.first_try_local)
        if charge.status == "processing":  # a bank debit: it settles in days
            until = workflow.now() + timedelta(seconds=top_up.policy.async_max_seconds)
            await steps.ledger(top_up.policy, "top_up_processing", AwaitProcessor(
                top_up.transfer_id, top_up.tenant_id, 0, charge.gateway_reference,
                until.isoformat(), connector),
                summary=f"processing at {connector or 'the gateway'}: wait for its event or a "
                        f"sync until {until.isoformat()}")
            plan = next((c for c in opened.route if c.name == connector), None)
            settled = await self._await_processor(charge, request(plan, False), top_up.policy,
                                                  plan, until)
            charge = Charge(settled.status, settled.gateway_reference or charge.gateway_reference,
                            settled.decline_code)
        settle = settlement(top_up, charge.status, connector, reference=charge.gateway_reference,
                            decline_code=charge.decline_code, noun="charge",
                            nothing_done="charged")
        if not charge.posted:  # the charge activity credited the wallet, or this step does
            await steps.ledger(top_up.policy, "settle_top_up", settle,
                               summary="credit the wallet" if settle.succeeded
                               else f"failed: {settle.failure_code}")
        return await self._close(settle)
