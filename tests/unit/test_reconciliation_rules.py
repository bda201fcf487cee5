"""How one gateway record compares with the ledger: every class, and the declared heals."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from domain.reconciliation import (
    QUIET,
    SEVERITY,
    Finding,
    Heal,
    LedgerPayment,
    classify_charge,
    classify_refund,
    critical,
    parse_gateway_key,
)


def charge(**over: Any) -> dict[str, Any]:
    return {"object": "charge", "id": "ch_1", "idempotency_key": "pay_abc:a1", "amount": "10.00",
            "currency": "USD", "status": "succeeded", **over}


def payment(**over: Any) -> LedgerPayment:
    base: dict[str, Any] = {"id": "pay_abc", "tenant_id": "t", "status": "completed", "attempt": 1,
                            "amount": 1000, "currency": "USD", "captured": True, "hold": "captured"}
    return LedgerPayment(**{**base, **over})


def verdict(record: dict[str, Any], p: LedgerPayment | None, *, reversed_: bool = False,
            released: Heal = Heal.REFUND) -> tuple[Finding, Heal]:
    v = classify_charge(record, p, reversed_by_heal=reversed_, released_charge_heal=released)
    return v.finding, v.heal


@pytest.mark.parametrize(("record", "ledger", "expected"), [
    (charge(), payment(), (Finding.MATCHED, Heal.NONE)),
    (charge(), None, (Finding.UNKNOWN_CHARGE, Heal.NONE)),
    (charge(amount="10.01"), payment(), (Finding.AMOUNT_MISMATCH, Heal.NONE)),
    (charge(amount="ten"), payment(), (Finding.AMOUNT_MISMATCH, Heal.NONE)),
    (charge(currency="EUR"), payment(), (Finding.CURRENCY_MISMATCH, Heal.NONE)),
    (charge(), payment(status="processing", captured=False, hold="active", running=True),
     (Finding.IN_FLIGHT, Heal.NONE)),
    (charge(), payment(status="processing", captured=False, hold="active", running=False),
     (Finding.CHARGED_NOT_CAPTURED, Heal.CAPTURE)),
    (charge(), payment(status="failed", captured=False, hold="released"),
     (Finding.CHARGED_NOT_CAPTURED, Heal.REFUND)),
    # manual capture: a capture (of less) in flight while its workflow runs; an authorization
    # captured at the gateway after its payment was voided or expired is money to give back; a
    # capture the ledger never recorded while the workflow is gone is an operator's (amounts)
    (charge(amount="6.00"), payment(status="requires_capture", captured=False, hold="active",
                                    running=True), (Finding.IN_FLIGHT, Heal.NONE)),
    (charge(), payment(status="expired", captured=False, hold="released"),
     (Finding.CHARGED_NOT_CAPTURED, Heal.REFUND)),
    (charge(), payment(status="canceled", captured=False, hold="released"),
     (Finding.CHARGED_NOT_CAPTURED, Heal.REFUND)),
    (charge(amount="6.00"), payment(status="requires_capture", captured=False, hold="active",
                                    running=False), (Finding.AMOUNT_MISMATCH, Heal.NONE)),
    # an older attempt charged late while a newer one is in flight: not that attempt's flight
    (charge(idempotency_key="pay_abc:a0"),
     payment(status="processing", attempt=1, captured=False, hold="released", running=True),
     (Finding.CHARGED_NOT_CAPTURED, Heal.REFUND)),
])
def test_a_charge_is_classified(record: dict[str, Any], ledger: LedgerPayment | None,
                                expected: tuple[Finding, Heal]) -> None:
    assert verdict(record, ledger) == expected


def test_a_released_charge_is_posted_when_so_declared_and_a_healed_one_is_reversed() -> None:
    released = payment(status="exhausted", captured=False, hold="released")
    assert verdict(charge(), released, released=Heal.POST) == (Finding.CHARGED_NOT_CAPTURED,
                                                               Heal.POST)
    assert verdict(charge(), released, reversed_=True) == (Finding.REVERSED, Heal.NONE)


@pytest.mark.parametrize(("ledger", "heal", "expected"), [
    (("succeeded", 500), False, Finding.MATCHED),
    (("succeeded", 400), False, Finding.REFUND_MISMATCH),
    (("pending", 500), False, Finding.IN_FLIGHT),
    (("failed", 500), False, Finding.REFUND_MISMATCH),
    (None, False, Finding.REFUND_MISMATCH),
    (None, True, Finding.MATCHED),
])
def test_a_refund_is_classified(ledger: tuple[str, int] | None, heal: bool,
                                expected: Finding) -> None:
    record: dict[str, object] = {"object": "refund", "idempotency_key": "rfd_1", "amount": "5.00",
                                 "currency": "USD"}
    assert classify_refund(record, ledger, heal_refund=heal, currency="USD").finding == expected


def test_only_paysaga_charge_keys_name_a_payment() -> None:
    assert parse_gateway_key("pay_abc:a12") == ("pay_abc", 12)
    assert parse_gateway_key("foreign-1") is None
    assert parse_gateway_key("pay_abc:ax") is None
    assert parse_gateway_key("ord_1:a0") is None


def test_money_in_and_out_against_the_ledger() -> None:
    from domain.reconciliation import LedgerTransfer, classify_transfer, transfer_of

    top_up = LedgerTransfer("tup_1", "top_up", "t", "succeeded", 4000, 80, "USD", "ch_1")
    charged = {"object": "charge", "payment_id": "tup_1", "amount": "40.80", "currency": "USD",
               "idempotency_key": "tup_1:a0:primary", "id": "ch_1"}
    assert transfer_of(charged) == "tup_1"
    assert transfer_of({"payment_id": "pay_1"}) is None
    assert classify_transfer(charged, top_up).finding == Finding.MATCHED
    assert classify_transfer({**charged, "amount": "40.00"}, top_up).finding == \
        Finding.AMOUNT_MISMATCH  # a top-up is charged amount + fee
    assert classify_transfer(charged, replace(top_up, status="processing")).finding == \
        Finding.IN_FLIGHT
    assert classify_transfer(charged, replace(top_up, status="failed")).finding == \
        Finding.CHARGED_NOT_CREDITED
    assert classify_transfer(charged, None).finding == Finding.UNKNOWN_CHARGE

    withdrawal = LedgerTransfer("wdr_1", "withdrawal", "t", "succeeded", 3000, 60, "USD", "po_1")
    paid = {"object": "payout", "payment_id": "wdr_1", "amount": "30.00", "currency": "USD",
            "idempotency_key": "wdr_1:a0:primary", "id": "po_1"}
    assert classify_transfer(paid, withdrawal).finding == Finding.MATCHED  # the amount, no fee
    assert classify_transfer({**paid, "currency": "EUR"}, withdrawal).finding == \
        Finding.CURRENCY_MISMATCH
    assert classify_transfer(paid, replace(withdrawal, status="failed")).finding == \
        Finding.PAID_NOT_DEBITED
    assert classify_transfer(paid, None).finding == Finding.UNKNOWN_PAYOUT
    assert all(v.heal == Heal.NONE for v in (classify_transfer(paid, None),
                                              classify_transfer(charged, None)))


def test_an_unmatched_processor_event_is_reported_but_is_no_critical_finding() -> None:
    counts = {"matched": 4, "unmatched_processor_event": 3, "unknown_charge": 1}
    assert critical(counts) == 1
    assert SEVERITY[Finding.UNMATCHED_PROCESSOR_EVENT] == "warning"
    assert Finding.UNMATCHED_PROCESSOR_EVENT not in QUIET
