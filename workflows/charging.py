"""Charging along a route, shared by the payment and the top-up sagas (workflow code).

A charge is retried with backoff until its deadline (a payment's hold expiry, a top-up's charge
window). When the retries or the deadline run out with the outcome unknown, the gateway is asked
what it did with the idempotency key before anything is compensated. The saga moves to the next
connector of its route only when the current one is known not to have charged: a soft decline it
calls retryable elsewhere, its retries spent and a lookup that finds no charge, or its circuit
open (or no connection) before anything was sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

with workflow.unsafe.imports_passed_through():
    from contracts.payment import GATEWAY_DECLINED, Charge, ChargeRequest, ConnectorPlan, SagaPolicy
    from workflows import policies

Request = Callable[[ConnectorPlan | None, bool], ChargeRequest]  # (connector, fail fast)
OnFailover = Callable[[ConnectorPlan, ConnectorPlan, str], Awaitable[None]]


async def along_route(route: list[ConnectorPlan], request: Request, policy: SagaPolicy,
                      deadline: datetime, on_failover: OnFailover,
                      what: str) -> tuple[Charge, str | None]:
    """Charge at each connector of the route in turn (see the module); the charge and the
    connector that settled it. A hard decline, a charge, or a deadline ends it where it is."""
    plans: list[ConnectorPlan | None] = list(route) or [None]
    for i, plan in enumerate(plans):
        following = plans[i + 1] if i + 1 < len(plans) else None
        answer = await charge(request(plan, following is not None), policy, plan, deadline, what)
        why = failover_reason(answer)
        if plan is None or following is None or why is None:
            return answer, plan.name if plan else None
        await on_failover(plan, following, why)
    raise AssertionError("the route's last connector always answers")


async def charge(req: ChargeRequest, policy: SagaPolicy, plan: ConnectorPlan | None,
                 deadline: datetime, what: str) -> Charge:
    """One connector's charge, retried until the deadline, then looked up if still unknown.
    `expired`: the deadline passed and the gateway has no charge under the key."""
    where = plan.name if plan else "the gateway"
    try:
        result: Charge = await workflow.execute_activity(
            "charge_gateway", req, result_type=Charge,
            start_to_close_timeout=policies.charge_timeout(policy, plan),
            schedule_to_close_timeout=max(deadline - workflow.now(), timedelta(seconds=1)),
            retry_policy=policies.charge_retry(policy, plan),
            summary=f"charge {what} at {where}, until the hold expires",
        )
        return result
    except ActivityError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == GATEWAY_DECLINED:
            code = cause.details[0] if cause.details else "declined"
            return Charge(status="declined", decline_code=str(code))
        if err.retry_state == RetryState.TIMEOUT:
            # The deadline came first. A call may still be in flight on a worker: it ends
            # within one attempt's timeout, so wait that long before asking.
            await workflow.sleep(policies.charge_timeout(policy, plan),
                                 summary="hold expired: let any call in flight end")
            found = await lookup(req, policy, plan)
            return found if found.status != "not_found" else Charge(status="expired")
        # Retries are spent and the outcome is unknown (timeouts, 5xx): ask before compensating.
        return await lookup(req, policy, plan)


async def lookup(req: ChargeRequest, policy: SagaPolicy, plan: ConnectorPlan | None) -> Charge:
    found: Charge = await workflow.execute_activity(
        "lookup_charge", ChargeRequest(req.payment_id, req.tenant_id, req.attempt, req.amount,
                                       req.currency, req.connector),
        result_type=Charge,
        start_to_close_timeout=policies.charge_timeout(policy, plan),
        retry_policy=policies.lookup_retry(policy),
        summary=f"outcome unknown: look the charge up at {plan.name if plan else 'the gateway'}"
                " by its idempotency key",
    )
    return found


def failover_reason(charge: Charge) -> str | None:
    """Why the next connector may be tried (the current one did not charge), or None."""
    if charge.status == "declined" and charge.retryable_elsewhere:
        return f"soft decline {charge.decline_code}"
    if charge.status == "not_found":
        return "retries spent, and the lookup found no charge"
    if charge.status == "circuit_open":
        return "circuit open: nothing was sent"
    if charge.status == "unreachable":
        return "unreachable: no connection, nothing was sent"
    return None
