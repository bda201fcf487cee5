"""Connectors (payment processors) and the routing rules that choose among them, as settings
declare them (the decision itself is `routing/`).

    CONNECTORS='[{"name": "primary", "base_url": "http://127.0.0.1:8001"},
                 {"name": "secondary", "base_url": "http://127.0.0.1:8002"}]'
    ROUTING_RULES='[{"name": "eur-to-secondary", "currency": ["EUR"], "fallback": ["secondary"]},
                    {"name": "ab-test", "split": {"primary": 90, "secondary": 10},
                     "fallback": ["primary", "secondary"]}]'
    ROUTING_DEFAULT='["primary", "secondary"]'

A payment takes the first rule that matches it (every condition given must hold: currency,
amount range in major units [min_amount, max_amount), tenant); a `split` chooses the first
connector by the payment id's hash (stable: a payment always routes the same way), and `fallback`
is the ordered list to fail over to. No rule matching: `ROUTING_DEFAULT`, else every connector in
the order configured. Everything is checked when settings load: an unknown connector, a split that
does not sum to 100 or a bad amount stops the process with an error naming the rule.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from pydantic import BaseModel, Field, field_validator

# Declines that say "this processor could not do it now", not "this card cannot pay": the payment
# may go to the next connector. A hard decline (insufficient_funds, fraudulent, do_not_honor)
# never fails over.
SOFT_DECLINES = ["processor_unavailable", "try_again_later", "issuer_unavailable",
                 "reenter_transaction"]


class Connector(BaseModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    base_url: str
    timeout_seconds: float = Field(default=10.0, gt=0)
    retry_initial_seconds: float = Field(default=1.0, gt=0)
    retry_backoff: float = Field(default=2.0, ge=1)
    retry_max_interval_seconds: float = Field(default=30.0, gt=0)
    retry_max_attempts: int = Field(default=5, ge=1)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_cooldown_seconds: float = Field(default=10.0, gt=0)
    soft_decline_codes: list[str] = Field(default_factory=lambda: list(SOFT_DECLINES))


class Rule(BaseModel):
    name: str
    currency: list[str] | None = None
    min_amount: str | None = None  # major units, inclusive
    max_amount: str | None = None  # major units, exclusive
    tenant: list[str] | None = None
    split: dict[str, int] | None = None  # connector -> percent, summing to 100
    fallback: list[str] = Field(default_factory=list)

    @field_validator("min_amount", "max_amount")
    @classmethod
    def _decimal(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                Decimal(value)
            except InvalidOperation:
                raise ValueError(f"{value!r} is not a decimal amount") from None
        return value

    def matches(self, currency: str, amount: Decimal, tenant: str) -> bool:
        return ((self.currency is None or currency in self.currency)
                and (self.min_amount is None or amount >= Decimal(self.min_amount))
                and (self.max_amount is None or amount < Decimal(self.max_amount))
                and (self.tenant is None or tenant in self.tenant))


def check_routing(connectors: list[Connector], rules: list[Rule], default: list[str] | None) -> None:
    """Raise ValueError naming what is wrong with the routing configuration."""
    names = [c.name for c in connectors]
    if not names:
        raise ValueError("CONNECTORS: at least one connector is needed")
    if len(set(names)) != len(names):
        raise ValueError(f"CONNECTORS: names must be unique, got {', '.join(names)}")
    known = ", ".join(names)
    for i, rule in enumerate(rules):
        where = f"ROUTING_RULES[{i}] ({rule.name})"
        used = list(rule.fallback) + list(rule.split or {})
        unknown = sorted({n for n in used if n not in names})
        if unknown:
            raise ValueError(f"{where}: unknown connector {', '.join(unknown)}; configured: {known}")
        if not used:
            raise ValueError(f"{where}: needs a split or a fallback list")
        if rule.split is not None and (sum(rule.split.values()) != 100
                                       or any(p < 0 for p in rule.split.values())):
            raise ValueError(f"{where}: split percentages must be >= 0 and sum to 100")
        if len(set(rule.fallback)) != len(rule.fallback):
            raise ValueError(f"{where}: a connector appears twice in fallback")
    for n in default or []:
        if n not in names:
            raise ValueError(f"ROUTING_DEFAULT: unknown connector {n}; configured: {known}")
