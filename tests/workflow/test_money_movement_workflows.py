"""The top-up and withdrawal sagas' decisions, with time skipping: a deadline of 15 minutes
passes in milliseconds, so the unknown-outcome paths run for real."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.saga import GATEWAY_UNAVAILABLE, Charge, ChargeRequest, ConnectorPlan, Failover, SagaPolicy
from contracts.transfers import (
    Opened,
    OpenTransfer,
    Payout,
    PayoutRequest,
    SettleTransfer,
    TransferInput,
)
from workflows.top_up import TopUpWorkflow
from workflows.withdrawal import WithdrawalWorkflow

FAST = SagaPolicy(gateway_retry_initial_seconds=1, gateway_retry_max_interval_seconds=10,
                  gateway_retry_max_attempts=3, first_try_local=True)
ROUTE = [ConnectorPlan("primary", retry_max_attempts=3), ConnectorPlan("secondary",
                                                                       retry_max_attempts=3)]


def unavailable(_: Any) -> Any:
    raise ApplicationError("the gateway timed out", type=GATEWAY_UNAVAILABLE)


@dataclass
class Fakes:
    opened: Opened = field(default_factory=lambda: Opened(True, list(ROUTE), "default order"))
    charge: Callable[[ChargeRequest], Charge] = lambda r: Charge("succeeded", "ch_1")
    lookup: Callable[[ChargeRequest], Charge] = lambda r: Charge("not_found")
    payout: Callable[[PayoutRequest], Payout] = lambda r: Payout("succeeded", "po_1")
    lookup_payout: Callable[[PayoutRequest], Payout] = lambda r: Payout("not_found")
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def names(self) -> list[str]:
        """The steps in order, an activity's retries counted once."""
        steps: list[str] = []
        for name, _ in self.calls:
            if not steps or steps[-1] != name:
                steps.append(name)
        return steps

    def settled(self) -> SettleTransfer:
        return next(arg for name, arg in self.calls if name.startswith("settle_"))

    def activities(self) -> list[Any]:
        fakes = self

        types = {"open_top_up": OpenTransfer, "open_withdrawal": OpenTransfer,
                 "charge_gateway": ChargeRequest, "lookup_charge": ChargeRequest,
                 "send_payout": PayoutRequest, "lookup_payout": PayoutRequest,
                 "record_transfer_failover": Failover, "settle_top_up": SettleTransfer,
                 "settle_withdrawal": SettleTransfer}

        def step(name: str, answer: Callable[[Any], Any] = lambda _: None) -> Any:
            async def run(arg: Any) -> Any:
                fakes.calls.append((name, arg))
                return answer(arg)
            run.__annotations__ = {"arg": types[name], "return": Any}
            return activity.defn(name=name)(run)

        return [
            step("open_top_up", lambda _: fakes.opened),
            step("open_withdrawal", lambda _: fakes.opened),
            step("charge_gateway", lambda r: fakes.charge(r)),
            step("lookup_charge", lambda r: fakes.lookup(r)),
            step("send_payout", lambda r: fakes.payout(r)),
            step("lookup_payout", lambda r: fakes.lookup_payout(r)),
            step("record_transfer_failover"),
            step("settle_top_up"),
            step("settle_withdrawal"),
        ]


def transfer(prefix: str) -> TransferInput:
    tid = f"{prefix}_{uuid.uuid4().hex[:12]}"
    return TransferInput(tid, "t", tid, "fp", "wal_1", 4000, 80, "USD",
                         datetime.now(UTC).isoformat(), {"type": "card", "token": "tok"}, FAST)


async def run(env: WorkflowEnvironment, fakes: Fakes, workflow: Any, inp: TransferInput) -> Any:
    queue = f"q-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[TopUpWorkflow, WithdrawalWorkflow],
                      activities=fakes.activities()):
        return await env.client.execute_workflow(workflow.run, inp, id=inp.transfer_id,
                                                 task_queue=queue)


async def test_a_top_up_charges_amount_plus_fee_then_credits(env: WorkflowEnvironment) -> None:
    fakes = Fakes()
    state = await run(env, fakes, TopUpWorkflow, transfer("tup"))
    assert state.status == "succeeded"
    assert fakes.names() == ["open_top_up", "charge_gateway", "settle_top_up"]
    charged = fakes.calls[1][1]
    assert (charged.amount, charged.attempt, charged.connector) == (4080, 0, "primary")
    assert fakes.settled().succeeded


async def test_a_charge_or_payout_its_activity_posted_is_not_settled_again(
        env: WorkflowEnvironment) -> None:
    """The charge (payout) activity settles a top-up (withdrawal) that succeeded when asked
    (`post`): the saga's settle step runs only when it could not."""
    fakes = Fakes(charge=lambda r: Charge("succeeded", "ch_1", posted=r.post == "top_up"),
                  payout=lambda r: Payout("succeeded", "po_1", posted=r.post))
    topped = await run(env, fakes, TopUpWorkflow, transfer("tup"))
    drawn = await run(env, fakes, WithdrawalWorkflow, transfer("wdr"))
    assert (topped.status, topped.gateway_reference) == ("succeeded", "ch_1")
    assert (drawn.status, drawn.gateway_reference) == ("succeeded", "po_1")
    assert fakes.names() == ["open_top_up", "charge_gateway", "open_withdrawal", "send_payout"]


async def test_a_top_up_with_an_unknown_outcome_is_looked_up_never_failed_blind(
        env: WorkflowEnvironment) -> None:
    fakes = Fakes(charge=unavailable, lookup=lambda r: Charge("succeeded", "ch_late"))
    state = await run(env, fakes, TopUpWorkflow, transfer("tup"))
    assert state.status == "succeeded"
    assert "lookup_charge" in fakes.names()
    assert fakes.settled().gateway_reference == "ch_late"
    assert "record_transfer_failover" not in fakes.names()  # it charged: no failover


async def test_a_top_up_fails_over_only_when_the_first_connector_did_not_charge(
        env: WorkflowEnvironment) -> None:
    fakes = Fakes(charge=lambda r: unavailable(r) if r.connector == "primary"
                  else Charge("succeeded", "ch_2"))
    state = await run(env, fakes, TopUpWorkflow, transfer("tup"))
    assert (state.status, state.connector) == ("succeeded", "secondary")
    assert fakes.names() == ["open_top_up", "charge_gateway", "lookup_charge",
                             "record_transfer_failover", "charge_gateway", "settle_top_up"]


async def test_a_declined_top_up_fails_its_workflow_with_the_code(env: WorkflowEnvironment) -> None:
    fakes = Fakes(charge=lambda r: Charge("declined", decline_code="do_not_honor"))
    with pytest.raises(WorkflowFailureError) as err:
        await run(env, fakes, TopUpWorkflow, transfer("tup"))
    assert isinstance(err.value.cause, ApplicationError)
    assert err.value.cause.type == "gateway_declined"
    assert not fakes.settled().succeeded


async def test_a_withdrawal_pays_out_then_debits(env: WorkflowEnvironment) -> None:
    fakes = Fakes()
    state = await run(env, fakes, WithdrawalWorkflow, transfer("wdr"))
    assert state.status == "succeeded"
    assert fakes.names() == ["open_withdrawal", "send_payout", "settle_withdrawal"]
    paid = fakes.calls[1][1]
    assert (paid.amount, paid.connector) == (4000, "primary")  # the amount; the fee stays


async def test_a_payout_with_an_unknown_outcome_is_looked_up_before_the_hold_is_released(
        env: WorkflowEnvironment) -> None:
    fakes = Fakes(payout=unavailable, lookup_payout=lambda r: Payout("succeeded", "po_late"))
    state = await run(env, fakes, WithdrawalWorkflow, transfer("wdr"))
    assert state.status == "succeeded"
    assert fakes.names() == ["open_withdrawal", "send_payout", "lookup_payout",
                             "settle_withdrawal"]
    assert fakes.settled().gateway_reference == "po_late"


async def test_a_payout_never_made_releases_the_hold_after_the_lookup(
        env: WorkflowEnvironment) -> None:
    fakes = Fakes(payout=unavailable)
    with pytest.raises(WorkflowFailureError) as err:
        await run(env, fakes, WithdrawalWorkflow, transfer("wdr"))
    assert isinstance(err.value.cause, ApplicationError)
    assert err.value.cause.type == "gateway_unavailable"
    assert fakes.names()[-2:] == ["lookup_payout", "settle_withdrawal"]
    assert not fakes.settled().succeeded
    assert all(r.connector == "primary" for n, r in fakes.calls if n == "send_payout")


async def test_a_withdrawal_the_wallet_cannot_hold_pays_nothing(env: WorkflowEnvironment) -> None:
    fakes = Fakes(opened=Opened(False, [], None, "insufficient_funds", "not enough"))
    with pytest.raises(WorkflowFailureError) as err:
        await run(env, fakes, WithdrawalWorkflow, transfer("wdr"))
    assert isinstance(err.value.cause, ApplicationError)
    assert err.value.cause.type == "insufficient_funds"
    assert fakes.names() == ["open_withdrawal"]
