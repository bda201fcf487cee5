"""Webhook fan-out and delivery, signed as the Standard Webhooks spec says."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from standardwebhooks.webhooks import Webhook
from temporalio import activity
from temporalio.exceptions import ApplicationError


def delivery_id(endpoint_id: str, event_id: int) -> str:
    return f"whd_{endpoint_id.removeprefix('whe_')}_{event_id}"


async def fan_out(conn: AsyncConnection, events: list[Any]) -> list[str]:
    """Create a delivery for every endpoint subscribed to each event; returns the new ids. One
    query for each tenant's endpoints per batch, one insert for the batch's deliveries."""
    endpoints: dict[str, list[Any]] = {}
    for tenant in {e.tenant_id for e in events}:
        endpoints[tenant] = list((await conn.execute(text(
            "SELECT id, events FROM webhook_endpoints WHERE tenant_id = :t AND enabled"),
            {"t": tenant})).all())
    wanted = [{"id": delivery_id(endpoint.id, event.id), "e": endpoint.id, "ev": event.id,
               "t": event.tenant_id}
              for event in events for endpoint in endpoints[event.tenant_id]
              if "*" in endpoint.events.split() or event.type in endpoint.events.split()]
    if not wanted:
        return []
    made = (await conn.execute(text(
        "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, tenant_id, status) "
        "SELECT * FROM unnest(CAST(:ids AS TEXT[]), CAST(:es AS TEXT[]), CAST(:evs AS BIGINT[]), "
        "CAST(:ts AS TEXT[])), LATERAL (SELECT 'pending') s "
        "ON CONFLICT DO NOTHING RETURNING id"),
        {"ids": [w["id"] for w in wanted], "es": [w["e"] for w in wanted],
         "evs": [w["ev"] for w in wanted], "ts": [w["t"] for w in wanted]})).scalars().all()
    made_set = set(made)
    return [w["id"] for w in wanted if w["id"] in made_set]  # in event order


class WebhookActivities:
    def __init__(self, engine: AsyncEngine, http: httpx.AsyncClient,
                 host_allowed: Callable[[str | None], bool] = lambda host: True) -> None:
        self.engine = engine
        self.http = http
        self.host_allowed = host_allowed

    @activity.defn(name="deliver_webhook")
    async def deliver_webhook(self, did: str) -> None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text(
                """
                SELECT d.id, w.url, w.secret, w.enabled,
                       CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret END
                           AS previous_secret,
                       e.id AS event_id, e.type, e.payment_id, e.wallet_id, e.data, e.created_at
                FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id
                JOIN events e ON e.id = d.event_id WHERE d.id = :id
                """), {"id": did})).one()
        if not row.enabled:
            raise ApplicationError("the endpoint is disabled or deleted; replay the delivery "
                                   "once it is enabled", type="WebhookEndpointDisabled",
                                   non_retryable=True)
        if not self.host_allowed(httpx.URL(row.url).host):
            raise ApplicationError(f"{row.url} is not an allowed webhook host",
                                   type="WebhookHostNotAllowed", non_retryable=True)
        payload = json.dumps({"type": row.type, "timestamp": row.created_at.isoformat(),
                              "data": {"event_id": row.event_id, "payment_id": row.payment_id,
                                       "wallet_id": row.wallet_id, **row.data}})
        now = datetime.now(UTC)
        # during a rotation's overlap, one signature per secret, space-separated (the spec's form)
        signatures = [Webhook(s).sign(did, now, payload)
                      for s in (row.secret, row.previous_secret) if s]
        headers = {"webhook-id": did, "webhook-timestamp": str(int(now.timestamp())),
                   "webhook-signature": " ".join(signatures),
                   "content-type": "application/json"}
        try:
            response = await self.http.post(row.url, content=payload, headers=headers)
            code, error = response.status_code, None if response.is_success else response.text[:200]
        except httpx.HTTPError as err:
            code, error = None, f"{type(err).__name__}: {err}"[:200]
        async with self.engine.begin() as conn:
            await conn.execute(text(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status_code = :c, "
                "last_error = :e, status = CASE WHEN :ok THEN 'succeeded' ELSE status END, "
                "updated_at = now() WHERE id = :id"),
                {"c": code, "e": error, "ok": error is None, "id": did})
        if error is not None:
            raise ApplicationError(f"endpoint answered {code}: {error}", type="WebhookNotAccepted")

    @activity.defn(name="park_failed_delivery")
    async def park_failed_delivery(self, did: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text(
                "UPDATE webhook_deliveries SET status = 'failed', updated_at = now() WHERE id = :id"),
                {"id": did})
