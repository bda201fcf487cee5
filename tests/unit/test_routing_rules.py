"""Routing rules: the first matching rule decides, a split is stable per payment, and a broken
configuration stops the process at start-up with an error naming the rule."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
from pydantic import ValidationError

from routing import route
from settings import Settings
from settings.connectors import Connector, Rule

CONNECTORS = [Connector(name="primary", base_url="http://p"),
              Connector(name="secondary", base_url="http://s")]
RULES = [
    Rule(name="eur", currency=["EUR"], fallback=["secondary", "primary"]),
    Rule(name="big", min_amount="1000", fallback=["secondary"]),
    Rule(name="acme-ab", tenant=["acme"], split={"primary": 70, "secondary": 30},
         fallback=["primary", "secondary"]),
]


def order(currency: str = "USD", amount: str = "10", tenant: str = "t",
          pid: str = "pay_1") -> tuple[list[str], str]:
    return route(CONNECTORS, RULES, None, payment_id=pid, currency=currency,
                 amount=Decimal(amount), tenant=tenant)


def test_the_first_matching_rule_decides_and_says_so() -> None:
    assert order(currency="EUR", amount="5000") == (["secondary", "primary"], "rule eur")
    assert order(amount="1000") == (["secondary"], "rule big")
    assert order(amount="999.99") == (["primary", "secondary"], "default order")


def test_a_split_is_stable_per_payment_and_near_its_percentages() -> None:
    firsts = Counter(order(tenant="acme", pid=f"pay_{i}")[0][0] for i in range(2000))
    assert 0.65 < firsts["primary"] / 2000 < 0.75
    assert order(tenant="acme", pid="pay_7") == order(tenant="acme", pid="pay_7")
    chosen, why = order(tenant="acme", pid="pay_7")
    assert sorted(chosen) == ["primary", "secondary"]
    assert why.startswith("rule acme-ab: split bucket ")


@pytest.mark.parametrize(("rules", "default", "message"), [
    ([{"name": "x", "fallback": ["tertiary"]}], None,
     "ROUTING_RULES[0] (x): unknown connector tertiary; configured: primary, secondary"),
    ([{"name": "x", "split": {"primary": 50, "secondary": 40}}], None,
     "ROUTING_RULES[0] (x): split percentages must be >= 0 and sum to 100"),
    ([{"name": "x"}], None, "ROUTING_RULES[0] (x): needs a split or a fallback list"),
    ([{"name": "x", "min_amount": "ten", "fallback": ["primary"]}], None, "not a decimal amount"),
    ([], ["primary", "nope"], "ROUTING_DEFAULT: unknown connector nope"),
])
def test_a_broken_configuration_is_refused_by_name(rules: list[dict[str, object]],
                                                    default: list[str] | None, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        Settings.model_validate({"connectors": CONNECTORS, "routing_rules": rules,
                                 "routing_default": default})


def test_without_connectors_the_gateway_settings_make_make_devs_two() -> None:
    s = Settings(gateway_url="http://gw:9", gateway_secondary_url="http://gw:10",
                 gateway_retry_max_attempts=7)
    assert [(c.name, c.base_url, c.retry_max_attempts) for c in s.connector_list] == [
        ("primary", "http://gw:9", 7), ("secondary", "http://gw:10", 7)]
    assert [c.name for c in Settings(gateway_secondary_url="").connector_list] == ["primary"]
