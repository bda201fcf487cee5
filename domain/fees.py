"""Fees and refund shares, in integer minor units, rounded half-up."""

from __future__ import annotations

BPS = 10_000


def _div_half_up(numerator: int, denominator: int) -> int:
    """Round numerator/denominator half-up, for non-negative integers."""
    return (2 * numerator + denominator) // (2 * denominator)


def fee_for(amount: int, fee_bps: int) -> int:
    """The fee on `amount` (minor units) at `fee_bps` basis points: 2% of 100.50 USD is 2.01."""
    if amount < 0 or fee_bps < 0:
        raise ValueError("amount and fee must be non-negative")
    return _div_half_up(amount * fee_bps, BPS)


def refund_fee_share(fee: int, amount: int, refunded_before: int, refund: int) -> int:
    """The fee returned with a refund: the refunded share of the fee, rounded half-up.

    Computed on the running total, so a series of partial refunds returns the whole fee exactly
    once the whole amount is refunded, and never more.
    """
    if not 0 < refund <= amount - refunded_before:
        raise ValueError("refund exceeds the refundable amount")
    after = _div_half_up(fee * (refunded_before + refund), amount)
    before = _div_half_up(fee * refunded_before, amount)
    return after - before
