"""What the top-up and the withdrawal sagas share (workflow code): their state, the `outcome`
update `Prefer: wait` answers from, the `state` query, and the closing lines: the settled state,
its search attributes, every waiting update answered, then complete or fail with the code."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts.transfers import SettleTransfer, TransferState
    from workflows.search import PAYMENT_FAILURE_CODE, TRANSFER_STATUS


class TransferSaga:
    def __init__(self) -> None:
        self._state: TransferState | None = None

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
