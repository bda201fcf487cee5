"""Shared test helpers. Each tier has its own conftest: unit/, workflow/ (time skipping), system/."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


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


def v1_input(inp: Any) -> Any:
    """A live PaymentInput as saga v1's frozen one (the fields v1 knows), to start a v1 run."""
    from legacy.types import PaymentInput

    return PaymentInput(**{f.name: getattr(inp, f.name) for f in fields(PaymentInput)})
