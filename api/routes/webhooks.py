"""Webhook endpoints (signed with a per-endpoint secret) and their deliveries."""

from __future__ import annotations

import base64
import secrets
from types import SimpleNamespace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import AnyHttpUrl, BaseModel, Field

from api import pages, views
from api.deps import PaymentsRead, PaymentsWrite, StateDep
from api.errors import Problem, responses
from api.exact_json import ExactJSONRoute
from api.pages import StartingAfter
from api.query import Limit, Offset
from api.schemas import Page, Strict
from db import webhooks
from domain.ids import new_id
from temporal_client.start import start_deliveries
from workflows.webhooks import DeliveryPolicy

router = APIRouter(prefix="/v1", tags=["webhooks"], route_class=ExactJSONRoute)
EVENT_TYPES = ("payment.initiated", "wallet.funds_reserved", "wallet.reservation_failed",
               "gateway.payment_approved", "gateway.payment_rejected", "wallet.funds_deducted",
               "wallet.funds_released", "payment.completed", "payment.failed",
               "payment.retry_requested", "payment.exhausted", "payment.canceled",
               "payment.refunded", "payment.refund_failed", "payment.retry_refused",
               "payment.cancel_refused", "wallet.funds_deposited", "top_up.initiated",
               "top_up.succeeded", "top_up.failed", "withdrawal.initiated",
               "withdrawal.succeeded", "withdrawal.failed", "gateway.failover",
               "payment.authorized", "payment.voided", "payment.authorization_expired",
               "payment.processing", "top_up.processing", "payment.requires_action",
               "payment.routed", "dispute.created", "dispute.evidence_due_soon",
               "dispute.evidence_submitted", "dispute.won", "dispute.lost", "dispute.unexpected",
               "*")


class EndpointCreate(Strict):
    url: AnyHttpUrl
    events: list[Literal[EVENT_TYPES]] = Field(min_length=1, max_length=20)  # type: ignore[valid-type]


class EndpointUpdate(Strict):
    url: AnyHttpUrl | None = None
    events: list[Literal[EVENT_TYPES]] | None = Field(default=None, min_length=1, max_length=20)  # type: ignore[valid-type]
    enabled: bool | None = None


class SecretRotation(Strict):
    overlap_seconds: int = Field(default=24 * 3600, ge=0, le=7 * 24 * 3600, description=(
        "how long deliveries are also signed with the previous secret, so receivers can switch"))


class EndpointPublic(BaseModel):
    id: str
    url: str
    events: list[str]
    enabled: bool = True
    created_at: str
    updated_at: str | None = None
    previous_secret_expires_at: str | None = Field(
        default=None, description="until then deliveries carry signatures with both secrets")
    secret: str | None = Field(default=None, description="shown once: at creation and rotation")




def _endpoint(r: Any, secret: str | None = None) -> EndpointPublic:
    return EndpointPublic(
        id=r.id, url=r.url, events=r.events.split(), enabled=r.enabled,
        created_at=views.rfc3339(r.created_at), updated_at=views.rfc3339(r.updated_at),
        previous_secret_expires_at=(views.rfc3339(r.previous_secret_expires_at)
                                    if r.previous_secret_expires_at else None),
        secret=secret)


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _check_host(state: Any, url: AnyHttpUrl) -> None:
    if not state.settings.webhook_host_allowed(url.host):
        raise Problem(400, "VALIDATION_ERROR", "url: this host is not in WEBHOOK_ALLOWED_HOSTS",
                      errors=[{"field": "url", "message": "host not allowed", "code": "HOST_NOT_ALLOWED"}])


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
    _check_host(state, body.url)
    secret = _new_secret()
    async with state.engine.begin() as conn:
        row = await webhooks.create_endpoint(conn, new_id("whe"), principal.tenant_id,
                                             str(body.url), list(body.events), secret)
    return _endpoint(row, secret)


@router.get("/webhook-endpoints", response_model=Page[EndpointPublic], responses=responses(401, 403))
async def list_endpoints(principal: PaymentsRead, state: StateDep, limit: Limit = 50,
                         starting_after: StartingAfter = None) -> Page[EndpointPublic]:
    """The tenant's endpoints, oldest first."""
    asked = pages.ask(limit, 0, starting_after)
    async with state.engine.connect() as conn:
        found = await webhooks.endpoints_page(conn, principal.tenant_id, asked)
    return pages.page(found, lambda r: _endpoint(SimpleNamespace(**r)), asked)


@router.get("/webhook-endpoints/{eid}", response_model=EndpointPublic,
            responses=responses(401, 403, 404))
async def get_endpoint(principal: PaymentsRead, eid: str, state: StateDep) -> EndpointPublic:
    async with state.engine.connect() as conn:
        return _endpoint(await _owned(conn, principal.tenant_id, eid))


@router.patch("/webhook-endpoints/{eid}", response_model=EndpointPublic,
              responses=responses(400, 401, 403, 404))
async def update_endpoint(principal: PaymentsWrite, eid: str, body: EndpointUpdate,
                          state: StateDep) -> EndpointPublic:
    """Change the URL or the events, or disable (`enabled: false`: no new deliveries, pending
    ones are parked as failed and can be replayed) and enable again."""
    if body.url is not None:
        _check_host(state, body.url)
    async with state.engine.begin() as conn:
        await _owned(conn, principal.tenant_id, eid)
        row = await webhooks.update_endpoint(conn, eid, str(body.url) if body.url else None,
                                             body.events, body.enabled)
    return _endpoint(row)


@router.delete("/webhook-endpoints/{eid}", status_code=204, responses=responses(401, 403, 404))
async def delete_endpoint(principal: PaymentsWrite, eid: str, state: StateDep) -> Response:
    """Stop sending to it for good; its delivery history stays listed."""
    async with state.engine.begin() as conn:
        await _owned(conn, principal.tenant_id, eid)
        await webhooks.delete_endpoint(conn, eid)
    return Response(status_code=204)


@router.post("/webhook-endpoints/{eid}/rotate-secret", response_model=EndpointPublic,
             responses=responses(400, 401, 403, 404))
async def rotate_secret(principal: PaymentsWrite, eid: str, body: SecretRotation,
                        state: StateDep) -> EndpointPublic:
    """A new secret, shown once. For `overlap_seconds` (default 24 h) deliveries carry two
    signatures, the new secret's and the previous one's (Standard Webhooks allows several), so a
    receiver verifies with either while it switches."""
    secret = _new_secret()
    async with state.engine.begin() as conn:
        await _owned(conn, principal.tenant_id, eid)
        row = await webhooks.rotate_secret(conn, eid, secret, body.overlap_seconds)
    return _endpoint(row, secret)


async def _owned(conn: Any, tenant_id: str, eid: str) -> Any:
    row = await webhooks.owned_endpoint(conn, tenant_id, eid)
    if row is None:
        raise Problem(404, "WEBHOOK_ENDPOINT_NOT_FOUND", f"no webhook endpoint {eid}")
    return row




def _delivery(r: Any) -> DeliveryPublic:
    return DeliveryPublic(
        id=r.id, endpoint_id=r.endpoint_id, event_id=r.event_id, status=r.status,
        attempts=r.attempts, last_status_code=r.last_status_code, last_error=r.last_error,
        created_at=views.rfc3339(r.created_at), updated_at=views.rfc3339(r.updated_at))


@router.get("/webhook-deliveries", response_model=Page[DeliveryPublic],
            responses=responses(400, 401, 403))
async def list_deliveries(
    principal: PaymentsRead, state: StateDep,
    status: Annotated[Literal["pending", "succeeded", "failed"] | None, Query()] = None,
    limit: Limit = 50,
    offset: Offset = 0,
    starting_after: StartingAfter = None,
) -> Page[DeliveryPublic]:
    """Deliveries, newest first; `status=failed` lists what failed for good (the dead letters)."""
    asked = pages.ask(limit, offset, starting_after)
    async with state.engine.connect() as conn:
        found = await webhooks.deliveries_page(conn, principal.tenant_id, status, asked)
    return pages.page(found, lambda r: _delivery(SimpleNamespace(**r)), asked)


@router.post("/webhook-deliveries/{delivery_id}/replay", status_code=202,
             response_model=DeliveryPublic, responses=responses(401, 403, 404, 409))
async def replay_delivery(principal: PaymentsWrite, delivery_id: str,
                          state: StateDep) -> DeliveryPublic:
    """Deliver a failed delivery again, with a fresh retry schedule."""
    async with state.engine.begin() as conn:
        row, exists = await webhooks.reopen_failed(conn, principal.tenant_id, delivery_id)
        if row is None:
            if exists is None:
                raise Problem(404, "DELIVERY_NOT_FOUND", f"no delivery {delivery_id}")
            raise Problem(409, "CANNOT_REPLAY_DELIVERY", f"delivery {delivery_id} is {exists}")
    s = state.settings
    await start_deliveries(state.temporal, s.temporal_task_queue, [delivery_id], DeliveryPolicy(
        s.webhook_retry_initial_seconds, s.webhook_retry_max_interval_seconds,
        s.webhook_give_up_after_seconds), replay=True)
    return _delivery(row)
