"""Workflow activations on the event loop (worker/activations.py): the SDK reads each one's result
or failure off a future, as from its thread pool; the loop stays the running loop; an activation
that blocks is reported with its stack."""

import asyncio
import logging
import threading
import time

import pytest

from worker.activations import OnTheLoop


async def test_an_activation_runs_on_the_loop_thread_and_answers_through_the_sdks_await() -> None:
    executor = OnTheLoop()
    loop = asyncio.get_running_loop()

    def activate(job: str) -> tuple[str, int]:
        asyncio._set_running_loop(None)  # as the SDK's workflow instance leaves it
        return job, threading.get_ident()

    answer = await loop.run_in_executor(executor, activate, "init")
    assert answer == ("init", threading.get_ident())
    assert asyncio.get_running_loop() is loop


async def test_an_activation_that_fails_fails_the_await() -> None:
    def activate() -> None:
        raise ValueError("nondeterminism")

    with pytest.raises(ValueError, match="nondeterminism"):
        await asyncio.get_running_loop().run_in_executor(OnTheLoop(), activate)
    assert asyncio.get_running_loop() is not None


async def test_an_activation_that_blocks_is_logged_once_with_its_stack(
        caplog: pytest.LogCaptureFixture) -> None:
    executor = OnTheLoop(stuck_seconds=0.05)

    def a_workflow_that_blocks() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not caplog.records:
            time.sleep(0.01)  # the blocking call under test: the watchdog must see it

    with caplog.at_level(logging.ERROR, logger="paysaga.worker"):
        await asyncio.get_running_loop().run_in_executor(executor, a_workflow_that_blocks)
        await asyncio.get_running_loop().run_in_executor(executor, lambda: None)
    executor.shutdown()
    assert len(caplog.records) == 1
    assert "without yielding" in caplog.records[0].getMessage()
    assert "a_workflow_that_blocks" in caplog.records[0].getMessage()
