"""Webhook endpoints (signed with a per-endpoint secret) and their deliveries."""

from __future__ import annotations

import base64
import secrets
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import AnyHttpUrl, BaseModel, Field
from sqlalchemy import text

from activities.webhooks import start_deliveries
from api import views
from api.deps import PaymentsRead, PaymentsWrite, StateDep
from api.errors import Problem, responses
from api.exact_json import ExactJSONRoute
from api.query import Limit, Offset
from api.schemas import Page, Strict
from domain.ids import new_id
from workflows.webhooks import DeliveryPolicy

router = APIRouter(prefix="/v1", tags=["webhooks"], route_class=ExactJSONRoute)
EVENT_TYPES = ("payment.initiated", "wallet.funds_reserved", "wallet.reservation_failed",
               "gateway.payment_approved", "gateway.payment_rejected", "wallet.funds_deducted",
               "wallet.funds_released", "payment.completed", "payment.failed",
               "payment.retry_requested", "payment.exhausted", "payment.canceled",
               "payment.refunded", "wallet.funds_deposited", "*")


class EndpointCreate(Strict):
    url: AnyHttpUrl
    events: list[Literal[EVENT_TYPES]] = Field(min_length=1, max_length=20)  # type: ignore[valid-type]


class EndpointPublic(BaseModel):
    id: str
    url: str
    events: list[str]
    created_at: str
    secret: str | None = Field(default=None, description="shown once, at creation")


class DeliveryPublic(BaseModel):
    id: str
    endpoint_id: str
    event_id: int
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: str
    updated_at: str


@router.post("/webhook-endpoints", status_code=201, response_model=EndpointPublic,
             responses=responses(400, 401, 403))
async def create_endpoint(principal: PaymentsWrite, body: EndpointCreate,
                          state: StateDep) -> EndpointPublic:
    """Register an endpoint; every matching event is POSTed to it, signed (Standard Webhooks)."""
    if not state.settings.webhook_host_allowed(body.url.host):
        raise Problem(400, "VALIDATION_ERROR", "url: this host is not in WEBHOOK_ALLOWED_HOSTS",
                      errors=[{"field": "url", "message": "host not allowed", "code": "HOST_NOT_ALLOWED"}])
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    eid = new_id("whe")
    async with state.engine.begin() as conn:
        created = (await conn.execute(text(
            "INSERT INTO webhook_endpoints (id, tenant_id, url, events, secret) "
            "VALUES (:id, :t, :u, :e, :s) RETURNING created_at"),
            {"id": eid, "t": principal.tenant_id, "u": str(body.url), "e": " ".join(body.events),
             "s": secret})).scalar_one()
    return EndpointPublic(id=eid, url=str(body.url), events=list(body.events),
                          created_at=views.rfc3339(created), secret=secret)


@router.get("/webhook-endpoints", response_model=Page[EndpointPublic], responses=responses(401, 403))
async def list_endpoints(principal: PaymentsRead, state: StateDep) -> Page[EndpointPublic]:
    async with state.engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT id, url, events, created_at FROM webhook_endpoints WHERE tenant_id = :t "
            "ORDER BY created_at"), {"t": principal.tenant_id})).all()
    items = [EndpointPublic(id=r.id, url=r.url, events=r.events.split(),
                            created_at=views.rfc3339(r.created_at)) for r in rows]
    return Page(items=items, total=len(items), limit=len(items) or 1, offset=0)


DELIVERY_COLUMNS = ("id, endpoint_id, event_id, status, attempts, last_status_code, last_error, "
                    "created_at, updated_at")


def _delivery(r: object) -> DeliveryPublic:
    return DeliveryPublic(
        id=r.id, endpoint_id=r.endpoint_id, event_id=r.event_id, status=r.status,  # type: ignore[attr-defined]
        attempts=r.attempts, last_status_code=r.last_status_code, last_error=r.last_error,  # type: ignore[attr-defined]
        created_at=views.rfc3339(r.created_at), updated_at=views.rfc3339(r.updated_at))  # type: ignore[attr-defined]


@router.get("/webhook-deliveries", response_model=Page[DeliveryPublic],
            responses=responses(400, 401, 403))
async def list_deliveries(
    principal: PaymentsRead, state: StateDep,
    status: Annotated[Literal["pending", "succeeded", "failed"] | None, Query()] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[DeliveryPublic]:
    """Deliveries, newest first; `status=failed` lists what failed for good (the dead letters)."""
    where = "tenant_id = :t" + (" AND status = :s" if status else "")
    params = {"t": principal.tenant_id, "s": status, "l": limit, "o": offset}
    async with state.engine.connect() as conn:
        total = (await conn.execute(text(f"SELECT count(*) FROM webhook_deliveries WHERE {where}"),
                                    params)).scalar()
        rows = (await conn.execute(text(
            f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE {where} "
            "ORDER BY event_id DESC, id LIMIT :l OFFSET :o"), params)).all()
    return Page(items=[_delivery(r) for r in rows], total=total or 0, limit=limit, offset=offset)


@router.post("/webhook-deliveries/{delivery_id}/replay", status_code=202,
             response_model=DeliveryPublic, responses=responses(401, 403, 404, 409))
async def replay_delivery(principal: PaymentsWrite, delivery_id: str,
                          state: StateDep) -> DeliveryPublic:
    """Deliver a failed delivery again, with a fresh retry schedule."""
    async with state.engine.begin() as conn:
        row = (await conn.execute(text(
            f"UPDATE webhook_deliveries SET status = 'pending', updated_at = now() "
            f"WHERE id = :id AND tenant_id = :t AND status = 'failed' RETURNING {DELIVERY_COLUMNS}"),
            {"id": delivery_id, "t": principal.tenant_id})).first()
        if row is None:
            exists = (await conn.execute(text(
                "SELECT status FROM webhook_deliveries WHERE id = :id AND tenant_id = :t"),
                {"id": delivery_id, "t": principal.tenant_id})).scalar()
            if exists is None:
                raise Problem(404, "DELIVERY_NOT_FOUND", f"no delivery {delivery_id}")
            raise Problem(409, "CANNOT_REPLAY_DELIVERY", f"delivery {delivery_id} is {exists}")
    s = state.settings
    await start_deliveries(state.temporal, s.temporal_task_queue, [delivery_id], DeliveryPolicy(
        s.webhook_retry_initial_seconds, s.webhook_retry_max_interval_seconds,
        s.webhook_give_up_after_seconds), replay=True)
    return _delivery(row)
