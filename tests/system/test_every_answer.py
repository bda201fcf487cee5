"""Every answer holds (issue 17): a `Prefer: wait` that outlives its wait is a 202 with the state
so far, an oversized body is a 413 the client can read, tenant keys hold tenant powers only, and
every list answers in one shape."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest

from db.api_keys import create_key, create_operator_key
from domain.access import ScopeError
from tests.system.conftest import System

ROOT = Path(__file__).resolve().parents[2]
UNSETTLED = {"pending", "processing"}


def pay_body(user_id: str, amount: str = "2.00") -> dict[str, Any]:
    return {"user_id": user_id, "service_id": "service-456", "amount": amount, "currency": "USD"}


async def post_waiting(sys_: System, path: str, wait: str, body: Any = None,
                       key: str | None = None) -> httpx.Response:
    headers = {"Prefer": f"wait={wait}"}
    if key:
        headers["Idempotency-Key"] = key
    return await sys_.api.post(path, json=body, headers=headers)


def outlived(response: httpx.Response, wait: str) -> dict[str, Any]:
    """A `Prefer: wait` the saga outlived: 202, the preference applied, the state so far."""
    assert response.status_code == 202, response.text
    assert response.headers["Preference-Applied"] == f"wait={wait}"
    body = dict(response.json())
    assert body["status"] in UNSETTLED, body
    return body


# --- 1. Prefer: wait shorter than the saga -------------------------------------------------

async def test_a_wait_shorter_than_a_slow_gateway_answers_202_then_the_payment_completes(
        sys_: System) -> None:
    await sys_.behave(latency_ms=700)  # under the connector's 1 s timeout: slow, not failing
    wallet = await sys_.wallet(funds="20.00")
    response = await post_waiting(sys_, "/v1/payments", "0.2", pay_body(wallet["user_id"]),
                                  key=secrets.token_hex(6))
    body = outlived(response, "0.2")
    assert response.headers["Location"] == f"/v1/payments/{body['id']}"
    assert (await sys_.settled(body["id"]))["status"] == "completed"  # started all the same


async def test_a_wait_on_a_processor_that_is_down_answers_202(sys_: System) -> None:
    await sys_.behave(down=True)
    wallet = await sys_.wallet(funds="20.00")
    response = await post_waiting(sys_, "/v1/payments", "1", pay_body(wallet["user_id"]),
                                  key=secrets.token_hex(6))
    pid = outlived(response, "1")["id"]
    assert (await sys_.payment(pid))["status"] in UNSETTLED  # its outcome is unknown: it waits
    await sys_.behave()
    assert (await sys_.settled(pid))["status"] == "completed"


async def failed_payment(sys_: System) -> str:
    await sys_.behave(decline_rate=1.0)
    wallet = await sys_.wallet(funds="20.00")
    pid = str((await sys_.pay(wallet["user_id"], "2.00")).json()["id"])
    await sys_.settled(pid, "failed")
    return pid


async def test_a_retry_waiting_on_a_slow_gateway_answers_202_then_completes(sys_: System) -> None:
    pid = await failed_payment(sys_)
    await sys_.behave(latency_ms=700)
    response = await post_waiting(sys_, f"/v1/payments/{pid}/retry", "0.2")
    assert outlived(response, "0.2")["manual_retries"] == 1
    assert (await sys_.settled(pid, "completed"))["status"] == "completed"


async def test_a_retry_waiting_on_a_processor_that_is_down_answers_202(sys_: System) -> None:
    pid = await failed_payment(sys_)
    await sys_.behave(down=True)
    response = await post_waiting(sys_, f"/v1/payments/{pid}/retry", "1")
    outlived(response, "1")
    await sys_.behave()
    assert (await sys_.settled(pid, "completed"))["status"] == "completed"


async def test_many_short_waits_at_once_never_answer_5xx(sys_: System) -> None:
    await sys_.behave(latency_ms=500)
    wallet = await sys_.wallet(funds="50.00")
    answers = await asyncio.gather(*[
        post_waiting(sys_, "/v1/payments", wait, pay_body(wallet["user_id"], "1.00"),
                     key=secrets.token_hex(6)) for wait in ("0", "0.05", "0.1", "0.3") * 3])
    assert all(a.status_code in (201, 202) for a in answers), [a.text for a in answers]
    for answer in answers:
        await sys_.settled(answer.json()["id"], "completed")


# --- 2. a body over MAX_BODY_BYTES ---------------------------------------------------------

FIVE_MB = json.dumps({"user_id": "u", "metadata": {"x": "a" * 5_000_000}}).encode()


def _urllib_post(url: str, key: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{url}/v1/payments", data=FIVE_MB, method="POST", headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json",
        "Idempotency-Key": secrets.token_hex(6)})
    try:
        with urllib.request.urlopen(request, timeout=30):
            raise AssertionError("a 5 MB body was accepted")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


async def test_a_5_mb_body_is_a_413_that_urllib_reads_every_time(api_url: str,
                                                                 sys_: System) -> None:
    for _ in range(4):
        status, problem = await asyncio.to_thread(_urllib_post, api_url, sys_.key)
        assert (status, problem["code"]) == (413, "PAYLOAD_TOO_LARGE")
        assert problem["request_id"]


async def test_a_5_mb_body_is_a_413_that_httpx_reads_every_time(api_url: str,
                                                                sys_: System) -> None:
    async def chunks() -> Any:  # no Content-Length: the limit is found while reading
        for start in range(0, len(FIVE_MB), 65536):
            yield FIVE_MB[start:start + 65536]

    async with httpx.AsyncClient(base_url=api_url, timeout=30, headers={
            "Authorization": f"Bearer {sys_.key}", "Content-Type": "application/json"}) as client:
        for content in (FIVE_MB, FIVE_MB, FIVE_MB, chunks(), chunks()):
            response = await client.post("/v1/payments", content=content,
                                         headers={"Idempotency-Key": secrets.token_hex(6)})
            assert response.status_code == 413, response.text
            assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
        # and the server still answers well-formed requests on the same client
        assert (await client.get("/v1/payments", params={"limit": 1})).status_code == 200


# --- 3. least privilege: tenant keys and platform operator keys ----------------------------

async def test_a_tenant_key_cannot_hold_or_use_operator_powers(sys_: System) -> None:
    _, tenant_key = await create_key(sys_.engine, tenant_id=f"t-{secrets.token_hex(3)}", name="t")
    as_tenant = {"Authorization": f"Bearer {tenant_key}"}
    for method, path, body in (("GET", "/v1/reconciliations", None),
                               ("GET", "/v1/reconciliations/findings", None),
                               ("GET", "/v1/reconciliations/rec_x", None),
                               ("POST", "/v1/reconciliations/findings/1/resolve", {"note": "n"}),
                               ("POST", "/v1/reconciliations", {})):
        answer = await sys_.api.request(method, path, json=body, headers={
            **as_tenant, "Idempotency-Key": secrets.token_hex(4)})
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json()["code"] == "OPERATOR_KEY_REQUIRED"
    # the suite's own tenant key too: every tenant scope, no operator power
    assert (await sys_.api.get("/v1/reconciliations")).json()["code"] == "OPERATOR_KEY_REQUIRED"
    assert (await sys_.operator.get("/v1/reconciliations")).status_code == 200
    # and an operator key is no tenant: it reads no tenant's payments
    denied = await sys_.operator.get("/v1/payments")
    assert (denied.status_code, denied.json()["code"]) == (403, "INSUFFICIENT_SCOPE")
    with pytest.raises(ScopeError, match="operator key"):
        await create_key(sys_.engine, tenant_id="t", name="x", scopes=["reconciliations:read"])
    with pytest.raises(ScopeError, match="tenant keys"):
        await create_operator_key(sys_.engine, name="x", scopes=["payments:read"])


def _keys_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api", "keys", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=60, check=False,
                          env=dict(os.environ, DATABASE_URL=database_url))


async def test_the_keys_command_makes_tenant_keys_by_default_and_operator_keys_apart(
        sys_: System) -> None:
    url = sys_.settings.database_url
    tenant = f"cli-{secrets.token_hex(3)}"
    made = await asyncio.to_thread(_keys_cli, url, "create", "--name", "x", "--tenant", tenant)
    assert made.returncode == 0, made.stderr
    assert "scopes: payments:write payments:read wallets:write wallets:read\n" in made.stdout
    refused = await asyncio.to_thread(_keys_cli, url, "create", "--name", "x", "--tenant", tenant,
                                      "--scopes", "payments:read,reconciliations:read")
    assert refused.returncode == 2
    assert "refused: reconciliations:read: operator scopes span every tenant" in refused.stderr
    operator = await asyncio.to_thread(_keys_cli, url, "create", "--name", "ops", "--operator")
    assert operator.returncode == 0, operator.stderr
    assert "kind: platform operator" in operator.stdout
    secret = operator.stdout.rsplit("secret (shown once): ", 1)[1].strip()
    answer = await sys_.api.get("/v1/reconciliations", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 200
    listed = (await asyncio.to_thread(_keys_cli, url, "list")).stdout
    operators, tenants = listed.split("tenant keys:")
    assert "'ops'" in operators
    assert f"tenant={tenant}" not in operators
    assert f"tenant={tenant}" in tenants
    assert "'ops'" not in tenants


# --- 4. one list shape -----------------------------------------------------------------------

SHAPE = {"items", "has_more", "next_cursor", "limit", "offset", "total"}


async def test_every_list_answers_in_one_shape_and_pages_by_cursor(sys_: System) -> None:
    wallet = await sys_.wallet(funds="30.00")
    pid = (await sys_.pay(wallet["user_id"], "1.00")).json()["id"]
    await sys_.settled(pid, "completed")
    await sys_.api.post(f"/v1/payments/{pid}/refunds", json={"amount": "0.10"},
                        headers={"Idempotency-Key": secrets.token_hex(6)})
    lists = {sys_.api: ["/v1/payments", f"/v1/payments/{pid}/events", f"/v1/payments/{pid}/refunds",
                        "/v1/wallets", f"/v1/wallets/{wallet['id']}/transactions", "/v1/events",
                        "/v1/webhook-endpoints", "/v1/webhook-deliveries",
                        f"/v1/wallets/{wallet['id']}/top-ups",
                        f"/v1/wallets/{wallet['id']}/withdrawals"],
             sys_.operator: ["/v1/reconciliations", "/v1/reconciliations/findings"]}
    for client, paths in lists.items():
        for path in paths:
            page = (await client.get(path, params={"limit": 1})).json()
            assert set(page) == SHAPE, (path, page)
            if page["has_more"]:  # the cursor leads to the next item, never the same one
                after = await client.get(path, params={"limit": 1,
                                                       "starting_after": page["next_cursor"]})
                assert after.status_code == 200, (path, after.text)
                assert after.json()["items"][0] != page["items"][0], path
                assert after.json()["total"] is None
            unknown = await client.get(path, params={"starting_after": "999999999"})
            assert (unknown.status_code, unknown.json()["code"]) == (400, "VALIDATION_ERROR"), path


async def test_walking_a_wallets_transactions_by_cursor_sees_each_once(sys_: System) -> None:
    wallet = await sys_.wallet(funds="30.00")
    for _ in range(3):
        await sys_.settled((await sys_.pay(wallet["user_id"], "1.00")).json()["id"], "completed")
    path = f"/v1/wallets/{wallet['id']}/transactions"
    everything = (await sys_.api.get(path, params={"limit": 200})).json()
    assert everything["total"] == 7  # the deposit, three payments and three fees
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = (await sys_.api.get(path, params=params)).json()
        seen += [t["id"] for t in page["items"]]
        if not page["has_more"]:
            break
        params["starting_after"] = page["next_cursor"]
    assert seen == [t["id"] for t in everything["items"]]
    both = await sys_.api.get(path, params={"offset": 1, "starting_after": str(seen[0])})
    assert both.status_code == 400


async def test_the_openapi_document_shows_the_outlived_wait_the_403s_and_the_list_shape(
        sys_: System) -> None:
    doc = (await sys_.api.get("/openapi.json")).json()
    for path in ("/v1/payments", "/v1/payments/{pid}/retry", "/v1/wallets/{wallet_id}/top-ups",
                 "/v1/wallets/{wallet_id}/withdrawals"):
        assert "Prefer: wait=N" in doc["paths"][path]["post"]["responses"]["202"]["description"]
    for path, operations in doc["paths"].items():
        if path.startswith("/v1/reconciliations"):
            for operation in operations.values():
                assert "OPERATOR_KEY_REQUIRED" in operation["responses"]["403"]["description"]
        listed = operations.get("get", {}).get("responses", {}).get("200", {})
        ref = json.dumps(listed)
        if "schemas/Page_" in ref:
            schema = doc["components"]["schemas"][ref.split("schemas/")[1].split('"')[0]]
            assert set(schema["properties"]) == SHAPE, path
    pages = [p for p, ops in doc["paths"].items() if "schemas/Page_" in json.dumps(ops.get("get", {}))]
    assert len(pages) == 13  # payments, their events and refunds, wallets, transactions, top-ups,
    # withdrawals, the events feed, webhook endpoints and deliveries, reconciliations, findings,
    # disputes
