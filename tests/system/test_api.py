"""The HTTP contract: problem+json errors, idempotency, authentication, tenants, lists."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from db.api_keys import create_key
from tests.system.conftest import System

PROBLEM = "application/problem+json"


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == code
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    return dict(body)


async def test_missing_and_malformed_idempotency_keys_are_400(sys_: System) -> None:
    body = {"user_id": "u", "service_id": "s", "amount": "1.00", "currency": "USD"}
    problem(await sys_.api.post("/v1/payments", json=body), 400, "IDEMPOTENCY_KEY_MISSING")
    problem(await sys_.api.post("/v1/payments", json=body, headers={"Idempotency-Key": "a b"}),
            400, "IDEMPOTENCY_KEY_INVALID")
    problem(await sys_.api.post("/v1/payments", json=body,
                                headers={"Idempotency-Key": "k" * 256}), 400, "IDEMPOTENCY_KEY_INVALID")


@pytest.mark.parametrize(("amount", "currency", "field"), [
    ("-100", "USD", "amount"), ("0", "USD", "amount"), ("1.001", "USD", "amount"),
    ("10.5", "JPY", "amount"), ("abc", "USD", "amount"), (True, "USD", "amount"),
    ("5000000", "USD", "amount"), ("10", "MEXICAN", "currency"), ("10", "usd", "currency"),
    ("10", "ZZZ", "currency"),
])
async def test_bad_payment_bodies_are_400_with_the_field(sys_: System, amount: object,
                                                         currency: str, field: str) -> None:
    body = {"user_id": "u", "service_id": "s", "amount": amount, "currency": currency}
    response = await sys_.api.post("/v1/payments", json=body,
                                   headers={"Idempotency-Key": secrets.token_hex(6)})
    err = problem(response, 400, "VALIDATION_ERROR")
    assert field in [e["field"] for e in err["errors"]]


async def test_json_numbers_are_parsed_exactly(sys_: System) -> None:
    wallet = await sys_.wallet(funds="100")
    raw = b'{"user_id": "%s", "service_id": "s", "amount": 10.10, "currency": "USD"}' % (
        wallet["user_id"].encode())
    response = await sys_.api.post("/v1/payments", content=raw, headers={
        "Idempotency-Key": secrets.token_hex(6), "Content-Type": "application/json"})
    assert response.status_code == 202
    assert (response.json()["amount"], response.json()["fee"]) == ("10.10", "0.20")


async def test_malformed_json_wrong_types_and_unknown_fields_are_400(sys_: System) -> None:
    headers = {"Idempotency-Key": "x1", "Content-Type": "application/json"}
    problem(await sys_.api.post("/v1/payments", content=b"{not json", headers=headers),
            400, "MALFORMED_JSON")
    err = problem(await sys_.api.post("/v1/payments", json={"user_id": 5}, headers=headers),
                  400, "VALIDATION_ERROR")
    assert {"user_id", "service_id", "amount", "currency"} <= {
        e["field"] for e in err["errors"]}
    problem(await sys_.api.post("/v1/payments", json={
        "user_id": "u", "service_id": "s", "amount": "1", "currency": "USD", "surprise": 1},
        headers=headers), 400, "VALIDATION_ERROR")
    problem(await sys_.api.get("/v1/payments", params={"limit": 0}), 400, "VALIDATION_ERROR")
    problem(await sys_.api.get("/v1/payments", params={"status": "bogus"}), 400, "VALIDATION_ERROR")


async def test_same_key_same_body_replays_and_different_body_is_422(sys_: System) -> None:
    wallet = await sys_.wallet(funds="100.00")
    first = await sys_.pay(wallet["user_id"], "10.00", key="replay-me")
    assert first.status_code == 202
    again = await sys_.pay(wallet["user_id"], "10.0", key="replay-me")  # same amount, other spelling
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    problem(await sys_.pay(wallet["user_id"], "99.00", key="replay-me"), 422,
            "IDEMPOTENCY_KEY_REUSED")
    await sys_.settled(first.json()["id"])
    late = await sys_.pay(wallet["user_id"], "10.00", key="replay-me")
    assert late.status_code == 200
    assert late.json() == first.json()  # the original answer, whatever happened since
    assert (await sys_.payment(first.json()["id"]))["status"] == "completed"
    problem(await sys_.pay(wallet["user_id"], "11.00", key="replay-me"), 422,
            "IDEMPOTENCY_KEY_REUSED")
    assert len(await sys_.charges(first.json()["id"])) == 1


async def test_a_payment_is_readable_right_after_its_202(sys_: System) -> None:
    wallet = await sys_.wallet(funds="50.00")
    created = (await sys_.pay(wallet["user_id"], "1.00")).json()
    response = await sys_.api.get(f"/v1/payments/{created['id']}")
    assert response.status_code == 200
    assert response.json()["id"] == created["id"]


async def test_deposits_are_idempotent(sys_: System) -> None:
    wallet = await sys_.wallet()
    url = f"/v1/wallets/{wallet['id']}/deposits"
    problem(await sys_.api.post(url, json={"amount": "5"}), 400, "IDEMPOTENCY_KEY_MISSING")
    results = await asyncio.gather(*(sys_.api.post(url, json={"amount": "25.00"},
                                                   headers={"Idempotency-Key": "dep-once"})
                                     for _ in range(10)))
    assert sorted(r.status_code for r in results) == [200] * 9 + [201]
    assert len({r.json()["id"] for r in results}) == 1
    problem(await sys_.api.post(url, json={"amount": "26.00"},
                                headers={"Idempotency-Key": "dep-once"}), 422, "IDEMPOTENCY_KEY_REUSED")
    after = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()
    assert after["balance"] == "25.00"
    problem(await sys_.api.post(url, json={"amount": "0.001"},
                                headers={"Idempotency-Key": "dep-x"}), 400, "VALIDATION_ERROR")


async def test_wallet_creation_is_idempotent_per_user_and_currency(sys_: System) -> None:
    body = {"user_id": f"u-{secrets.token_hex(3)}", "currency": "EUR"}
    first = await sys_.api.post("/v1/wallets", json=body)
    second = await sys_.api.post("/v1/wallets", json=body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    listed = (await sys_.api.get("/v1/wallets", params={"user_id": body["user_id"]})).json()
    assert [w["id"] for w in listed["items"]] == [first.json()["id"]]
    problem(await sys_.api.get("/v1/wallets/wal_nope"), 404, "WALLET_NOT_FOUND")
    problem(await sys_.api.get("/v1/payments/pay_nope"), 404, "PAYMENT_NOT_FOUND")


async def test_authentication_scopes_and_tenant_isolation(sys_: System) -> None:
    wallet = await sys_.wallet(funds="10.00")
    pid = (await sys_.pay(wallet["user_id"], "1.00")).json()["id"]
    anonymous = {"Authorization": ""}
    problem(await sys_.api.get("/v1/payments", headers=anonymous), 401, "UNAUTHENTICATED")
    problem(await sys_.api.get("/v1/payments", headers={"Authorization": "Bearer sk_wrong"}),
            401, "INVALID_API_KEY")
    _, reader = await create_key(sys_.engine, tenant_id=sys_.tenant, name="reader",
                                 scopes=["payments:read"])
    as_reader = {"Authorization": f"Bearer {reader}"}
    assert (await sys_.api.get(f"/v1/payments/{pid}", headers=as_reader)).status_code == 200
    problem(await sys_.api.post("/v1/payments", json={}, headers=as_reader), 403,
            "INSUFFICIENT_SCOPE")
    _, other = await create_key(sys_.engine, tenant_id="someone-else", name="other",
                                scopes=["payments:read", "wallets:read"])
    as_other = {"Authorization": f"Bearer {other}"}
    problem(await sys_.api.get(f"/v1/payments/{pid}", headers=as_other), 404, "PAYMENT_NOT_FOUND")
    problem(await sys_.api.get(f"/v1/wallets/{wallet['id']}", headers=as_other), 404,
            "WALLET_NOT_FOUND")
    assert (await sys_.api.get("/v1/payments", headers=as_other)).json()["total"] == 0
    assert (await sys_.api.get("/health", headers=anonymous)).status_code == 200


async def test_list_filters_and_pagination(sys_: System) -> None:
    await sys_.behave(decline_rate=1.0)
    wallet = await sys_.wallet(funds="100.00")
    ids = [(await sys_.pay(wallet["user_id"], "1.00")).json()["id"] for _ in range(3)]
    for pid in ids:
        await sys_.settled(pid)
    mine = (await sys_.api.get("/v1/payments", params={"user_id": wallet["user_id"]})).json()
    assert mine["total"] == 3
    assert [p["id"] for p in mine["items"]] == list(reversed(ids))  # newest first
    failed = (await sys_.api.get("/v1/payments", params={
        "user_id": wallet["user_id"], "status": "failed", "limit": 2, "offset": 1})).json()
    assert (failed["total"], failed["limit"], failed["offset"]) == (3, 2, 1)
    assert [p["id"] for p in failed["items"]] == list(reversed(ids))[1:]
    none = (await sys_.api.get("/v1/payments", params={
        "user_id": wallet["user_id"], "status": "completed"})).json()
    assert none["total"] == 0


async def test_health_reports_each_dependency(sys_: System) -> None:
    response = await sys_.api.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok",
                               "checks": {"database": "ok", "temporal": "ok", "worker": "ok"}}


async def test_openapi_documents_every_route_and_its_errors(sys_: System) -> None:
    doc = (await sys_.api.get("/openapi.json")).json()
    create = doc["paths"]["/v1/payments"]["post"]
    assert {"202", "200", "400", "401", "403", "422"} <= set(create["responses"])
    assert "application/problem+json" in create["responses"]["400"]["content"]
    for path in ("/v1/wallets", "/v1/wallets/{wallet_id}/deposits", "/v1/payments/{pid}/retry",
                 "/v1/payments/{pid}/cancel", "/v1/payments/{pid}/events", "/health"):
        assert path in doc["paths"]


async def test_api_keys_are_created_and_revoked_from_the_command_line(sys_: System) -> None:
    env = {**os.environ, "DATABASE_URL": sys_.settings.database_url}

    async def cli(*args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "api", "keys", *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        return out.decode()

    created = await cli("create", "--name", "cli-test", "--tenant", sys_.tenant,
                        "--scopes", "wallets:read")
    fields = dict(line.split(": ", 1) for line in created.splitlines())
    secret, key_id = fields["secret (shown once)"], fields["key id"]
    as_cli = {"Authorization": f"Bearer {secret}"}
    assert (await sys_.api.get("/v1/wallets", headers=as_cli)).status_code == 200
    problem(await sys_.api.get("/v1/payments", headers=as_cli), 403, "INSUFFICIENT_SCOPE")
    async with sys_.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT key_hash FROM api_keys WHERE id = :id"),
                                     {"id": key_id})).scalar_one()
    assert secret not in stored  # only the hash is kept
    await cli("revoke", key_id)
    sys_.api._transport.app.state.paysaga.key_cache.clear()  # type: ignore[attr-defined]
    problem(await sys_.api.get("/v1/wallets", headers=as_cli), 401, "INVALID_API_KEY")


async def test_nul_characters_are_refused_not_a_500(sys_: System) -> None:
    problem(await sys_.api.get("/v1/wallets", params={"user_id": "a\x00b"}), 400, "INVALID_CHARACTER")
    wallet = await sys_.wallet(funds="10.00")
    response = await sys_.api.post("/v1/payments", json={
        "user_id": wallet["user_id"], "service_id": "s", "amount": "1.00", "currency": "USD",
        "description": "nul \x00 here"}, headers={"Idempotency-Key": secrets.token_hex(6)})
    problem(response, 400, "INVALID_CHARACTER")


async def test_requests_that_arrive_together_share_one_key_lookup(
        sys_: System, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the key's cached lookup has expired under a burst, the burst waits for one lookup:
    it used to make one each, and opened connections beyond the pool's to do it."""
    import api.deps

    looked_up: list[str] = []
    real = api.deps.authenticate

    async def counted(engine: Any, secret: str) -> Any:
        looked_up.append(secret)
        return await real(engine, secret)

    monkeypatch.setattr(api.deps, "authenticate", counted)
    sys_.api._transport.app.state.paysaga.key_cache.clear()  # type: ignore[attr-defined]
    answers = await asyncio.gather(*(sys_.api.get("/v1/wallets") for _ in range(20)))
    assert [a.status_code for a in answers] == [200] * 20
    assert len(looked_up) == 1
