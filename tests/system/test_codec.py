"""What Temporal shows (issue 21): every payload encrypted, nothing personal in search attributes,
the codec server decoding for operators only, refunds found with their payment."""

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

from api.auth import create_key
from codec.server import create_codec_app
from domain.ids import user_search_hash
from tests.conftest import eventually
from tests.system.conftest import System
from workflows.converter import BusinessOutcomeFailureConverter

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


def test_an_expected_transient_gateway_failure_carries_no_stack_trace() -> None:
    from temporalio.api.failure.v1 import Failure
    from temporalio.converter import DefaultPayloadConverter
    from temporalio.exceptions import ApplicationError

    def fail() -> None:
        raise ApplicationError("the gateway answered 500", type="GatewayUnavailable")

    try:
        fail()
    except ApplicationError as err:
        failure = Failure()
        BusinessOutcomeFailureConverter().to_failure(err, DefaultPayloadConverter(), failure)
    assert failure.stack_trace == ""
    assert failure.application_failure_info.type == "GatewayUnavailable"
    assert failure.message == "Encoded failure"  # the message travels encrypted
