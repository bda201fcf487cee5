"""What the top-up and the withdrawal sagas share (workflow code): their state, the opening step
and its deadline, how the gateway's answer settles them, the `outcome` update `Prefer: wait`
answers from, the `state` query, and the closing lines: the settled state, its search attributes,
every waiting update answered, then complete or fail with the code."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts.transfers import (
        Opened,
        OpenTransfer,
        SettleTransfer,
        TransferInput,
        TransferState,
    )
    from domain.status import FailureCode
    from workflows import steps
    from workflows.processor import AwaitsProcessor
    from workflows.search import PAYMENT_FAILURE_CODE, TRANSFER_STATUS


def settlement(t: TransferInput, status: str, connector: str | None, *,
               reference: str | None = None, decline_code: str | None = None,
               noun: str, nothing_done: str) -> SettleTransfer:
    """How the gateway's answer (`succeeded`, `declined`, else nothing done by the deadline)
    settles the transfer; the failure message is written from codes only."""
    if status == "succeeded":
        return SettleTransfer(t.transfer_id, t.tenant_id, True, reference, connector)
    if status == "declined":
        return SettleTransfer(t.transfer_id, t.tenant_id, False, connector=connector,
                              failure_code=FailureCode.GATEWAY_DECLINED,
                              failure_message=f"the gateway declined the {noun} ({decline_code})")
    return SettleTransfer(t.transfer_id, t.tenant_id, False, connector=connector,
                          failure_code=FailureCode.GATEWAY_UNAVAILABLE,
                          failure_message=f"the gateway could not be reached; nothing was "
                                          f"{nothing_done}")


class TransferSaga(AwaitsProcessor):
    def __init__(self) -> None:
        super().__init__()
        self._state: TransferState | None = None

    async def _open(self, t: TransferInput, step: str, summary: str) -> tuple[Opened, datetime]:
        """The saga's first step, and its deadline (the charge's or payout's, the hold's)."""
        self._state = TransferState(t.transfer_id, "processing")
        deadline = workflow.now() + timedelta(seconds=t.policy.hold_ttl_seconds)
        opened: Opened = await steps.ledger(
            t.policy, step, OpenTransfer(t, workflow.info().run_id, deadline.isoformat()), Opened,
            summary=summary)
        return opened, deadline

    async def _close(self, settle: SettleTransfer) -> TransferState:
        """The saga's end, once its ledger step has settled it."""
        self._state = TransferState(settle.transfer_id,
                                    "succeeded" if settle.succeeded else "failed",
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

    @workflow.update
    async def outcome(self) -> TransferState:
        """Returns once it has succeeded or failed (`Prefer: wait` answers from here)."""
        # (with Update-with-Start this handler runs before `run` has begun)
        await workflow.wait_condition(
            lambda: self._state is not None and self._state.status != "processing")
        return self.state()

    @workflow.query
    def state(self) -> TransferState:
        assert self._state is not None
        return self._state
