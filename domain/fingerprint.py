"""Canonical request fingerprints: the same request always hashes the same.

Key order does not matter and decimals compare by value (100.5 and 100.50 are one number). Callers
fingerprint amounts after parsing them into minor units, so "100.5" and 100.50 are one request.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return value


def fingerprint(payload: dict[str, Any]) -> str:
    text = json.dumps(_canonical(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()
