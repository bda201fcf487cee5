"""Rendering database rows as the contract's JSON: money as strings, times as RFC 3339 UTC."""

from __future__ import annotations

from typing import Any

from api.schemas import (
    Failure,
    PaymentLinks,
    PaymentPublic,
    TransactionPublic,
    TransferLinks,
    TransferPublic,
    WalletPublic,
)
from domain.money import to_major
from domain.times import rfc3339


def wallet(row: Any) -> WalletPublic:
    c = row.currency
    return WalletPublic(
        id=row.id, user_id=row.user_id, currency=c, balance=to_major(row.balance, c),
        held=to_major(row.held, c), available=to_major(row.balance - row.held, c),
        disputed=to_major(row.disputed, c), restricted=row.balance < 0, version=row.version,
        created_at=rfc3339(row.created_at), updated_at=rfc3339(row.updated_at))


def transaction(row: Any, currency: str) -> TransactionPublic:
    return TransactionPublic(
        id=row.id, type=row.type, amount=to_major(row.amount, currency),
        balance_after=None if row.balance_after is None else to_major(row.balance_after, currency),
        payment_id=row.payment_id, created_at=rfc3339(row.created_at))


def payment(p: dict[str, Any], ui_base: str) -> PaymentPublic:
    """`p` holds the payments-table columns (from the projection, or the workflow's memo)."""
    c = p["currency"]
    pid = p["id"]
    failure = (Failure(code=p["failure_code"], message=p.get("failure_message") or "")
               if p.get("failure_code") else None)
    authorized, captured = p.get("amount_authorized"), p.get("amount_captured")
    before = p.get("capture_before")
    return PaymentPublic(
        id=pid, status=p["status"], user_id=p["user_id"], service_id=p["service_id"],
        # the amount asked for (a partial capture's is in amount_captured)
        wallet_id=p.get("wallet_id"), amount=to_major(authorized or p["amount"], c),
        fee=to_major(p["fee"], c),
        capture_method=p.get("capture_method") or "automatic",
        capture_before=rfc3339(before) if before else None,
        amount_authorized=None if authorized is None else to_major(authorized, c),
        amount_captured=None if captured is None else to_major(captured, c),
        next_action=({"type": "redirect_to_url", "url": p["next_action_url"]}
                     if p["status"] == "requires_action" and p.get("next_action_url") else None),
        currency=c, description=p.get("description"), reference=p.get("reference"),
        metadata=p.get("metadata"), failure=failure,
        manual_retries=p.get("manual_retries", 0), max_manual_retries=p["max_manual_retries"],
        amount_refunded=to_major(p.get("amount_refunded", 0), c),
        gateway_reference=p.get("gateway_reference"), connector=p.get("connector"),
        routing_reason=p.get("routing_reason"),
        created_at=rfc3339(p["created_at"]), updated_at=rfc3339(p.get("updated_at") or p["created_at"]),
        links=PaymentLinks(self=f"/v1/payments/{pid}", events=f"/v1/payments/{pid}/events",
                           temporal_ui=f"{ui_base}/{pid}"),
    )


PATHS = {"top_up": "top-ups", "withdrawal": "withdrawals"}


def transfer(t: dict[str, Any], ui_base: str) -> TransferPublic:
    """`t` holds the transfers-table columns (from the projection, or the workflow's memo)."""
    c = t["currency"]
    failure = (Failure(code=t["failure_code"], message=t.get("failure_message") or "")
               if t.get("failure_code") else None)
    return TransferPublic(
        id=t["id"], status=t["status"], wallet_id=t["wallet_id"], amount=to_major(t["amount"], c),
        fee=to_major(t["fee"], c), currency=c, failure=failure,
        gateway_reference=t.get("gateway_reference"), connector=t.get("connector"),
        created_at=rfc3339(t["created_at"]), updated_at=rfc3339(t.get("updated_at") or t["created_at"]),
        links=TransferLinks(self=f"/v1/{PATHS[t['kind']]}/{t['id']}",
                            wallet=f"/v1/wallets/{t['wallet_id']}",
                            temporal_ui=f"{ui_base}/{t['id']}"))


def original_payment(p: dict[str, Any], ui_base: str) -> PaymentPublic:
    """The payment exactly as the request that created it was answered (for idempotent replays)."""
    created = {**p, "status": "pending", "wallet_id": None, "failure_code": None,
               "manual_retries": 0, "amount_refunded": 0, "gateway_reference": None,
               "connector": None, "routing_reason": None, "updated_at": p["created_at"],
               "amount_captured": None, "next_action_url": None}
    return payment(created, ui_base)
