"""Properties of money parsing, fees, refund shares and fingerprints, over generated inputs."""

from __future__ import annotations

import random
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from domain.fees import fee_for, refund_fee_share
from domain.fingerprint import fingerprint
from domain.money import currency_exponent, to_major, to_minor

CURRENCIES = st.sampled_from(["USD", "EUR", "JPY", "KWD", "MXN", "CLF", "BHD", "KRW"])
MINOR = st.integers(min_value=1, max_value=10**15)


@given(MINOR, CURRENCIES)
def test_formatting_and_parsing_round_trip(minor: int, currency: str) -> None:
    text = to_major(minor, currency)
    assert to_minor(text, currency) == minor
    assert to_minor(Decimal(text), currency) == minor
    exponent = currency_exponent(currency)
    assert ("." in text) == (exponent > 0)
    if exponent:
        assert len(text.split(".")[1]) == exponent


@given(MINOR, CURRENCIES)
def test_one_more_decimal_place_than_allowed_is_refused(minor: int, currency: str) -> None:
    text = to_major(minor, currency)
    finer = (text if "." in text else text + ".") + "1"
    try:
        to_minor(finer, currency)
    except ValueError:
        return
    raise AssertionError(f"{finer} {currency} was accepted")


@given(st.integers(min_value=0, max_value=10**15), st.integers(min_value=0, max_value=10_000))
def test_fee_is_the_nearest_minor_unit_rounding_half_up(amount: int, bps: int) -> None:
    fee = fee_for(amount, bps)
    exact = Decimal(amount) * bps / 10_000
    assert abs(Decimal(fee) - exact) <= Decimal("0.5")
    if exact - int(exact) == Decimal("0.5"):
        assert fee == int(exact) + 1


@given(st.integers(min_value=1, max_value=10**12), st.integers(min_value=0, max_value=10_000),
       st.randoms(use_true_random=False))
def test_refunds_in_any_split_return_exactly_the_fee(amount: int, bps: int,
                                                      rng: random.Random) -> None:
    fee = fee_for(amount, bps)
    refunded, returned = 0, 0
    while refunded < amount:
        part = rng.randint(1, amount - refunded)
        share = refund_fee_share(fee, amount, refunded, part)
        assert share >= 0
        returned += share
        refunded += part
        assert returned <= fee
    assert returned == fee


@given(st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5)),
                       max_size=6))
def test_fingerprint_ignores_key_order(payload: dict[str, object]) -> None:
    shuffled = dict(reversed(list(payload.items())))
    assert fingerprint(payload) == fingerprint(shuffled)
