"""How a dispute in the processor's report compares with the ledger."""

from __future__ import annotations

from domain.reconciliation import Finding, Heal, LedgerDispute, classify_dispute

RECORD = {"id": "dp_1", "object": "dispute", "amount": "40.80", "currency": "USD",
          "status": "needs_response"}


def test_a_dispute_the_ledger_never_recorded_is_replayed_from_the_report() -> None:
    verdict = classify_dispute(RECORD, None)
    assert (verdict.finding, verdict.heal) == (Finding.UNRECORDED_DISPUTE, Heal.REPLAY)


def test_a_recorded_dispute_matches_or_differs_in_amount() -> None:
    known = LedgerDispute("dsp_1", "needs_response", 4080, "USD")
    assert classify_dispute(RECORD, known).finding == Finding.MATCHED
    assert classify_dispute(RECORD | {"amount": "40.00"}, known).finding == Finding.AMOUNT_MISMATCH
    assert classify_dispute(RECORD | {"currency": "EUR"}, known).finding == Finding.CURRENCY_MISMATCH


def test_a_decision_the_ledger_still_waits_for_is_replayed_in_flight() -> None:
    known = LedgerDispute("dsp_1", "under_review", 4080, "USD")
    verdict = classify_dispute(RECORD | {"status": "won"}, known)
    assert (verdict.finding, verdict.heal) == (Finding.IN_FLIGHT, Heal.REPLAY)
    decided = LedgerDispute("dsp_1", "won", 4080, "USD")
    assert classify_dispute(RECORD | {"status": "won"}, decided).finding == Finding.MATCHED
