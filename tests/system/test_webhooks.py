"""Webhooks against a real receiving HTTP server that verifies Standard Webhooks signatures,
goes down, and comes back."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest_asyncio
import uvicorn
from fastapi import FastAPI, Request, Response
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from db.api_keys import create_key
from tests.conftest import eventually
from tests.system.conftest import System, free_port
from tests.system.test_disputes import dispute_now, disputed
from tests.system.test_money_movement import top_up
from worker.outbox import Dispatch, relay_once
from workflows.webhooks import DeliveryPolicy


@dataclass
class Receiver:
    url: str
    up: bool = False
    secrets: list[str] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0


@pytest_asyncio.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    state = Receiver(url=f"http://127.0.0.1:{port}/hooks")
    app = FastAPI()

    @app.post("/hooks")
    async def hooks(request: Request) -> Response:
        if not state.up:
            return Response(status_code=503)
        body = await request.body()
        for secret in state.secrets:
            try:
                state.received.append(Webhook(secret).verify(body, dict(request.headers)))
                return Response(status_code=204)
            except Exception:
                continue  # signed with another endpoint's secret
        state.rejected += 1
        return Response(status_code=400)

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: _started(server), bool, timeout=10)
    yield state
    server.should_exit = True
    await task


async def _started(server: uvicorn.Server) -> bool:
    return server.started


@pytest_asyncio.fixture
async def tenant(sys_: System) -> AsyncIterator[System]:
    """A tenant of its own, so only its events fan out to the endpoints these tests register."""
    _, key = await create_key(sys_.engine, tenant_id=f"hooks-{secrets.token_hex(3)}", name="hooks",
                              scopes=["payments:write", "payments:read", "wallets:write",
                                      "wallets:read"])
    async with httpx.AsyncClient(transport=sys_.api._transport, base_url="http://api",
                                 headers={"Authorization": f"Bearer {key}"}) as api:
        yield dataclasses.replace(sys_, api=api)


async def subscribe(sys_: System, receiver: Receiver, events: list[str]) -> str:
    created = await sys_.api.post("/v1/webhook-endpoints", json={"url": receiver.url,
                                                                  "events": events})
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    receiver.secrets.append(secret)
    return str(created.json()["id"])


async def relay_all(sys_: System, policy: DeliveryPolicy) -> None:
    dispatch = Dispatch(sys_.temporal.client, sys_.settings.temporal_task_queue, policy)
    while await relay_once(sys_.engine, dispatch):
        pass


async def delivery_for(sys_: System, endpoint: str, payment_id: str) -> dict[str, Any]:
    events = (await sys_.api.get(f"/v1/payments/{payment_id}/events")).json()["items"]
    completed = next(e["id"] for e in events if e["type"] == "payment.completed")
    listed = (await sys_.api.get("/v1/webhook-deliveries", params={"limit": 200})).json()["items"]
    return next(d for d in listed if d["endpoint_id"] == endpoint and d["event_id"] == completed)


def received_for(receiver: Receiver, payment_id: str) -> list[dict[str, Any]]:
    return [m for m in receiver.received if m["data"].get("payment_id") == payment_id]


async def test_a_signed_webhook_arrives_after_the_receiver_comes_back(
        tenant: System, receiver: Receiver) -> None:
    sys_ = tenant
    endpoint = await subscribe(sys_, receiver, ["payment.completed"])
    receiver.up = False
    wallet = await sys_.wallet(funds="50.00")
    pid = (await sys_.pay(wallet["user_id"], "5.00")).json()["id"]
    await sys_.settled(pid, "completed")
    await relay_all(sys_, DeliveryPolicy(0.2, 0.5, 120))
    await eventually(lambda: delivery_for(sys_, endpoint, pid), lambda d: d["attempts"] >= 2)
    receiver.up = True
    delivery = await eventually(lambda: delivery_for(sys_, endpoint, pid),
                                lambda d: d["status"] == "succeeded")
    assert delivery["last_status_code"] == 204
    messages = received_for(receiver, pid)
    assert [m["type"] for m in messages] == ["payment.completed"]
    assert (messages[0]["data"]["amount"], messages[0]["data"]["currency"]) == ("5.00", "USD")
    assert receiver.rejected == 0


async def test_a_delivery_that_fails_for_good_is_listed_and_can_be_replayed(
        tenant: System, receiver: Receiver) -> None:
    sys_ = tenant
    endpoint = await subscribe(sys_, receiver, ["payment.completed"])
    receiver.up = False
    wallet = await sys_.wallet(funds="50.00")
    pid = (await sys_.pay(wallet["user_id"], "6.00")).json()["id"]
    await sys_.settled(pid, "completed")
    await relay_all(sys_, DeliveryPolicy(0.2, 0.5, 2))
    delivery = await eventually(lambda: delivery_for(sys_, endpoint, pid),
                                lambda d: d["status"] == "failed")
    failed = (await sys_.api.get("/v1/webhook-deliveries", params={"status": "failed",
                                                                   "limit": 200})).json()
    assert delivery["id"] in [d["id"] for d in failed["items"]]
    receiver.up = True
    replayed = await sys_.api.post(f"/v1/webhook-deliveries/{delivery['id']}/replay")
    assert replayed.status_code == 202
    await eventually(lambda: delivery_for(sys_, endpoint, pid), lambda d: d["status"] == "succeeded")
    assert len(received_for(receiver, pid)) >= 1
    again = await sys_.api.post(f"/v1/webhook-deliveries/{delivery['id']}/replay")
    assert (again.status_code, again.json()["code"]) == (409, "CANNOT_REPLAY_DELIVERY")


async def test_endpoints_outside_the_allowed_hosts_are_refused(tenant: System) -> None:
    response = await tenant.api.post("/v1/webhook-endpoints", json={
        "url": "http://10.1.2.3/hooks", "events": ["payment.completed"]})
    assert (response.status_code, response.json()["code"]) == (400, "VALIDATION_ERROR")
    assert response.json()["errors"][0]["field"] == "url"


async def test_an_endpoint_can_be_changed_disabled_and_deleted(tenant: System,
                                                               receiver: Receiver) -> None:
    sys_ = tenant
    receiver.up = True
    eid = await subscribe(sys_, receiver, ["payment.completed"])
    changed = await sys_.api.patch(f"/v1/webhook-endpoints/{eid}", json={"events": ["payment.refunded"]})
    assert (changed.status_code, changed.json()["events"]) == (200, ["payment.refunded"])
    assert changed.json()["secret"] is None  # never shown again
    wallet = await sys_.wallet(funds="50.00")
    pid = (await sys_.pay(wallet["user_id"], "5.00")).json()["id"]
    await sys_.settled(pid, "completed")
    await relay_all(sys_, DeliveryPolicy(0.2, 0.5, 120))
    listed = (await sys_.api.get("/v1/webhook-deliveries", params={"limit": 200})).json()["items"]
    assert [d for d in listed if d["endpoint_id"] == eid] == []  # no longer subscribed to completions

    disabled = await sys_.api.patch(f"/v1/webhook-endpoints/{eid}", json={"enabled": False})
    assert disabled.json()["enabled"] is False
    refused = await sys_.api.patch(f"/v1/webhook-endpoints/{eid}", json={"url": "http://example.com/x"})
    assert (refused.status_code, refused.json()["errors"][0]["code"]) == (400, "HOST_NOT_ALLOWED")
    assert (await sys_.api.delete(f"/v1/webhook-endpoints/{eid}")).status_code == 204
    assert (await sys_.api.get(f"/v1/webhook-endpoints/{eid}")).status_code == 404
    assert eid not in [e["id"] for e in (await sys_.api.get("/v1/webhook-endpoints")).json()["items"]]
    assert (await sys_.api.delete(f"/v1/webhook-endpoints/{eid}")).status_code == 404


async def test_a_rotated_secret_overlaps_so_receivers_switch_without_a_gap(
        tenant: System, receiver: Receiver) -> None:
    sys_ = tenant
    receiver.up = True
    eid = await subscribe(sys_, receiver, ["payment.completed"])
    old = receiver.secrets[-1]
    rotated = await sys_.api.post(f"/v1/webhook-endpoints/{eid}/rotate-secret",
                                  json={"overlap_seconds": 3600})
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new.startswith("whsec_")
    assert new != old
    assert rotated.json()["previous_secret_expires_at"]
    policy = DeliveryPolicy(0.2, 0.5, 120)

    async def deliver_one(attempted: bool = False) -> dict[str, Any]:
        wallet = await sys_.wallet(funds="50.00")
        pid = (await sys_.pay(wallet["user_id"], "5.00")).json()["id"]
        await sys_.settled(pid, "completed")
        await relay_all(sys_, policy)
        return await eventually(lambda: delivery_for(sys_, eid, pid),
                                lambda d: d["attempts"] > 0 if attempted else d["status"] != "pending")

    kept = list(receiver.secrets)
    try:
        receiver.secrets = [old]  # a receiver that has not switched yet
        assert (await deliver_one())["status"] == "succeeded"
        receiver.secrets = [new]  # ... and one that has
        assert (await deliver_one())["status"] == "succeeded"
        # the overlap over: only the new secret signs, a receiver still on the old one refuses
        async with sys_.engine.begin() as conn:  # as if the overlap window had passed
            await conn.execute(text("UPDATE webhook_endpoints SET previous_secret_expires_at = "
                                    "now() - interval '1 second' WHERE id = :id"), {"id": eid})
        rejected = receiver.rejected
        receiver.secrets = [old]
        late = await deliver_one(attempted=True)
        assert late["last_status_code"] == 400
        assert receiver.rejected > rejected
    finally:
        receiver.secrets = [*kept, new]


async def test_a_disputes_events_reach_an_endpoint_subscribed_to_them(
        tenant: System, receiver: Receiver) -> None:
    """An operator subscribes to disputes by name: the opened and the won dispute arrive signed,
    money as decimal strings; the evidence reminder it did not ask for does not."""
    sys_ = tenant
    receiver.up = True
    await sys_.behave()
    await subscribe(sys_, receiver, ["dispute.created", "dispute.won"])
    wallet = await sys_.wallet()
    made = await top_up(sys_, wallet, "20.00", wait="10")
    assert made.json()["status"] == "succeeded", made.text
    d = await disputed(sys_, made.json()["gateway_reference"])
    closed = await sys_.gateway.post(f"/disputes/{d['processor_id']}/close",
                                     json={"status": "won"})
    assert closed.status_code == 200, closed.text
    await eventually(lambda: dispute_now(sys_, d["id"]), lambda x: x["status"] == "won",
                     timeout=30)
    await relay_all(sys_, DeliveryPolicy(0.2, 0.5, 120))

    async def mine() -> list[dict[str, Any]]:
        return [m for m in receiver.received if m["data"].get("dispute_id") == d["id"]]

    messages = await eventually(mine, lambda m: len(m) == 2)
    assert sorted(m["type"] for m in messages) == ["dispute.created", "dispute.won"]
    created = next(m for m in messages if m["type"] == "dispute.created")
    assert (created["data"]["amount"], created["data"]["fee"], created["data"]["from_wallet"],
            created["data"]["currency"], created["data"]["top_up_id"]) == (
        "20.40", "15.00", "20.00", "USD", made.json()["id"])
