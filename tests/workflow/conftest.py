"""One time-skipping Temporal test server per session; activities are in-memory fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from devstack.temporal import register_search_attributes, test_server_binary
from temporal_client.converter import data_converter
from tests.conftest import TEST_RING


@pytest_asyncio.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_binary(),
        # on a busy 2-core machine (the system suite's servers still up) it can take over 5 s
        test_server_startup_timeout=timedelta(seconds=60),
        data_converter=data_converter(TEST_RING))
    await register_search_attributes(environment.client)
    try:
        yield environment
    finally:
        await environment.shutdown()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/workflow/" in str(item.fspath):
            item.add_marker(pytest.mark.timeout(60))
