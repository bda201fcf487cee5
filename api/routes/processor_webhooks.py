"""The processors' signed events in: `POST /v1/processor-webhooks/{connector}`.

The signature is the authentication (no API key): Standard Webhooks (`webhook-id`,
`webhook-timestamp`, `webhook-signature`), each connector with its own secrets
(PROCESSOR_WEBHOOK_SECRETS; two during a rotation), a 5-minute timestamp tolerance, constant-time
comparison (the standardwebhooks library's). A verified event is stored once (unique on connector
+ event id) and answered 200 only after it is stored, so a processor's retry is safe; a duplicate
answers 200 and does nothing. The worker's relay then carries it to its saga as an Update whose
id is the event id; nothing here talks to Temporal.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from api.deps import StateDep
from api.errors import Problem, responses
from api.metrics import PROCESSOR_EVENTS
from db import processor_events
from domain.ids import dispute_id

router = APIRouter(prefix="/v1/processor-webhooks", tags=["processor webhooks"])


def subject_of(connector: str, event: dict[str, Any]) -> str | None:
    """The saga the event is about: a dispute's (`dsp_…`, from the connector and the processor's
    dispute id), else the payment or top-up that owns the charge, if it names one."""
    obj = (event.get("data") or {}).get("object") or {}
    if not isinstance(obj, dict):
        return None
    if str(event.get("type", "")).startswith("dispute.") and isinstance(obj.get("id"), str):
        return dispute_id(connector, obj["id"])
    owner = obj.get("payment_id")
    return str(owner) if isinstance(owner, str) and owner.startswith(("pay_", "tup_")) else None


@router.post("/{connector}", responses={200: {"description": "stored (or stored before)"},
                                         **responses(401, 404, 413)})
async def receive(connector: str, request: Request, state: StateDep) -> JSONResponse:
    """A processor's event (`{id: "evt_…", type, created, data}`), verified, then stored once."""
    secrets = [x.strip() for x in state.settings.processor_webhook_secrets.get(connector, "")
               .split(",") if x.strip()]
    if connector not in {c.name for c in state.settings.connector_list} or not secrets:
        raise Problem(404, "CONNECTOR_NOT_FOUND", f"no processor {connector} sends events here")
    body = await request.body()
    headers = {k: request.headers.get(k, "") for k in
               ("webhook-id", "webhook-timestamp", "webhook-signature")}
    event: Any = None
    for secret in secrets:
        try:
            event = Webhook(secret).verify(body, headers)
            break
        except WebhookVerificationError:
            continue
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        PROCESSOR_EVENTS.labels("bad_signature").inc()
        raise Problem(401, "INVALID_SIGNATURE", "the event's signature, timestamp or id does not "
                      "verify with this processor's secret; nothing was stored")
    async with state.engine.begin() as conn:
        fresh = await processor_events.store(conn, connector, event["id"],
                                             str(event.get("type")), subject_of(connector, event),
                                             event)
    PROCESSOR_EVENTS.labels("verified" if fresh else "duplicate").inc()
    return JSONResponse({"received": True, "duplicate": not fresh})
