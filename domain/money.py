"""Money as integer minor units inside, decimal strings in major units outside.

Exponents come from the ISO 4217 table maintained in the `iso4217` package, never a hand table.
Parsing never goes through a binary float.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from iso4217 import Currency


class MoneyError(ValueError):
    """A rejected amount or currency; `code` is the stable API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def currency_exponent(code: object) -> int:
    """Minor-unit exponent of an upper-case ISO 4217 code (USD 2, JPY 0, KWD 3)."""
    if not isinstance(code, str) or len(code) != 3 or not code.isalpha() or not code.isupper():
        raise MoneyError("INVALID_CURRENCY", "currency must be an upper-case ISO 4217 code")
    try:
        exponent = Currency(code).exponent
    except ValueError:
        raise MoneyError("INVALID_CURRENCY", f"unknown currency {code!r}") from None
    if exponent is None:  # metals, testing codes, funds: not payable
        raise MoneyError("INVALID_CURRENCY", f"{code} is not a payable currency")
    return int(exponent)


def to_decimal(value: object) -> Decimal:
    """Exact decimal from a JSON string, integer or decimal; floats are refused."""
    if isinstance(value, (bool, float)):
        raise MoneyError("INVALID_AMOUNT", "amount must be a decimal string or an exact number")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 40 or text != value:
            raise MoneyError("INVALID_AMOUNT", "amount must be a decimal number such as \"100.50\"")
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise MoneyError("INVALID_AMOUNT", "amount must be a decimal number such as \"100.50\"") from None
    else:
        raise MoneyError("INVALID_AMOUNT", "amount must be a decimal string or a number")
    if not result.is_finite():
        raise MoneyError("INVALID_AMOUNT", "amount must be a finite number")
    return result


def to_minor(value: object, currency: str, *, maximum: Decimal | None = None) -> int:
    """Parse a positive major-unit amount into integer minor units, exactly."""
    exponent = currency_exponent(currency)
    amount = to_decimal(value)
    if amount <= 0:
        raise MoneyError("INVALID_AMOUNT", "amount must be greater than zero")
    if maximum is not None and amount > maximum:
        raise MoneyError("AMOUNT_TOO_LARGE", f"amount must be at most {maximum}")
    scaled = amount.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise MoneyError(
            "INVALID_AMOUNT", f"{currency} allows at most {exponent} decimal places"
        )
    return int(scaled)


def to_major(minor: int, currency: str) -> str:
    """Format integer minor units as a major-unit decimal string: 10050 USD -> "100.50"."""
    exponent = currency_exponent(currency)
    quantum = Decimal(1).scaleb(-exponent)
    return str(Decimal(minor).scaleb(-exponent).quantize(quantum))
