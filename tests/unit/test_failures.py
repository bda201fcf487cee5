"""What a failure shows in Temporal (issue 26): an expected failure's message in plain text with no
stack trace, decoded or not; an unexpected error's message and trace only in the encrypted part."""

from __future__ import annotations

import json

from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError

from gateway.client import as_code
from temporal_client.converter import data_converter
from tests.conftest import TEST_RING

CONVERTER = data_converter(TEST_RING)


async def encoded(raise_it: BaseException) -> Failure:
    """The failure as the worker writes it to Temporal (converted, then through the codec)."""
    try:
        raise raise_it
    except BaseException as err:  # the traceback is the one a worker would have
        failure = Failure()
        CONVERTER.failure_converter.to_failure(err, CONVERTER.payload_converter, failure)
    assert CONVERTER.payload_codec is not None
    await CONVERTER.payload_codec.encode_failure(failure)
    return failure


async def decoded_attributes(failure: Failure) -> dict[str, str]:
    assert CONVERTER.payload_codec is not None
    [plain] = await CONVERTER.payload_codec.decode([failure.encoded_attributes])
    return dict(json.loads(plain.data))


async def test_a_business_outcome_reads_in_plain_text_without_a_stack_trace() -> None:
    failure = await encoded(ApplicationError("the gateway declined the charge (do_not_honor)",
                                             "do_not_honor", type="gateway_declined",
                                             non_retryable=True))
    assert failure.message == "the gateway declined the charge (do_not_honor)"
    assert failure.stack_trace == ""
    assert not failure.HasField("encoded_attributes")  # no trace hidden in the encrypted part
    assert failure.application_failure_info.type == "gateway_declined"
    details = failure.application_failure_info.details.payloads[0]
    assert details.metadata["encoding"] == b"binary/encrypted"  # details stay encrypted
    assert b"do_not_honor" not in details.data


async def test_an_expected_transient_failure_has_no_trace_anywhere() -> None:
    failure = await encoded(ApplicationError("the gateway answered 500", type="GatewayUnavailable"))
    assert (failure.message, failure.stack_trace) == ("the gateway answered 500", "")
    assert not failure.HasField("encoded_attributes")


async def test_an_unexpected_error_keeps_its_trace_encrypted() -> None:
    failure = await encoded(KeyError("user-123"))
    assert failure.message == "Encoded failure"
    assert failure.stack_trace == ""
    assert failure.encoded_attributes.metadata["encoding"] == b"binary/encrypted"
    assert b"user-123" not in failure.SerializeToString()
    inside = await decoded_attributes(failure)
    assert "user-123" in inside["message"]
    assert "test_failures.py" in inside["stack_trace"]


async def test_an_unexpected_cause_under_an_expected_failure_stays_encrypted() -> None:
    try:
        try:
            raise RuntimeError("row for user-123 locked")
        except RuntimeError as inner:
            raise ApplicationError("the gateway answered 503", type="GatewayUnavailable") from inner
    except ApplicationError as outer:
        failure = await encoded(outer)
    assert failure.message == "the gateway answered 503"
    assert failure.cause.message == "Encoded failure"
    assert b"user-123" not in failure.SerializeToString()


def test_a_decline_code_that_is_not_a_code_never_reaches_a_message() -> None:
    assert as_code("insufficient_funds") == "insufficient_funds"
    assert as_code("card of Alice Smith blocked") == "unrecognized_decline"
