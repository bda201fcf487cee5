"""How paysaga's payloads and failures look in Temporal.

Every payload is encrypted (temporal_client/codec.py): inputs, results, memos, update arguments and
failures' details.

A failure's headline (its message) is what an operator reads first in the Web UI, and the Web UI
cannot decode a failure's message through a codec server. So the failures paysaga expects carry
their message in plain text and no stack trace at all: a business outcome (an exhausted payment
fails its workflow with the failure code as the error type, a refused refund fails its `Refund`
workflow, a refused retry or cancel answers the update), and an expected, transient gateway failure
(a 5xx, a timeout, a 429, an open circuit) that fails one activity attempt. Their messages are
written by paysaga's own code from codes, ids paysaga made and the processor's decline code, never
from user data (tests/unit/test_failures.py and the system tests hold this).

Every other failure is unexpected: its message and stack trace may quote data, so both travel in
the encrypted attributes (Temporal's `encode_common_attributes`), read through the codec server.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any

from temporalio.api.failure.v1 import Failure
from temporalio.converter import (
    AdvancedJSONEncoder,
    CompositePayloadConverter,
    DataConverter,
    DefaultFailureConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
    PayloadConverter,
    value_to_type,
)
from temporalio.exceptions import ApplicationError, FailureError

from contracts.saga import GATEWAY_DECLINED, GATEWAY_RATE_LIMITED, GATEWAY_UNAVAILABLE
from domain.status import FailureCode
from temporal_client.codec import EncryptionCodec, KeyRing

# The failures an operator reads in plain text, without a stack trace.
EXPECTED_FAILURES = frozenset({
    *(code.value for code in FailureCode), "refund_failed",
    # expected and transient at a processor: retried, not a crash
    GATEWAY_UNAVAILABLE, GATEWAY_DECLINED, GATEWAY_RATE_LIMITED,
    # an operator's command refused by the saga (update validators)
    "CannotRetryPayment", "CannotCancelPayment", "CannotCapturePayment", "InvalidCaptureAmount"})


def expected(exception: BaseException) -> bool:
    return isinstance(exception, ApplicationError) and exception.type in EXPECTED_FAILURES


class OperatorReadableFailureConverter(DefaultFailureConverter):
    """Expected failures: plain message, no stack trace; every other one: message and stack
    trace encoded (and so encrypted by the payload codec)."""

    def __init__(self) -> None:
        super().__init__(encode_common_attributes=False)  # decided per failure, below

    def to_failure(self, exception: BaseException, payload_converter: PayloadConverter,
                   failure: Failure) -> None:
        super().to_failure(exception, payload_converter, failure)
        if isinstance(exception, FailureError) and exception.failure is not None:
            return  # a failure received from Temporal, passed on as it came
        if expected(exception):
            failure.stack_trace = ""
        elif not failure.HasField("encoded_attributes"):
            failure.encoded_attributes.CopyFrom(payload_converter.to_payloads(
                [{"message": failure.message, "stack_trace": failure.stack_trace}])[0])
            failure.message = "Encoded failure"
            failure.stack_trace = ""



@functools.cache
def _shape(cls: type) -> tuple[tuple[dataclasses.Field[Any], ...], dict[str, Any]]:
    return dataclasses.fields(cls), typing.get_type_hints(cls)


class ResolvedOnce(JSONTypeConverter):
    """The SDK's own conversion of a JSON object to a dataclass, each class's field types
    resolved once per process: the SDK resolves them (`typing.get_type_hints`) for every value
    it converts, and with postponed annotations that is an `eval` per field, 5 % of the worker's
    CPU under load. The same values come out (tests/unit/test_converter.py)."""

    def __init__(self) -> None:
        self.converters: list[JSONTypeConverter] = [self]

    def to_typed_value(self, hint: type, value: Any) -> Any:
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)
                and isinstance(value, dict)):
            return JSONTypeConverter.Unhandled
        fields, hints = _shape(hint)
        given: dict[str, Any] = {}
        late: dict[str, Any] = {}
        for field in fields:
            raw = value.get(field.name, dataclasses.MISSING)
            if raw is dataclasses.MISSING:
                continue  # a missing required field fails the instantiation, as in the SDK
            try:
                converted = value_to_type(hints[field.name], raw, self.converters)
            except Exception as err:
                raise TypeError(f"Failed converting field {field.name} on dataclass {hint}"
                                ) from err
            (given if field.init else late)[field.name] = converted
        made = hint(**given)
        for name, converted in late.items():
            object.__setattr__(made, name, converted)
        return made


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


class OneLevelAtATime(AdvancedJSONEncoder):
    """The SDK's JSON encoder, a dataclass handed to it one level at a time. The SDK's
    `dataclasses.asdict` copies the whole tree first (a `deepcopy` of every leaf), and the
    encoder then walks the copy again: an OpenPayment took 50 us to encode, and takes 16 us
    this way. Nested dataclasses, in lists and dicts too, come back to `default` as the encoder
    meets them; keys are sorted either way, so the same JSON comes out
    (tests/unit/test_converter.py)."""

    def default(self, o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return {name: getattr(o, name) for name in _field_names(type(o))}
        return super().default(o)


class PayloadConverterResolvingOnce(CompositePayloadConverter):
    """The default payload converters, JSON's with `ResolvedOnce` and `OneLevelAtATime`."""

    def __init__(self) -> None:
        super().__init__(*[
            JSONPlainPayloadConverter(encoder=OneLevelAtATime,
                                      custom_type_converters=ResolvedOnce().converters)
            if isinstance(c, JSONPlainPayloadConverter) else c
            for c in DefaultPayloadConverter.default_encoding_payload_converters])


def data_converter(ring: KeyRing | None = None, **overrides: Any) -> DataConverter:
    """The default converter, its payloads encrypted with `ring` (None: plain, for tools that
    read only what Temporal shows in plain text), expected failures readable."""
    converter = dataclasses.replace(DataConverter.default,
                                    payload_converter_class=PayloadConverterResolvingOnce,
                                    failure_converter_class=OperatorReadableFailureConverter,
                                    **overrides)
    if ring is not None:
        converter = dataclasses.replace(converter, payload_codec=EncryptionCodec(ring))
    return converter
