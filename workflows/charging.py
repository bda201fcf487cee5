"""Moving money at a connector, shared by the sagas (workflow code): charging along a route (the
payment and the top-up), and a payout (the withdrawal), each asked for and looked up the same way.

A charge is retried with backoff until its deadline (a payment's hold expiry, a top-up's charge
window). When the retries or the deadline run out with the outcome unknown, the gateway is asked
what it did with the idempotency key before anything is compensated. The saga moves to the next
connector of its route only when the current one is known not to have charged: a soft decline it
calls retryable elsewhere, its retries spent and a lookup that finds no charge, or its circuit
open (or no connection) before anything was sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

with workflow.unsafe.imports_passed_through():
    from contracts.saga import GATEWAY_DECLINED, Charge, ChargeRequest, ConnectorPlan, SagaPolicy
    from contracts.transfers import Payout, PayoutRequest
    from workflows import policies

Request = Callable[[ConnectorPlan | None, bool], ChargeRequest]  # (connector, fail fast)
OnFailover = Callable[[ConnectorPlan, ConnectorPlan, str], Awaitable[None]]
OnWait = Callable[[], None]  # the movement is about to wait past its workflow task


async def along_route(route: list[ConnectorPlan], request: Request, policy: SagaPolicy,
                      deadline: datetime, on_failover: OnFailover,
                      what: str, *, local: bool = False,
                      on_wait: OnWait | None = None) -> tuple[Charge, str | None]:
    """Charge at each connector of the route in turn (see the module); the charge and the
    connector that settled it. A hard decline, a charge, or a deadline ends it where it is.
    `local`: each connector's first try is a local activity (`move`); `on_wait` is called before
    the first wait past the workflow task (a retry's backoff, an activity, a lookup)."""
    plans: list[ConnectorPlan | None] = list(route) or [None]
    for i, plan in enumerate(plans):
        following = plans[i + 1] if i + 1 < len(plans) else None
        answer = await charge(request(plan, following is not None), policy, plan, deadline, what,
                              local=local, on_wait=on_wait)
        why = failover_reason(answer)
        if plan is None or following is None or why is None:
            return answer, plan.name if plan else None
        await on_failover(plan, following, why)
    raise AssertionError("the route's last connector always answers")


@dataclass(frozen=True)
class Movement:
    """A way money moves at a connector: the activity that asks for it, the one that looks it up
    by its idempotency key, what both answer, and what the Web UI calls it."""

    send: str
    look_up: str
    result: type
    noun: str


CHARGE = Movement("charge_gateway", "lookup_charge", Charge, "charge")
PAYOUT = Movement("send_payout", "lookup_payout", Payout, "payout")


async def charge(req: ChargeRequest, policy: SagaPolicy, plan: ConnectorPlan | None,
                 deadline: datetime, what: str, *, local: bool = False,
                 on_wait: OnWait | None = None) -> Charge:
    """One connector's charge, retried until the deadline, then looked up if still unknown.
    `expired`: the deadline passed and the gateway has no charge under the key."""
    lookup_req = ChargeRequest(req.payment_id, req.tenant_id, req.attempt, req.amount,
                               req.currency, req.connector)
    answer: Charge = await move(CHARGE, req, lookup_req, policy, plan, deadline,
                                f"charge {what}", local, on_wait)
    return answer


async def pay_out(req: PayoutRequest, policy: SagaPolicy, plan: ConnectorPlan | None,
                  deadline: datetime, *, local: bool = False) -> Payout:
    """A payout, retried until the deadline, then looked up if still unknown (as `charge`)."""
    answer: Payout = await move(PAYOUT, req, req, policy, plan, deadline, "pay out", local)
    return answer


async def move(m: Movement, req: Any, lookup_req: Any, policy: SagaPolicy,
               plan: ConnectorPlan | None, deadline: datetime, doing: str, local: bool,
               on_wait: OnWait | None = None) -> Any:
    """Ask for the movement until the deadline; an unknown outcome is looked up by its key before
    anything is compensated. A decline is a result.

    `local` (the sagas ask for it when `SagaPolicy.first_try_local`: every saga started since;
    histories from before replay as they ran): the first try is a local activity, in the
    workflow task that asked for it: no activity task, a third of the Temporal server's work per
    payment gone. It lasts at most `policy.first_try_seconds` (it holds its workflow task, and a
    task slot: updates, signals and queries that arrive meanwhile are answered when it ends).
    When it fails or runs out of time, its retries are a regular activity under the same
    idempotency key, with the rest of the retry policy, which the Web UI shows pending with its
    attempts and last failure."""
    where = plan.name if plan else "the gateway"
    retry = policies.charge_retry(policy, plan)
    timeout = policies.charge_timeout(policy, plan)
    if local:
        try:
            return await workflow.execute_local_activity(
                m.send, req, result_type=m.result,
                start_to_close_timeout=policies.first_try_timeout(policy, plan),
                schedule_to_close_timeout=max(deadline - workflow.now(), timedelta(seconds=1)),
                retry_policy=policies.first_try(retry), summary=f"{doing} at {where}")
        except (ActivityError, ApplicationError) as err:  # (a local one's own error comes bare)
            failure = err.cause if isinstance(err, ActivityError) else err
            late = workflow.now() >= deadline
            if late or _final(failure, retry):
                return await _failed(m, failure, late, lookup_req, policy, plan, on_wait)
            workflow.logger.warning("%s at %s: the first try failed (%s); retried as an "
                                    "activity", doing, where, failure)
        if on_wait is not None:
            on_wait()
        await workflow.sleep(retry.initial_interval,
                             summary=f"{doing} at {where}: the first try failed, retry")
        if getattr(req, "fail_fast", False):  # the first try may have been sent: no failover now
            req = replace(req, fail_fast=False)
        retry = policies.after_first_try(retry)
    try:
        return await workflow.execute_activity(
            m.send, req, result_type=m.result, start_to_close_timeout=timeout,
            schedule_to_close_timeout=max(deadline - workflow.now(), timedelta(seconds=1)),
            retry_policy=retry, summary=f"{doing} at {where}, until the hold expires")
    except ActivityError as err:
        return await _failed(m, err.cause, err.retry_state == RetryState.TIMEOUT, lookup_req,
                             policy, plan, on_wait)


def _final(failure: BaseException | None, retry: RetryPolicy) -> bool:
    """A first try's failure that is not retried: a decline or another non-retryable error, or
    a policy of one attempt."""
    if isinstance(failure, ApplicationError) and (
            failure.non_retryable or failure.type in (retry.non_retryable_error_types or ())):
        return True
    return retry.maximum_attempts == 1


async def _failed(m: Movement, cause: BaseException | None, deadline_passed: bool, lookup_req: Any,
                  policy: SagaPolicy, plan: ConnectorPlan | None, on_wait: OnWait | None = None
                  ) -> Any:
    """What a movement that failed for good did: a decline is a result; any other outcome is
    unknown and looked up by its key."""
    if isinstance(cause, ApplicationError) and cause.type == GATEWAY_DECLINED:
        code = cause.details[0] if cause.details else "declined"
        return m.result(status="declined", decline_code=str(code))
    if on_wait is not None:
        on_wait()
    if deadline_passed:
        # The deadline came first. A call may still be in flight on a worker: it ends within
        # one attempt's timeout, so wait that long before asking.
        await workflow.sleep(policies.charge_timeout(policy, plan),
                             summary="hold expired: let any call in flight end")
        found = await look_up(m, lookup_req, policy, plan)
        return found if found.status != "not_found" else m.result(status="expired")
    # Retries are spent and the outcome is unknown (timeouts, 5xx): ask before compensating.
    return await look_up(m, lookup_req, policy, plan)


async def lookup(req: ChargeRequest, policy: SagaPolicy, plan: ConnectorPlan | None) -> Charge:
    """A charge looked up by its idempotency key."""
    found: Charge = await look_up(CHARGE, req, policy, plan)
    return found


async def look_up(m: Movement, req: Any, policy: SagaPolicy, plan: ConnectorPlan | None) -> Any:
    return await workflow.execute_activity(
        m.look_up, req, result_type=m.result,
        start_to_close_timeout=policies.charge_timeout(policy, plan),
        retry_policy=policies.lookup_retry(policy),
        summary=f"outcome unknown: look the {m.noun} up at "
                f"{plan.name if plan else 'the gateway'} by its idempotency key",
    )


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
