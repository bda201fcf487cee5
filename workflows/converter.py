"""How paysaga's payloads and failures look in Temporal.

Payloads are encrypted (workflows/codec.py), failures' messages and stack traces included (the
failure converter encodes their common attributes into an encrypted payload).

A business outcome is not a crash: an exhausted payment fails its workflow with the failure code as
the error type, a refused refund fails its `Refund` workflow, and an expected, transient gateway
failure (a 5xx, a timeout, a 429, an open circuit) fails one activity attempt; an operator reads
those in the Web UI as a type and a one-line message, without a Python stack trace. Every other
failure keeps its trace.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter, DefaultFailureConverter, PayloadConverter
from temporalio.exceptions import ApplicationError

from contracts.payment import GATEWAY_DECLINED, GATEWAY_RATE_LIMITED, GATEWAY_UNAVAILABLE
from domain.status import FailureCode
from workflows.codec import EncryptionCodec, KeyRing

BUSINESS_OUTCOMES = frozenset({*(code.value for code in FailureCode), "refund_failed",
                               # expected and transient at a processor: retried, not a crash
                               GATEWAY_UNAVAILABLE, GATEWAY_DECLINED, GATEWAY_RATE_LIMITED})


class BusinessOutcomeFailureConverter(DefaultFailureConverter):
    def __init__(self) -> None:
        super().__init__(encode_common_attributes=True)  # the message goes into the payload

    def to_failure(self, exception: BaseException, payload_converter: PayloadConverter,
                   failure: Failure) -> None:
        super().to_failure(exception, payload_converter, failure)
        if isinstance(exception, ApplicationError) and exception.type in BUSINESS_OUTCOMES:
            failure.stack_trace = ""


def data_converter(ring: KeyRing | None = None, **overrides: Any) -> DataConverter:
    """The default converter, its payloads encrypted with `ring` (None: plain, for tools that
    read only what Temporal shows in plain text), business outcomes without a stack trace."""
    converter = dataclasses.replace(DataConverter.default,
                                    failure_converter_class=BusinessOutcomeFailureConverter,
                                    **overrides)
    if ring is not None:
        converter = dataclasses.replace(converter, payload_codec=EncryptionCodec(ring))
    return converter
