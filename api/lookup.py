"""Finding a tenant's payment for any route: its projection, or before the projection exists (the
202 has answered, the workflow's first step has not run), what its workflow says."""

from __future__ import annotations

from typing import Any

from api.deps import AppState
from api.errors import Problem
from db import transfers
from db.payments import projection
from domain.status import PaymentStatus
from temporal_client.ask import described
from workflows.search import PAYMENT_STATUS


async def from_workflow(state: AppState, tenant_id: str, pid: str) -> dict[str, Any] | None:
    """The payment as its workflow describes it, before the projection row exists."""
    desc = await described(state.temporal, pid)
    if desc is None:
        return None
    memo = await desc.memo()
    if memo.get("tenant_id") != tenant_id or "payment" not in memo:
        return None
    view: dict[str, Any] = dict(memo["payment"])
    # the memo holds only what never changes; the status is the PaymentStatus search attribute
    view["status"] = (desc.typed_search_attributes.get(PAYMENT_STATUS) or view.get("status")
                      or PaymentStatus.PENDING.value)
    view["fingerprint"] = memo.get("fingerprint")
    return view


async def load_transfer(state: AppState, tenant_id: str, kind: str, tid: str) -> dict[str, Any]:
    """A top-up or withdrawal: its projection, or what its workflow says before the projection
    exists; 404 TOP_UP_NOT_FOUND / WITHDRAWAL_NOT_FOUND (another tenant's too)."""
    found = await transfers.projection(state.engine, tenant_id, kind, tid)
    if found is None:
        desc = await described(state.temporal, tid)
        memo = {} if desc is None else await desc.memo()
        view = memo.get("transfer")
        if memo.get("tenant_id") == tenant_id and view and view.get("kind") == kind:
            found = {**view, "status": "pending", "fingerprint": memo.get("fingerprint")}
    if found is None:
        raise Problem(404, f"{kind.upper()}_NOT_FOUND", f"no {kind.replace('_', '-')} {tid}")
    return found


async def load_payment(state: AppState, tenant_id: str, pid: str) -> dict[str, Any]:
    """The payment, or 404 PAYMENT_NOT_FOUND (another tenant's too: ids cannot be probed)."""
    found = (await projection(state.engine, tenant_id, pid)
             or await from_workflow(state, tenant_id, pid))
    if found is None:
        raise Problem(404, "PAYMENT_NOT_FOUND", f"no payment {pid}")
    return found
