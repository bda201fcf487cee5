"""Shared test helpers. Each tier has its own conftest: unit/, workflow/ (time skipping), system/."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporal_client.codec import KeyRing

T = TypeVar("T")

# every test encrypts what it writes to Temporal, as production does (one key ring per session)
TEST_PAYLOAD_KEYS = ",".join(KeyRing.new_key(k) for k in ("test-2", "test-1"))
TEST_RING = KeyRing.parse(TEST_PAYLOAD_KEYS)
TEST_SEARCH_HASH_KEY = base64.b64encode(os.urandom(32)).decode()


async def eventually(probe: Callable[[], Awaitable[T]], check: Callable[[T], bool],
                     timeout: float = 30.0, interval: float = 0.05) -> T:
    """Poll `probe` until `check` holds for its value; fail with the last value at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)

