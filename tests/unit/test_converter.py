"""The payload converter resolves each dataclass's field types once per process (the SDK resolves
them for every value): the values it makes are the SDK's own, nested dataclasses, lists of them,
optionals, defaults and a missing required field included. It encodes a dataclass one level at a
time (the SDK copies the whole tree first): the bytes are the SDK's own."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import pytest
from temporalio.converter import DataConverter

from contracts.payment import OpenPayment, PaymentInput, Reservation
from contracts.saga import ConnectorPlan, SagaPolicy
from temporal_client.converter import _shape, data_converter

OURS = data_converter().payload_converter
THE_SDKS = DataConverter.default.payload_converter


@dataclass
class Later:
    """A field that is not in __init__, converted and restored as the SDK does."""

    name: str
    count: int = field(default=0, init=False)


class Colour(StrEnum):
    RED = "red"


@dataclass
class Everything:
    """What a payload may hold besides the contracts' dataclasses: a datetime, an enum, a set,
    a tuple, dataclasses in a list, in a dict and in a tuple, and a dataclass not in __init__."""

    when: datetime
    colour: Colour
    tags: set[str]
    pair: tuple[int, str]
    plans: list[ConnectorPlan]
    by_name: dict[str, ConnectorPlan]
    nested: tuple[Later, ...]
    nothing: None = None


def roundtrip(converter: Any, value: Any, as_type: type) -> Any:
    [payload] = converter.to_payloads([value])
    [back] = converter.from_payloads([payload], [as_type])
    return back


SAMPLES: list[tuple[Any, type]] = [
    (OpenPayment(PaymentInput(
        payment_id="pay_1", tenant_id="t", idempotency_key="k", fingerprint="fp", user_id="u",
        service_id="s", amount=10050, fee=201, currency="USD",
        created_at="2026-12-02T10:00:00+00:00", metadata={"order": "42"},
        policy=SagaPolicy(gateway_retry_max_attempts=3)), "run-1", "2026-12-02T10:10:00+00:00"),
     OpenPayment),
    (Reservation(ok=True, wallet_id="acc_1", route=[ConnectorPlan("primary"),
                                                   ConnectorPlan("secondary", 5.0)],
                 route_reason="rule 2"), Reservation),
    (Reservation(ok=False, failure_code="insufficient_funds"), Reservation),
]


@pytest.mark.parametrize(("value", "as_type"), SAMPLES)
def test_each_value_comes_back_as_the_sdks_converter_makes_it(value: Any, as_type: type) -> None:
    before = _shape.cache_info()
    ours, theirs = roundtrip(OURS, value, as_type), roundtrip(THE_SDKS, value, as_type)
    assert ours == theirs == value  # dataclasses compare by class and fields, nested ones too
    after = _shape.cache_info()
    assert after.hits + after.misses > before.hits + before.misses  # ours did the converting


EVERYTHING = Everything(datetime(2026, 12, 2, 10, 0, tzinfo=UTC), Colour.RED, {"only"}, (1, "a"),
                        [ConnectorPlan("primary")], {"b": ConnectorPlan("backup", 4.0)},
                        (Later("x"),))


@pytest.mark.parametrize("value", [v for v, _ in SAMPLES] + [EVERYTHING, [EVERYTHING], {"k": EVERYTHING}])
def test_each_value_is_encoded_to_the_sdks_bytes(value: Any) -> None:
    [ours], [theirs] = OURS.to_payloads([value]), THE_SDKS.to_payloads([value])
    assert ours.data == theirs.data
    assert ours.metadata == theirs.metadata


def test_a_field_outside_init_is_restored_and_a_missing_required_one_refused() -> None:
    later = Later("x")
    later.count = 3
    assert roundtrip(OURS, later, Later).count == 3
    [payload] = OURS.to_payloads([{"ok": True}])
    payload.data = json.dumps({"wallet_id": "acc_1"}).encode()  # no `ok`: required
    with pytest.raises(Exception, match="ok"):
        OURS.from_payloads([payload], [Reservation])
