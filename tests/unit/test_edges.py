"""The API's edges without servers: a 500 carries its request id; `Prefer: wait` parsing and the
wait that never turns a cancelled call into an error."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError

from api.app import create_app
from api.prefer import wait_seconds
from settings import Settings
from temporal_client.ask import Outlived, within


async def test_an_unexpected_error_is_a_500_problem_with_the_request_id() -> None:
    app = create_app(Settings())

    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        answer = await client.get("/boom", headers={"Request-Id": "req-abc.1"})
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "INTERNAL_ERROR"
    assert answer.json()["request_id"] == "req-abc.1" == answer.headers["request-id"]
    assert "a bug" not in answer.text  # never the exception's text


@pytest.mark.parametrize(("header", "seconds"), [
    (None, None), ("wait=10", 10.0), ("respond-async, wait=2.5", 2.5), ("wait=99", 30.0),
    ("wait=-1", 0.0), ("wait=abc", None), ("wait=nan", None), ("return=minimal", None)])
def test_the_wait_preference(header: str | None, seconds: float | None) -> None:
    assert wait_seconds(header) == seconds


async def test_within_answers_the_result_in_time() -> None:
    async def quick() -> str:
        return "done"

    assert await within(1, quick()) == "done"


async def test_within_consumes_what_a_cancelled_sdk_call_raises() -> None:
    unwound = asyncio.Event()

    async def sdk_update() -> None:  # the SDK turns its cancellation into its own error
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            unwound.set()
            raise WorkflowUpdateRPCTimeoutOrCancelledError() from None

    with pytest.raises(Outlived):
        await within(0.01, sdk_update())
    assert unwound.is_set()


async def test_an_update_rpc_that_times_out_on_its_own_is_outlived_too() -> None:
    async def server_gave_up() -> None:
        raise WorkflowUpdateRPCTimeoutOrCancelledError()

    with pytest.raises(Outlived):
        await within(1, server_gave_up())
