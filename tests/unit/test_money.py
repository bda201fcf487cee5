from decimal import Decimal

import pytest

from domain.fees import fee_for, refund_fee_share
from domain.fingerprint import fingerprint
from domain.ids import gateway_key, is_valid_idempotency_key, payment_id
from domain.money import MoneyError, currency_exponent, to_major, to_minor


@pytest.mark.parametrize(("value", "currency", "minor"), [
    ("100.50", "USD", 10050), (Decimal("100.5"), "USD", 10050), (100, "USD", 10000),
    ("1000", "JPY", 1000), ("1.234", "KWD", 1234), ("0.01", "USD", 1),
    (Decimal("0.1000"), "USD", 10),
])
def test_amounts_parse_exactly_into_minor_units(value: object, currency: str, minor: int) -> None:
    assert to_minor(value, currency) == minor


@pytest.mark.parametrize(("value", "currency", "code"), [
    ("1.001", "USD", "INVALID_AMOUNT"), ("1.5", "JPY", "INVALID_AMOUNT"),
    ("0", "USD", "INVALID_AMOUNT"), ("-100", "USD", "INVALID_AMOUNT"),
    ("abc", "USD", "INVALID_AMOUNT"), ("NaN", "USD", "INVALID_AMOUNT"),
    ("Infinity", "USD", "INVALID_AMOUNT"), (100.5, "USD", "INVALID_AMOUNT"),
    (True, "USD", "INVALID_AMOUNT"), (" 1", "USD", "INVALID_AMOUNT"),
    ("10", "usd", "INVALID_CURRENCY"), ("10", "MEXICAN", "INVALID_CURRENCY"),
    ("10", "ABC", "INVALID_CURRENCY"), ("10", "XAU", "INVALID_CURRENCY"),
])
def test_bad_amounts_and_currencies_are_rejected_with_a_code(value: object, currency: str,
                                                             code: str) -> None:
    with pytest.raises(MoneyError) as err:
        to_minor(value, currency)
    assert err.value.code == code


def test_amount_above_the_maximum_is_rejected() -> None:
    with pytest.raises(MoneyError) as err:
        to_minor("1000000.01", "USD", maximum=Decimal("1000000"))
    assert err.value.code == "AMOUNT_TOO_LARGE"


def test_major_formatting_uses_the_currency_exponent() -> None:
    assert to_major(10050, "USD") == "100.50"
    assert to_major(5, "USD") == "0.05"
    assert to_major(1000, "JPY") == "1000"
    assert to_major(1234, "KWD") == "1.234"
    assert to_major(-201, "USD") == "-2.01"
    assert currency_exponent("MXN") == 2


def test_fee_is_two_percent_rounded_half_up() -> None:
    assert fee_for(10050, 200) == 201  # 2.01 on 100.50
    assert fee_for(25, 200) == 1  # 0.5 minor unit rounds up
    assert fee_for(24, 200) == 0  # 0.48 rounds down
    assert fee_for(0, 200) == 0


def test_partial_refunds_return_the_whole_fee_exactly_once() -> None:
    amount, fee = 10001, fee_for(10001, 200)
    returned, refunded = 0, 0
    for part in (3333, 3333, 3335):
        returned += refund_fee_share(fee, amount, refunded, part)
        refunded += part
    assert refunded == amount
    assert returned == fee
    with pytest.raises(ValueError, match="refundable"):
        refund_fee_share(fee, amount, amount, 1)


def test_fingerprint_ignores_key_order_and_number_formatting() -> None:
    a = fingerprint({"amount": 10050, "currency": "USD", "metadata": {"a": "1", "b": "2"}})
    b = fingerprint({"metadata": {"b": "2", "a": "1"}, "currency": "USD", "amount": 10050})
    c = fingerprint({"amount": 10051, "currency": "USD", "metadata": {"a": "1", "b": "2"}})
    assert a == b
    assert a != c
    assert fingerprint({"x": Decimal("1.50")}) == fingerprint({"x": Decimal("1.5")})


def test_payment_ids_are_derived_from_tenant_and_key() -> None:
    assert payment_id("t1", "key-1") == payment_id("t1", "key-1")
    assert payment_id("t1", "key-1") != payment_id("t2", "key-1")
    assert payment_id("t1", "key-1").startswith("pay_")
    assert gateway_key("pay_x", 0) != gateway_key("pay_x", 1)


@pytest.mark.parametrize(("key", "ok"), [
    ("550e8400-e29b-41d4-a716-446655440000", True), ("a", True), ("a:b.c_d-e", True),
    ("", False), ("a" * 256, False), ("has space", False), ("ключ", False), ("a/b", False),
])
def test_idempotency_key_syntax(key: str, ok: bool) -> None:
    assert is_valid_idempotency_key(key) is ok
