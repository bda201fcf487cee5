"""The refund saga (workflow type `Refund`): the gateway gives the money back, then the ledger
reverses the payment's share.

The API reserved the refund's amount on the payment in one conditional statement before starting
this workflow (so concurrent refunds can never exceed the payment), and recorded it `pending`.

    gateway refund (retried until the gateway answers) -> posted: the workflow completes
    the gateway refuses                                -> failed, the amount is refundable
                                                          again: the workflow fails
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts.refund import RefundPosted, RefundStep
    from contracts.saga import SagaPolicy
    from workflows import policies
    from workflows.search import REFUND_STATUS

REFUND_FAILED = "refund_failed"


# Pinned: a refund settles within its gateway retries, on the build it started on.
@workflow.defn(name="Refund", versioning_behavior=VersioningBehavior.PINNED)
class RefundWorkflow:
    @workflow.run
    async def run(self, refund: RefundStep, policy: SagaPolicy) -> RefundPosted:
        try:
            await workflow.execute_activity(
                "refund_gateway", refund, start_to_close_timeout=policies.gateway_timeout(policy),
                retry_policy=policies.lookup_retry(policy),
                summary=f"refund at the gateway, charge {refund.gateway_reference}")
        except ActivityError as err:
            cause = err.cause
            refund.failure_message = cause.message if isinstance(cause, ApplicationError) else str(err)
            await workflow.execute_local_activity(
                "fail_refund", refund, start_to_close_timeout=policies.ledger_timeout(),
                retry_policy=policies.ledger_retry(policy),
                summary="refused: the amount is refundable again")
            _status("failed")
            raise ApplicationError(refund.failure_message, type=REFUND_FAILED,
                                   non_retryable=True) from None
        posted: RefundPosted = await workflow.execute_local_activity(
            "settle_refund", refund, result_type=RefundPosted,
            start_to_close_timeout=policies.ledger_timeout(),
            retry_policy=policies.ledger_retry(policy),
            summary="credit the wallet with the amount and its fee share")
        _status("succeeded")
        return posted


def _status(status: str) -> None:
    """RefundStatus follows the refund (runs recorded before it existed replay unchanged)."""
    if workflow.patched("refund-status-search-attribute"):
        workflow.upsert_search_attributes([REFUND_STATUS.value_set(status)])
