"""Two later builds of the sagas, for the deploy test (test_deploy.py): what a team would ship.

Build B: the payment records two more steps, a memo saying it started on B and one saying B
finished it, each behind `workflow.patched`, so auto-upgrading payments that began on build A
continue on it (but one that started on B cannot go back to A: A's code has no first step);
and the top-up records that memo *before* it opens, unpatched: a change no running top-up could
replay, which is fine because top-ups are pinned and finish on the build they began on.

Build C: the payment's new step unpatched: the replay gate must refuse it.

`Retired` stands for a saga a later build drops (as saga v1 was): while one of its auto-upgrading
runs is open, no build without it may become current.

(Only workflow code here: the sandbox imports this module.)
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from contracts.payment import PaymentInput, PaymentState
    from contracts.transfers import TransferInput, TransferState
    from workflows.payment import PaymentWorkflow
    from workflows.top_up import TopUpWorkflow

RECEIPT = "finished_on"
STARTED = "started_on"


@workflow.defn(name="Payment", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class PaymentB(PaymentWorkflow):
    @workflow.run
    async def run(self, payment: PaymentInput) -> PaymentState:
        if workflow.patched("record-the-starting-build"):  # payments that start on B
            workflow.upsert_memo({STARTED: "B"})
        state = await super().run(payment)
        if workflow.patched("record-the-finishing-build"):  # and those that finish on it
            workflow.upsert_memo({RECEIPT: "B"})
        return state


@workflow.defn(name="Payment", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class PaymentC(PaymentWorkflow):
    @workflow.run
    async def run(self, payment: PaymentInput) -> PaymentState:
        workflow.upsert_memo({RECEIPT: "C"})  # unpatched, before anything: no history matches
        return await super().run(payment)


@workflow.defn(name="TopUp", versioning_behavior=VersioningBehavior.PINNED)
class TopUpB(TopUpWorkflow):
    @workflow.run
    async def run(self, top_up: TransferInput) -> TransferState:
        workflow.upsert_memo({RECEIPT: "B"})  # unpatched: pinned runs never replay it
        return await super().run(top_up)


@workflow.defn(name="Retired", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class Retired:
    def __init__(self) -> None:
        self._done = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self._done)
        return "done"

    @workflow.signal
    def finish(self) -> None:
        self._done = True
