"""The dispute saga (workflow type `Dispute`, id `dsp_…` from the connector and the processor's
dispute id): a chargeback on a card top-up, weeks long, its money exact throughout.

    the processor's first event (created, or closed when it overtook it)
        -> open: the disputed amount leaves the wallet, the fee is a loss     needs_response
    wait for the merchant until evidence_due_by (reminders 72 h and 24 h before):
        evidence (Update)  -> forwarded to the processor                      under_review
        accept (Update)    -> told to the processor                           lost
        nothing by the deadline                                               lost (no_response)
    wait for the network's decision (`dispute.closed`; looked up weekly in case it is lost):
        won  -> the money goes back into the wallet                           won
        lost -> it stays gone                                                 lost

A dispute on a charge that is not a top-up's is recorded `unexpected` for an operator; the saga
ends there. Events arrive by the `processor_event` Update, whose id is the processor's event id
(Temporal applies each once); a decision that came before the merchant answered ends the wait.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts.dispute import (
        CLOSED,
        DisputeEvent,
        DisputeFacts,
        DisputeOpened,
        DisputeStart,
        DisputeStep,
        Evidence,
        OpenDispute,
    )
    from workflows.search import DISPUTE_STATUS, DISPUTE_TOP_UP_ID

DISPUTE_NOT_OPEN = "DISPUTE_NOT_OPEN"
AWAITING = ("pending", "needs_response")  # the merchant may still answer
REMINDERS = (72, 24)  # hours before evidence_due_by
LOOKUP_EVERY = timedelta(days=7)
LEDGER = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=60),
                     non_retryable_error_types=[DISPUTE_NOT_OPEN])
PROCESSOR = RetryPolicy(initial_interval=timedelta(seconds=1),
                        maximum_interval=timedelta(minutes=10),
                        non_retryable_error_types=[DISPUTE_NOT_OPEN])


def _when(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


# Auto-upgrade: a dispute lives for months, longer than any build; changes go behind patches.
@workflow.defn(name="Dispute", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class DisputeWorkflow:
    def __init__(self) -> None:
        self._facts: DisputeFacts | None = None
        self._decided: str | None = None  # the network's decision, from its event or a lookup
        self._evidence: Evidence | None = None
        self._accepted = False
        self._status = "pending"

    @workflow.update
    async def processor_event(self, event: DisputeEvent) -> str:
        """`applied` when the event told the saga something new; `ignored` otherwise."""
        first = self._facts is None
        if first:
            self._facts = event.facts
        if event.type == "dispute.closed" and event.facts.status in CLOSED:
            if self._decided is None:
                self._decided = event.facts.status
                return "applied"
            return f"ignored: decided {self._decided} already"
        return "applied" if first else "ignored: the dispute is known already"

    @workflow.update
    async def submit_evidence(self, evidence: Evidence) -> str:
        """The merchant's evidence, once, while the dispute needs a response: the status after
        the processor took it."""
        self._evidence = evidence
        await workflow.wait_condition(lambda: self._status not in AWAITING)
        return self._status

    @submit_evidence.validator
    def _evidence_allowed(self, evidence: Evidence) -> None:
        self._must_be_open("evidence")
        if not evidence.text.strip():
            raise ApplicationError("the evidence has no text", type="INVALID_EVIDENCE")

    @workflow.update
    async def accept(self) -> str:
        """The merchant concedes: lost at once."""
        self._accepted = True
        await workflow.wait_condition(lambda: self._status not in AWAITING)
        return self._status

    @accept.validator
    def _accept_allowed(self) -> None:
        self._must_be_open("an acceptance")

    def _must_be_open(self, what: str) -> None:
        why = (f"it is {self._status}" if self._status not in AWAITING
               else "evidence was submitted already" if self._evidence is not None
               else "it was accepted already" if self._accepted
               else f"the network decided it {self._decided}" if self._decided is not None
               else None)
        if why is not None:
            raise ApplicationError(f"the dispute takes no {what}: {why}", type=DISPUTE_NOT_OPEN)

    @workflow.query
    def status(self) -> str:
        return self._status

    @workflow.run
    async def run(self, start: DisputeStart) -> str:
        await workflow.wait_condition(lambda: self._facts is not None,
                                      timeout_summary="waiting for the processor's event")
        assert self._facts is not None
        facts = self._facts
        opened: DisputeOpened = await workflow.execute_activity(
            "open_dispute", OpenDispute(start.dispute_id, start.connector, facts),
            result_type=DisputeOpened, start_to_close_timeout=timedelta(seconds=30),
            retry_policy=LEDGER,
            summary=f"{facts.reason} dispute of {facts.amount} {facts.currency} on "
                    f"{facts.owner}: the money leaves the wallet, the fee is a loss")
        if opened.unexpected:
            self._set_status("needs_response", None)
            return "unexpected: not a top-up's charge; recorded for an operator"
        self._set_status("needs_response", opened.top_up_id)

        step = DisputeStep(start.dispute_id, start.connector, start.processor_dispute_id, "")
        await self._await_response(step, _when(facts.evidence_due_by))
        if self._status == "needs_response" and self._decided is None:  # nothing by the deadline
            return await self._decide(step, "lost", "no_response")
        if self._status in CLOSED:
            return self._status
        while self._decided is None:
            try:
                await workflow.wait_condition(
                    lambda: self._decided is not None, timeout=LOOKUP_EVERY,
                    timeout_summary="waiting for the network's decision (looked up weekly)")
            except TimeoutError:
                found: str | None = await workflow.execute_activity(
                    "look_up_dispute", step, result_type=str,
                    start_to_close_timeout=timedelta(seconds=30), retry_policy=PROCESSOR,
                    summary="the processor's dispute, in case its decision was lost")
                if self._decided is None and found in CLOSED:
                    self._decided = found
        return await self._decide(step, self._decided, "the network's decision")

    async def _await_response(self, step: DisputeStep, due: datetime) -> None:
        """Until evidence, an acceptance, a decision or the deadline; reminders on the way."""
        for moment, hours in [*((due - timedelta(hours=h), h) for h in REMINDERS), (due, None)]:
            wait = moment - workflow.now()
            if wait > timedelta(0):
                try:
                    await workflow.wait_condition(
                        lambda: self._evidence is not None or self._accepted
                        or self._decided is not None, timeout=wait,
                        timeout_summary=f"waiting for evidence until {due.isoformat()}")
                except TimeoutError:
                    if hours is not None:
                        step.reminder_hours = hours
                        await workflow.execute_activity(
                            "remind_dispute", step, start_to_close_timeout=timedelta(seconds=30),
                            retry_policy=LEDGER, summary=f"evidence due in {hours} h")
                    continue
            break
        if self._accepted:
            try:
                await self._decide(step, "lost", "accepted")
            except ActivityError:  # the processor decided first: its decision follows
                self._set_status("under_review", None)
        elif self._evidence is not None and self._decided is None:
            step.evidence = self._evidence
            try:
                status: str = await workflow.execute_activity(
                    "submit_dispute_evidence", step, result_type=str,
                    start_to_close_timeout=timedelta(seconds=30), retry_policy=PROCESSOR,
                    summary="the merchant's evidence, to the processor")
            except ActivityError:  # the processor no longer takes it: its decision follows
                status = "under_review"
            self._set_status(status, None)
        elif self._decided is not None:
            self._set_status("under_review", None)

    async def _decide(self, step: DisputeStep, outcome: str, reason: str) -> str:
        step.status, step.reason = outcome, reason
        status: str = await workflow.execute_activity(
            "decide_dispute", step, result_type=str, start_to_close_timeout=timedelta(seconds=30),
            retry_policy=LEDGER,
            summary=f"{outcome} ({reason}): "
                    + ("the money goes back to the wallet" if outcome == "won"
                       else "the money stays gone"))
        self._set_status(status, None)
        return status

    def _set_status(self, status: str, top_up_id: str | None) -> None:
        self._status = status
        attributes = [DISPUTE_STATUS.value_set(status)]
        if top_up_id is not None:
            attributes.append(DISPUTE_TOP_UP_ID.value_set(top_up_id))
        workflow.upsert_search_attributes(attributes)
