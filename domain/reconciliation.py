"""Reconciliation's rules: how one gateway record compares with the ledger, and what may be healed.

Pure functions over what the activity read from both sides, so every class is unit-tested.

    matched                   the ledger has exactly what the gateway did
    reversed                  a charge an earlier heal refunded in full at the gateway
    in_flight                 the payment (or refund) is still being worked on: re-checked next run
    charged_not_captured      money taken at the gateway, no ledger debit            critical
    captured_without_charge   a ledger debit the gateway has no charge for           critical
    amount_mismatch           the gateway charged another amount than the ledger     critical
    currency_mismatch         ... or in another currency                             critical
    refund_mismatch           a gateway refund the ledger has not (or not so) posted critical
    unknown_charge            a charge with no payment (or top-up) at all            critical
    charged_not_credited      a top-up's charge succeeded, the wallet never credited critical
    unknown_payout            a payout made with no withdrawal                       critical
    paid_not_debited          a payout made for a withdrawal the ledger failed       critical
    unmatched_processor_event a processor's signed event about nothing paysaga knows  warning
    unrecorded_dispute        a dispute in the report that the ledger never recorded critical

Healing, declared: a charge the ledger never captured while its hold is still active is captured;
a charge whose payment released its hold is refunded at the gateway (or posted to the wallet,
RECONCILIATION_RELEASED_CHARGE=post); everything else is an open exception for an operator.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import InvalidOperation
from enum import StrEnum

from domain.money import MoneyError, to_minor


class Finding(StrEnum):
    MATCHED = "matched"
    REVERSED = "reversed"
    IN_FLIGHT = "in_flight"
    CHARGED_NOT_CAPTURED = "charged_not_captured"
    CAPTURED_WITHOUT_CHARGE = "captured_without_charge"
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    REFUND_MISMATCH = "refund_mismatch"
    UNKNOWN_CHARGE = "unknown_charge"
    CHARGED_NOT_CREDITED = "charged_not_credited"
    UNKNOWN_PAYOUT = "unknown_payout"
    PAID_NOT_DEBITED = "paid_not_debited"
    UNMATCHED_PROCESSOR_EVENT = "unmatched_processor_event"
    UNRECORDED_DISPUTE = "unrecorded_dispute"


class Heal(StrEnum):
    CAPTURE = "capture"   # capture the still-active hold: the ledger catches up with the charge
    REFUND = "refund"     # give the money back at the gateway (its own idempotency key)
    POST = "post"         # debit the wallet for the charge (the payment becomes completed)
    REPLAY = "replay"     # a dispute's lost event, replayed into the inbox from the report
    NONE = "none"         # an open exception: an operator decides


# What is not an exception: counted, never reported line by line.
QUIET = frozenset({Finding.MATCHED, Finding.REVERSED, Finding.IN_FLIGHT})
# Every class that is reported has money differing between the outside truth and the ledger, but
# an event the inbox could not match: a message, not money (its charge, if it took any, is in the
# report and found there as `unknown_charge`).
SEVERITY = {f: "critical" for f in Finding if f not in QUIET} | {
    Finding.UNMATCHED_PROCESSOR_EVENT: "warning"}
IN_FLIGHT_STATUSES = frozenset({"pending", "reserved", "processing", "requires_capture",
                                "requires_action"})
HEAL_KEY_PREFIX = "recon:"


def critical(counts: dict[str, int]) -> int:
    """How many of a run's records (counts by class) are critical findings."""
    return sum(n for k, n in counts.items() if SEVERITY.get(Finding(k)) == "critical")


def heal_key(charge_id: str) -> str:
    """The idempotency key of a heal's gateway refund: one per charge, whichever run heals it."""
    return f"{HEAL_KEY_PREFIX}{charge_id}"


_KEY = re.compile(r"^(pay_[a-z0-9_]+):a(\d+)(?::([a-z][a-z0-9_-]*))?$")


def parse_gateway_key(key: str) -> tuple[str, int] | None:
    """(payment id, attempt) of a charge key `{payment}:a{attempt}[:{connector}]`, or None for a
    foreign key."""
    found = _KEY.fullmatch(key)
    return None if found is None else (found.group(1), int(found.group(2)))


@dataclass(frozen=True)
class LedgerPayment:
    """What the ledger knows of the payment a charge key names."""

    id: str
    tenant_id: str
    status: str
    attempt: int
    amount: int
    currency: str
    captured: bool            # the charge's attempt was captured with this charge
    hold: str | None          # the attempt's hold: active, captured, released (None: none)
    running: bool | None = None  # its workflow is running (asked only when it matters)


@dataclass(frozen=True)
class Verdict:
    finding: Finding
    heal: Heal = Heal.NONE
    detail: str = ""


def _minor(amount: object, currency: str) -> int | None:
    try:
        return to_minor(str(amount), currency)
    except (MoneyError, InvalidOperation, ValueError):
        return None


def classify_charge(record: dict[str, object], payment: LedgerPayment | None, *,
                    reversed_by_heal: bool, released_charge_heal: Heal) -> Verdict:
    """One succeeded charge of the gateway's report against the ledger."""
    if payment is None:
        return Verdict(Finding.UNKNOWN_CHARGE, detail="no payment has this idempotency key")
    parsed = parse_gateway_key(str(record["idempotency_key"]))
    attempt = parsed[1] if parsed else -1
    currency = str(record.get("currency"))
    if currency != payment.currency:
        return Verdict(Finding.CURRENCY_MISMATCH,
                       detail=f"gateway {currency}, ledger {payment.currency}")
    if payment.status == "requires_capture" and payment.running is not False \
            and payment.attempt == attempt:
        # a manual payment's capture in flight (possibly of less than the ledger's authorized
        # amount): its workflow posts it
        return Verdict(Finding.IN_FLIGHT)
    minor = _minor(record.get("amount"), payment.currency)
    if minor != payment.amount:
        return Verdict(Finding.AMOUNT_MISMATCH,
                       detail=f"gateway {record.get('amount')}, ledger {payment.amount} minor units")
    if payment.captured:
        return Verdict(Finding.MATCHED)
    if reversed_by_heal:
        return Verdict(Finding.REVERSED)
    if (payment.status in IN_FLIGHT_STATUSES and payment.attempt == attempt
            and payment.running is not False):
        return Verdict(Finding.IN_FLIGHT)
    if payment.hold == "active":
        return Verdict(Finding.CHARGED_NOT_CAPTURED, Heal.CAPTURE,
                       "charged while its hold is still active, but never captured")
    return Verdict(Finding.CHARGED_NOT_CAPTURED, released_charge_heal,
                   f"charged, but the payment ({payment.status}) released its hold")


@dataclass(frozen=True)
class LedgerTransfer:
    """What the ledger knows of the top-up or withdrawal a charge's or payout's key names."""

    id: str
    kind: str  # top_up | withdrawal
    tenant_id: str
    status: str  # processing | succeeded | failed
    amount: int
    fee: int
    currency: str
    gateway_reference: str | None


def transfer_of(record: Mapping[str, object]) -> str | None:
    """The top-up or withdrawal a charge or payout record belongs to, or None (a payment's)."""
    owner = str(record.get("payment_id") or "")
    return owner if owner.startswith(("tup_", "wdr_")) else None


def classify_transfer(record: Mapping[str, object], transfer: LedgerTransfer | None) -> Verdict:
    """A top-up's charge (amount + fee) or a withdrawal's payout (the amount) against the ledger.
    Nothing is healed by itself: money in or out that the ledger disagrees with is an operator's."""
    payout = record.get("object") == "payout"
    if transfer is None:
        return Verdict(Finding.UNKNOWN_PAYOUT if payout else Finding.UNKNOWN_CHARGE,
                       detail=f"no {'withdrawal' if payout else 'top-up'} has this key")
    currency = str(record.get("currency"))
    if currency != transfer.currency:
        return Verdict(Finding.CURRENCY_MISMATCH,
                       detail=f"gateway {currency}, ledger {transfer.currency}")
    expected = transfer.amount if payout else transfer.amount + transfer.fee
    if _minor(record.get("amount"), transfer.currency) != expected:
        return Verdict(Finding.AMOUNT_MISMATCH,
                       detail=f"gateway {record.get('amount')}, ledger {expected} minor units")
    if transfer.status == "processing":
        return Verdict(Finding.IN_FLIGHT)
    if transfer.status == "succeeded":
        return Verdict(Finding.MATCHED)
    if payout:
        return Verdict(Finding.PAID_NOT_DEBITED,
                       detail="paid out at the gateway, but the withdrawal failed and its hold "
                              "was released")
    return Verdict(Finding.CHARGED_NOT_CREDITED,
                   detail="charged at the gateway, but the top-up failed and credited nothing")


def classify_refund(record: dict[str, object], ledger_refund: tuple[str, int] | None, *,
                    heal_refund: bool, currency: str | None) -> Verdict:
    """One succeeded refund of the gateway's report; `ledger_refund` is (status, amount) of the
    refund with that id, `heal_refund` whether the key is a heal of ours."""
    if heal_refund:
        return Verdict(Finding.MATCHED)
    if ledger_refund is None:
        return Verdict(Finding.REFUND_MISMATCH, detail="the ledger has no refund with this id")
    status, amount = ledger_refund
    if status == "pending":
        return Verdict(Finding.IN_FLIGHT)
    if status != "succeeded":
        return Verdict(Finding.REFUND_MISMATCH, detail=f"refunded at the gateway, {status} in the ledger")
    minor = _minor(record.get("amount"), currency or str(record.get("currency")))
    if minor != amount:
        return Verdict(Finding.REFUND_MISMATCH,
                       detail=f"gateway {record.get('amount')}, ledger {amount} minor units")
    return Verdict(Finding.MATCHED)


@dataclass(frozen=True)
class LedgerDispute:
    """What the ledger knows of a dispute the processor's report lists."""

    id: str
    status: str  # needs_response | under_review | won | lost
    amount: int
    currency: str


def classify_dispute(record: Mapping[str, object], dispute: LedgerDispute | None) -> Verdict:
    """A dispute in the processor's report against the ledger. One the ledger never recorded (its
    event lost) is replayed into the inbox from the report, which opens its saga: a critical
    finding, healed so; one the processor decided while the ledger still waits is replayed too,
    and counted in flight."""
    if dispute is None:
        return Verdict(Finding.UNRECORDED_DISPUTE, Heal.REPLAY,
                       "a dispute the ledger never recorded: its saga is opened from the report")
    currency = str(record.get("currency"))
    if currency != dispute.currency:
        return Verdict(Finding.CURRENCY_MISMATCH,
                       detail=f"processor {currency}, ledger {dispute.currency}")
    if _minor(record.get("amount"), dispute.currency) != dispute.amount:
        return Verdict(Finding.AMOUNT_MISMATCH,
                       detail=f"processor {record.get('amount')}, ledger {dispute.amount} minor "
                              "units")
    decided = str(record.get("status"))
    if decided in ("won", "lost") and dispute.status != decided:
        return Verdict(Finding.IN_FLIGHT, Heal.REPLAY, f"the processor decided {decided}")
    return Verdict(Finding.MATCHED)


def released_charge_heal(setting: str) -> Heal:
    """RECONCILIATION_RELEASED_CHARGE: `refund` (default) or `post`."""
    return Heal.POST if setting == "post" else Heal.REFUND

