"""Identifiers: payment ids derived from (tenant, Idempotency-Key), and key validation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from domain import entropy

IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9\-_.:]{1,255}$")


def is_valid_idempotency_key(key: str) -> bool:
    return bool(IDEMPOTENCY_KEY_RE.fullmatch(key))


def digest(*parts: str) -> str:
    """26 characters of base32 SHA-256 over the parts: the stable tail of a derived id."""
    raw = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return base64.b32encode(raw).decode().lower().rstrip("=")[:26]


def payment_id(tenant_id: str, idempotency_key: str) -> str:
    """The payment id, which is also its Temporal workflow id: same tenant and key, same id."""
    return f"pay_{digest('payment', tenant_id, idempotency_key)}"


def top_up_id(tenant_id: str, idempotency_key: str) -> str:
    """A top-up's id (and workflow id): same tenant and key, same top-up."""
    return f"tup_{digest('top_up', tenant_id, idempotency_key)}"


def withdrawal_id(tenant_id: str, idempotency_key: str) -> str:
    return f"wdr_{digest('withdrawal', tenant_id, idempotency_key)}"


def deposit_id(tenant_id: str, idempotency_key: str) -> str:
    return f"dep_{digest('deposit', tenant_id, idempotency_key)}"


def refund_id(tenant_id: str, idempotency_key: str) -> str:
    """The refund id, which is also its Temporal workflow id: same tenant and key, same id."""
    return f"rfd_{digest('refund', tenant_id, idempotency_key)}"


def refund_id_before_v2(payment_id: str, idempotency_key: str) -> str:
    """Refunds accepted before saga v2 had ids keyed by payment and key (rows that stay, so a
    replay of such a request still finds its refund)."""
    return f"ref_{digest('refund', payment_id, idempotency_key)}"


def user_search_hash(key: bytes, user_id: str) -> str:
    """The PaymentUserId search attribute's value: an HMAC of the user id (search attributes are
    indexed in plain text), so an operator finds a user's payments without Temporal holding the id."""
    return hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()[:32]


def new_id(prefix: str) -> str:
    return f"{prefix}_{entropy.token_hex(12)}"


def gateway_key(payment: str, attempt: int, connector: str | None = None) -> str:
    """Idempotency key sent to a connector: one per manual attempt and connector, reused by
    automatic retries (payments from before routing have no connector in theirs)."""
    return f"{payment}:a{attempt}" if connector is None else f"{payment}:a{attempt}:{connector}"


def reconciliation_id(tenant_id: str, idempotency_key: str) -> str:
    """An on-demand reconciliation's id (its workflow id): same tenant and key, same run."""
    return f"rec_{digest('reconciliation', tenant_id, idempotency_key)}"


def dispute_id(connector: str, processor_dispute_id: str) -> str:
    """A dispute's id (and its workflow's): one per connector and processor dispute, however
    many times, and in whatever order, its events arrive."""
    return f"dsp_{digest('dispute', connector, processor_dispute_id)}"
