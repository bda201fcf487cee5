"""The dispute saga's contract. Amounts from the processor stay decimal strings as it sent them
(the activities turn them into minor units against the currency); what the ledger moved is in
minor units."""

from __future__ import annotations

from dataclasses import dataclass, field

OPEN = ("needs_response", "under_review")
CLOSED = ("won", "lost")


@dataclass
class DisputeFacts:
    """The processor's dispute as one of its events carried it."""

    processor_dispute_id: str
    charge_id: str
    owner: str  # the payment or top-up the charge was for, as the processor knows it
    amount: str
    fee: str
    currency: str
    reason: str
    status: str  # needs_response | under_review | won | lost
    evidence_due_by: str  # RFC 3339


@dataclass
class DisputeEvent:
    """`dispute.created` or `dispute.closed`, carried in by the `processor_event` Update whose
    id is the event's id."""

    event_id: str
    type: str
    facts: DisputeFacts


@dataclass
class DisputeStart:
    dispute_id: str
    connector: str
    processor_dispute_id: str


@dataclass
class OpenDispute:
    dispute_id: str
    connector: str
    facts: DisputeFacts


@dataclass
class DisputeOpened:
    top_up_id: str | None
    unexpected: bool  # not a top-up's charge: recorded for an operator, no money moved


@dataclass
class Evidence:
    text: str
    files: list[str] = field(default_factory=list)


@dataclass
class DisputeStep:
    """One transition of a dispute, by its saga: evidence forwarded, or the decision."""

    dispute_id: str
    connector: str
    processor_dispute_id: str
    status: str  # under_review | won | lost
    reason: str | None = None  # why: the network's decision, accepted, no_response
    evidence: Evidence | None = None
    reminder_hours: int | None = None
