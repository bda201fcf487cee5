"""Routing: which connectors a payment or a top-up tries, in order, and why, by the rules settings
declare (settings/connectors.py).

A payment takes the first rule that matches it; a `split` chooses the first connector by the
payment id's hash (stable: a payment always routes the same way), and `fallback` is the ordered
list to fail over to. No rule matching: `ROUTING_DEFAULT`, else every connector in the order
configured. `router(settings)` is the worker's: each connector with its own timeout and retries.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from contracts.saga import ConnectorPlan, Router
from domain.money import to_major
from settings import Settings
from settings.connectors import Connector, Rule


def route(connectors: list[Connector], rules: list[Rule], default: list[str] | None, *,
          payment_id: str, currency: str, amount: Decimal, tenant: str) -> tuple[list[str], str]:
    """The ordered connectors a payment tries, and why."""
    for rule in rules:
        if not rule.matches(currency, amount, tenant):
            continue
        order = list(rule.fallback)
        reason = f"rule {rule.name}"
        if rule.split:
            bucket = int(hashlib.sha256(payment_id.encode()).hexdigest()[:8], 16) % 100
            edge = 0
            for name, percent in rule.split.items():
                edge += percent
                if bucket < edge:
                    order = [name, *[n for n in order if n != name]]
                    reason = f"rule {rule.name}: split bucket {bucket} -> {name}"
                    break
        return order, reason
    if default:
        return list(default), "default order"
    return [c.name for c in connectors], "default order"


def router(settings: Settings) -> Router:
    """The route by the declared rules, with each connector's timeout and retry policy for the
    workflow."""
    connectors = settings.connector_list  # a property that builds them: once, not per payment
    by_name = {c.name: c for c in connectors}

    def decide(subject: str, tenant: str, currency: str, amount: int,
               ) -> tuple[list[ConnectorPlan], str]:
        order, why = route(connectors, settings.routing_rules, settings.routing_default,
                           payment_id=subject, currency=currency,
                           amount=Decimal(to_major(amount, currency)), tenant=tenant)
        return [ConnectorPlan(n, by_name[n].timeout_seconds, by_name[n].retry_initial_seconds,
                              by_name[n].retry_backoff, by_name[n].retry_max_interval_seconds,
                              by_name[n].retry_max_attempts) for n in order], why

    return decide
