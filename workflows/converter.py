"""How paysaga's failures look in Temporal: a business outcome is not a crash.

An exhausted payment fails its workflow with the failure code as the error type, and a refused
refund fails its `Refund` workflow; those are outcomes an operator reads in the Web UI, so they
carry their message and type but no Python stack trace. Every other failure keeps its trace.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter, DefaultFailureConverter, PayloadConverter
from temporalio.exceptions import ApplicationError

from domain.status import FailureCode

BUSINESS_OUTCOMES = frozenset({*(code.value for code in FailureCode), "refund_failed"})


class BusinessOutcomeFailureConverter(DefaultFailureConverter):
    def to_failure(self, exception: BaseException, payload_converter: PayloadConverter,
                   failure: Failure) -> None:
        super().to_failure(exception, payload_converter, failure)
        if isinstance(exception, ApplicationError) and exception.type in BUSINESS_OUTCOMES:
            failure.stack_trace = ""


def data_converter(**overrides: Any) -> DataConverter:
    """The default converter with business outcomes shown without a stack trace."""
    return dataclasses.replace(DataConverter.default,
                               failure_converter_class=BusinessOutcomeFailureConverter, **overrides)
