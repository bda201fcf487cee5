"""Times as the contract writes them: RFC 3339, UTC, milliseconds, `Z`."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(value: datetime | str) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
