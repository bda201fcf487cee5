"""Outcomes that arrive later (workflow code), shared by the payment and the top-up sagas: a
charge the processor answered `processing` (a bank debit, an asynchronous card) is settled by the
processor's signed event, carried in by the `processor_event` Update (its id is the event's id:
Temporal applies it once), or, when no event comes, by the saga asking the processor itself:
first after PROCESSOR_SYNC_FIRST_SECONDS, then after PROCESSOR_SYNC_INTERVAL_SECONDS, the interval
doubling from there up to SYNC_INTERVAL_CAP (6 h), until the deadline: a 14-day bank debit is
about 60 lookups, not 4,000 (a run's history stays far below Temporal's 51,200 events).
Whichever says first decides; the other is then a no-op. Nothing polls meanwhile: the saga waits
on a durable timer and a message.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.saga import Charge, ChargeRequest, ConnectorPlan, ProcessorEvent, SagaPolicy
    from workflows import charging

FINAL = ("succeeded", "declined")
SYNC_INTERVAL_CAP = timedelta(hours=6)


class AwaitsProcessor:
    def __init__(self) -> None:
        self._awaiting: str | None = None  # the charge whose outcome the processor owes
        self._processor_said: Charge | None = None
        self._settled_by: str | None = None  # "event evt_…" or "sync"
        self._early: dict[str, ProcessorEvent] = {}  # events that came before the saga waited

    @workflow.update
    async def processor_event(self, event: ProcessorEvent) -> str:
        """The processor's event about a charge: `applied` when it settled the charge the saga
        waits for; `ignored` when late, repeated, or about another charge."""
        if event.status not in FINAL:
            return f"ignored: {event.status} settles nothing"
        if self._awaiting is None and self._processor_said is None and len(self._early) < 20:
            self._early[event.charge_id] = event  # it overtook the charge's own answer
            return "kept: the saga waits for it next"
        if event.charge_id != self._awaiting:
            return "ignored: no charge of this saga waits for it"
        if self._processor_said is not None:
            return f"ignored: {self._settled_by} settled it already"
        self._processor_said = Charge(event.status, event.charge_id, event.decline_code)
        self._settled_by = f"event {event.event_id}"
        return "applied"

    async def _await_processor(self, charge: Charge, req: ChargeRequest, policy: SagaPolicy,
                               plan: ConnectorPlan | None, deadline: datetime) -> Charge:
        """The charge's outcome once the processor's event or a sync says it; `expired` when
        neither did by the deadline and a last lookup finds it still unsettled."""
        self._awaiting = charge.gateway_reference
        early = self._early.pop(charge.gateway_reference or "", None)
        if early is not None:
            self._processor_said = Charge(early.status, early.charge_id, early.decline_code)
            self._settled_by = f"event {early.event_id}"
        first = timedelta(seconds=policy.processor_sync_first_seconds)
        every = timedelta(seconds=policy.processor_sync_interval_seconds)
        next_sync = workflow.now() + first
        while self._processor_said is None:
            until = min(next_sync, deadline)
            wait = until - workflow.now()
            if wait > timedelta(0):
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        lambda: self._processor_said is not None, timeout=wait,
                        timeout_summary=f"waiting for the processor's event or the next sync "
                                        f"at {until.isoformat()}")
            if self._processor_said is not None:
                break
            found = await charging.lookup(req, policy, plan)
            if found.status in FINAL and self._processor_said is None:
                self._processor_said = Charge(found.status, charge.gateway_reference,
                                              found.decline_code)
                self._settled_by = "sync"
            elif workflow.now() >= deadline:
                self._processor_said = Charge("expired")
                self._settled_by = "the deadline"
            next_sync += every
            every = min(every * 2, max(SYNC_INTERVAL_CAP, every))
        return self._processor_said
