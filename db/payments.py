"""The payments table as the API reads it: one row, the columns every view of a payment shows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

COLUMNS = ("id, tenant_id, fingerprint, status, user_id, service_id, wallet_id, amount, fee, "
           "currency, description, reference, metadata, failure_code, failure_message, "
           "manual_retries, max_manual_retries, amount_refunded, gateway_reference, "
           "connector, routing_reason, created_at, updated_at")


async def projection(engine: AsyncEngine, tenant_id: str, payment_id: str) -> dict[str, Any] | None:
    """The payment's read projection, or None (not yet opened, or another tenant's)."""
    async with engine.connect() as conn:
        row = (await conn.execute(text(
            f"SELECT {COLUMNS} FROM payments WHERE id = :id AND tenant_id = :t"),
            {"id": payment_id, "t": tenant_id})).mappings().first()
    return dict(row) if row else None
