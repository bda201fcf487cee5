"""Webhook delivery, signed as the Standard Webhooks spec says (the fan-out that makes deliveries
is the outbox relay's: db/outbox.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks.webhooks import Webhook
from temporalio import activity
from temporalio.exceptions import ApplicationError

from db import webhooks


class WebhookActivities:
    def __init__(self, engine: AsyncEngine, http: httpx.AsyncClient,
                 host_allowed: Callable[[str | None], bool] = lambda host: True) -> None:
        self.engine = engine
        self.http = http
        self.host_allowed = host_allowed

    @activity.defn(name="deliver_webhook")
    async def deliver_webhook(self, did: str) -> None:
        async with self.engine.connect() as conn:
            row = await webhooks.to_send(conn, did)
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
            await webhooks.record_attempt(conn, did, code, error)
        if error is not None:
            raise ApplicationError(f"endpoint answered {code}: {error}", type="WebhookNotAccepted")

    @activity.defn(name="park_failed_delivery")
    async def park_failed_delivery(self, did: str) -> None:
        async with self.engine.begin() as conn:
            await webhooks.park_failed(conn, did)
