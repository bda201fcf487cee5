"""JetStream's answers to the relay's publishes (bus/jetstream._ack): an ack, a duplicate, a
refusal, and a status without a body (no stream took the subject) are told apart."""

import json

import pytest
from nats.js.errors import APIError

from bus.jetstream import _ack


def test_an_ack_and_a_duplicate_are_read_as_such() -> None:
    first = _ack(json.dumps({"stream": "PAYSAGA_EVENTS", "seq": 7}).encode())
    again = _ack(json.dumps({"stream": "PAYSAGA_EVENTS", "seq": 7, "duplicate": True}).encode())
    assert (first.stream, first.seq, bool(first.duplicate)) == ("PAYSAGA_EVENTS", 7, False)
    assert again.duplicate is True


def test_a_refusal_is_an_error() -> None:
    with pytest.raises(APIError, match="maximum messages exceeded"):
        _ack(json.dumps({"error": {"code": 503, "err_code": 10077,
                                   "description": "maximum messages exceeded"}}).encode())


def test_a_status_without_a_body_is_an_error() -> None:
    with pytest.raises(json.JSONDecodeError, match="Expecting value"):
        _ack(b"")
