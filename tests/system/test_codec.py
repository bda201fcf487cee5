"""What Temporal shows (issues 21 and 26): every payload encrypted, nothing personal in search
attributes, the codec server decoding for operators and the Web UI only, refunds found with their
payment, failures read the way the Web UI reads them."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.client import Client
from temporalio.common import SearchAttributeKey

from contracts.refund import RefundStep
from db import refunds
from db.api_keys import create_key
from domain.ids import user_search_hash
from temporal_client.codec_server import create_codec_app
from temporal_client.start import start_refund
from tests.conftest import eventually
from tests.system.conftest import System
from tests.system.test_money_movement import top_up, withdraw

ROOT = Path(__file__).resolve().parents[2]


async def raw_history(sys_: System, workflow_id: str) -> Any:
    """The history as the server holds it (a client without the codec)."""
    plain = Client(sys_.temporal.client.service_client, namespace=sys_.temporal.client.namespace)
    return await plain.get_workflow_handle(workflow_id).fetch_history()


async def test_the_history_holds_no_user_id_reference_or_amount_in_plain_text(
        sys_: System) -> None:
    user = f"alice-{secrets.token_hex(3)}"
    wallet = await sys_.wallet(user_id=user, funds="20.00")
    pid = (await sys_.pay(wallet["user_id"], "3.00", reference="FAC-SECRET-42")).json()["id"]
    await sys_.settled(pid, "completed")
    raw = (await raw_history(sys_, pid)).to_json()
    assert user not in raw
    assert "FAC-SECRET-42" not in raw
    assert "binary/encrypted" in base64.b64decode(
        json.loads(raw)["events"][0]["workflowExecutionStartedEventAttributes"]["input"]
        ["payloads"][0]["metadata"]["encoding"]).decode()
    desc = await sys_.temporal.client.get_workflow_handle(pid).describe()
    hashed = desc.typed_search_attributes.get(SearchAttributeKey.for_keyword("PaymentUserId"))
    assert hashed == user_search_hash(base64.b64decode(sys_.settings.search_hash_key), user)
    helper = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "api", "users", "search-hash", user], cwd=ROOT,
        capture_output=True, text=True, timeout=60, check=True,
        env=dict(os.environ, SEARCH_HASH_KEY=sys_.settings.search_hash_key))
    assert helper.stdout.strip() == f"PaymentUserId='{hashed}'"


async def test_the_codec_server_decodes_for_operators_and_the_trusted_ui_only(
        sys_: System) -> None:
    wallet = await sys_.wallet(funds="20.00")
    pid = (await sys_.pay(wallet["user_id"], "2.00", reference="REF-CODEC")).json()["id"]
    await sys_.settled(pid, "completed")
    started = (await raw_history(sys_, pid)).events[0]
    body = json_format.MessageToJson(started.workflow_execution_started_event_attributes.input)
    settings = sys_.settings.model_copy(update={"codec_trusted_origins": "http://localhost:8233"})
    app = create_codec_app(settings)
    _, tenant_key = await create_key(sys_.engine, tenant_id=sys_.tenant, name="not an operator")
    operator_key = str(sys_.operator.headers["Authorization"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://codec") as codec:
        async def decode(**headers: str) -> httpx.Response:
            return await codec.post("/decode", content=body,
                                    headers={"X-Namespace": "default", **headers})

        assert (await decode()).status_code == 401
        assert (await decode(Authorization=f"Bearer {tenant_key}")).status_code == 403
        answer = await decode(Authorization=operator_key)
        assert answer.status_code == 200
        decoded = json_format.Parse(answer.content, Payloads())
        assert b"REF-CODEC" in decoded.payloads[0].data
        assert wallet["user_id"].encode() in decoded.payloads[0].data
        ui = await decode(Origin="http://localhost:8233")
        assert ui.status_code == 200
        assert ui.headers["Access-Control-Allow-Origin"] == "http://localhost:8233"
        preflight = await codec.options("/decode", headers={
            "Origin": "http://localhost:8233", "Access-Control-Request-Method": "POST"})
        assert "X-Namespace" in preflight.headers["Access-Control-Allow-Headers"]
        other = await decode(Origin="http://evil.example")
        assert other.status_code == 401
        assert "Access-Control-Allow-Origin" not in other.headers
        encoded = await codec.post("/encode", content=answer.content,
                                   headers={"Authorization": operator_key})
        assert b"REF-CODEC" not in encoded.content


async def test_a_refund_is_found_with_its_payment(sys_: System) -> None:
    wallet = await sys_.wallet(funds="20.00")
    pid = (await sys_.pay(wallet["user_id"], "5.00")).json()["id"]
    await sys_.settled(pid, "completed")
    rid = (await sys_.api.post(f"/v1/payments/{pid}/refunds", json={"amount": "2.00"},
                               headers={"Idempotency-Key": secrets.token_hex(6)})).json()["id"]
    await sys_.settled(pid, "partially_refunded")

    async def listed() -> dict[str, str]:
        found = {}
        async for wf in sys_.temporal.client.list_workflows(f"PaymentId = '{pid}'"):
            found[wf.id] = wf.typed_search_attributes.get(
                SearchAttributeKey.for_keyword("RefundStatus")) or wf.workflow_type
        return found

    found = await eventually(listed, lambda f: f.get(rid) == "succeeded", timeout=20)
    assert found == {pid: "Payment", rid: "succeeded"}


async def web_ui_failures(sys_: System, workflow_id: str) -> tuple[str, list[dict[str, Any]]]:
    """What the Web UI reads of a history: the raw JSON as the server holds it, and every
    failure in it (causes and attempts' last failures included) with its encoded attributes
    decoded through the codec server, as the UI asks it from its own origin."""
    raw = (await raw_history(sys_, workflow_id)).to_json()
    found: list[dict[str, Any]] = []

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            if key in ("failure", "lastFailure", "cause") and "message" in node:
                found.append(node)
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)

    walk(json.loads(raw))
    async with httpx.AsyncClient(base_url=sys_.codec_url) as codec:
        for failure in found:
            if "encodedAttributes" not in failure:
                continue
            answer = await codec.post(
                "/decode", json={"payloads": [failure["encodedAttributes"]]},
                headers={"Origin": "http://localhost:8233", "X-Namespace": "default"})
            assert answer.status_code == 200, answer.text
            [payload] = answer.json()["payloads"]
            failure["decoded"] = json.loads(base64.b64decode(payload["data"]))
    return raw, found


def assert_readable(failures: list[dict[str, Any]], *secrets_: str) -> list[str]:
    """Every failure reads in plain text with no stack trace, decoded or not; the headlines."""
    assert failures
    for failure in failures:
        assert failure["message"] != "Encoded failure", failure
        assert not failure.get("stackTrace"), failure
        assert "stack_trace" not in failure.get("decoded", {}), failure
        for secret in secrets_:
            assert secret not in json.dumps(failure), failure
    return [f["message"] for f in failures]


async def test_failures_read_in_the_web_ui_without_traces_or_personal_data(sys_: System) -> None:
    user = f"bob-{secrets.token_hex(3)}"
    wallet = await sys_.wallet(user_id=user, funds="50.00")

    # a declined top-up
    await sys_.behave(decline_rate=1.0, decline_code="insufficient_funds")
    declined = await top_up(sys_, wallet, "10.00", wait="10")
    assert declined.json()["status"] == "failed", declined.text
    # an exhausted payment (declined, then every manual retry declined too)
    pid = (await sys_.pay(user, "1.00", reference="REF-PRIVATE-7")).json()["id"]
    await sys_.settled(pid, "failed")
    for _ in range(3):
        await sys_.api.post(f"/v1/payments/{pid}/retry", headers={"Prefer": "wait=10"})
    await sys_.settled(pid, "exhausted")
    # a refused refund
    await sys_.behave()
    paid = (await sys_.pay(user, "4.00", reference="REF-PRIVATE-8")).json()["id"]
    await sys_.settled(paid, "completed")
    async with sys_.engine.begin() as conn:
        step = await refunds.reserve(conn, refund_id=f"rfd_{secrets.token_hex(6)}",
                                     payment_id=paid, tenant_id=sys_.tenant, amount=0,
                                     fingerprint="fp", reason=None)
    assert isinstance(step, RefundStep)
    step.gateway_reference = "ch_unknown"  # the gateway has no such charge: it refuses
    await start_refund(sys_.temporal.client, sys_.settings, step)
    await eventually(lambda: sys_.api.get(f"/v1/payments/{paid}/refunds"),
                     lambda r: r.json()["items"][0]["status"] == "failed")
    # a charge that met a 5xx on every attempt (the charge was made; the lookup found it)
    await sys_.behave_at("primary", fail_after_charge_rate=1.0)
    met_5xx = (await sys_.pay(user, "2.00", reference="REF-PRIVATE-9")).json()["id"]
    await sys_.settled(met_5xx, "completed")

    raw, failures = await web_ui_failures(sys_, declined.json()["id"])
    assert "the gateway declined the charge (insufficient_funds)" in assert_readable(failures, user)
    assert user not in raw

    raw, failures = await web_ui_failures(sys_, pid)
    headlines = assert_readable(failures, user, "REF-PRIVATE-7")
    assert headlines[-1].startswith("the gateway declined the charge (insufficient_funds)")
    assert user not in raw
    assert "REF-PRIVATE-7" not in raw

    raw, failures = await web_ui_failures(sys_, step.refund_id)
    assert "the gateway refused the refund: unknown_charge" in assert_readable(failures, user)
    assert user not in raw

    raw, failures = await web_ui_failures(sys_, met_5xx)
    assert "the gateway answered 500" in assert_readable(failures, user, "REF-PRIVATE-9")
    assert user not in raw
    assert "REF-PRIVATE-9" not in raw
    client = sys_.temporal.client
    history = await client.get_workflow_handle(met_5xx).fetch_history()
    summaries = [(await client.data_converter.decode([e.user_metadata.summary], [str]))[0]
                 for e in history.events if e.HasField("user_metadata")]
    # counted from 1, as the Web UI counts the activity's attempts
    assert "charge attempt 1 at primary, until the hold expires" in summaries


async def test_a_payment_that_never_failed_never_touches_its_failure_code(sys_: System) -> None:
    wallet = await sys_.wallet(funds="20.00")
    pid = (await sys_.pay(wallet["user_id"], "3.00")).json()["id"]
    await sys_.settled(pid, "completed")
    raw = await raw_history(sys_, pid)
    upserted = [name for e in raw.events if e.HasField(
                    "upsert_workflow_search_attributes_event_attributes")
                for name in e.upsert_workflow_search_attributes_event_attributes
                .search_attributes.indexed_fields]
    assert upserted
    assert "PaymentFailureCode" not in upserted


async def test_top_ups_and_withdrawals_are_searchable_like_payments(sys_: System) -> None:
    wallet = await sys_.wallet(funds="200.00")
    await sys_.behave(decline_rate=1.0)  # the charge and the payout are declined
    declined = (await top_up(sys_, wallet, "123.45", wait="10")).json()
    poor = (await withdraw(sys_, wallet, "99.00", wait="10")).json()
    assert (declined["status"], poor["status"]) == ("failed", "failed")

    async def found(query: str) -> set[str]:
        return {wf.id async for wf in sys_.temporal.client.list_workflows(query)}

    wanted = {declined["id"], poor["id"]}
    query = ("PaymentFailureCode='gateway_declined' AND PaymentCurrency='USD' "
             "AND PaymentAmount >= 99 AND TransferStatus='failed'")
    assert wanted <= await eventually(lambda: found(query), lambda ids: wanted <= ids)
    assert declined["id"] in await found(f"WorkflowType='TopUp' AND PaymentId='{declined['id']}'")


async def test_the_codec_server_trusts_the_web_ui_under_every_loopback_name(sys_: System) -> None:
    settings = sys_.settings.model_copy(update={"codec_trusted_origins": "http://localhost:8233"})
    body = json_format.MessageToJson(Payloads())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_codec_app(settings)),
                                 base_url="http://codec") as codec:
        for origin in ("http://localhost:8233", "http://127.0.0.1:8233", "http://[::1]:8233"):
            answer = await codec.post("/decode", content=body, headers={"Origin": origin})
            assert answer.status_code == 200, origin
            assert answer.headers["Access-Control-Allow-Origin"] == origin
        for origin in ("http://127.0.0.1:9999", "http://localhost.evil.example:8233"):
            refused = await codec.post("/decode", content=body, headers={"Origin": origin})
            assert refused.status_code == 401, origin
            assert "Access-Control-Allow-Origin" not in refused.headers
