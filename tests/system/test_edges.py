"""The API's edges: body limits, strict JSON, request ids, bounded queries, 405 with Allow."""

from __future__ import annotations

import secrets

from tests.system.conftest import System


async def test_a_body_above_the_limit_is_refused_unread(sys_: System) -> None:
    big = b'{"user_id": "' + b"x" * 2_000_000 + b'"}'
    response = await sys_.api.post("/v1/wallets", content=big,
                                   headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()["code"]) == (413, "PAYLOAD_TOO_LARGE")

    async def chunks():  # no Content-Length: refused once the stream passes the limit
        for _ in range(40):
            yield b" " * 100_000

    streamed = await sys_.api.post("/v1/wallets", content=chunks(),
                                   headers={"Content-Type": "application/json"})
    assert (streamed.status_code, streamed.json()["code"]) == (413, "PAYLOAD_TOO_LARGE")


async def test_duplicate_keys_are_refused_by_name(sys_: System) -> None:
    wallet = await sys_.wallet(funds="10.00")
    body = ('{{"user_id": "{}", "service_id": "s", "amount": "1.00", "amount": "999999.00", '
            '"currency": "USD"}}'.format(wallet["user_id"]))
    response = await sys_.api.post("/v1/payments", content=body.encode(), headers={
        "Content-Type": "application/json", "Idempotency-Key": secrets.token_hex(6)})
    assert (response.status_code, response.json()["code"]) == (400, "DUPLICATE_KEY")
    assert "'amount'" in response.json()["detail"]
    listed = (await sys_.api.get("/v1/payments", params={"user_id": wallet["user_id"]})).json()
    assert listed["items"] == []  # nothing was created


async def test_every_unparsable_body_is_malformed_json(sys_: System) -> None:
    for body in (b"{", b"[" * 100_000 + b"]" * 100_000, b'{"a": 1,}', b"\xff\xfe"):
        response = await sys_.api.post("/v1/wallets", content=body,
                                       headers={"Content-Type": "application/json"})
        assert (response.status_code, response.json()["code"]) == (400, "MALFORMED_JSON"), body[:20]


async def test_request_ids_are_echoed_and_quoted_in_problems(sys_: System) -> None:
    mine = await sys_.api.get("/v1/payments/pay_nope", headers={"Request-Id": "client-123"})
    assert mine.headers["Request-Id"] == "client-123"
    assert mine.json()["request_id"] == "client-123"
    made = await sys_.api.get("/v1/wallets")
    assert made.headers["Request-Id"].startswith("req_")
    odd = await sys_.api.get("/v1/wallets", headers={"Request-Id": "not ok!"})
    assert odd.headers["Request-Id"].startswith("req_")  # unusable ids are replaced


async def test_queries_out_of_range_name_the_parameter(sys_: System) -> None:
    for path, params, field in (
            ("/v1/payments", {"offset": "341991851578595326558208"}, "offset"),
            ("/v1/webhook-deliveries", {"offset": "1057153409900436127744"}, "offset"),
            ("/v1/payments", {"limit": "-1"}, "limit"),
            ("/v1/payments", {"created_to": "0.5"}, "created_to")):
        response = await sys_.api.get(path, params=params)
        assert response.status_code == 400, (path, params, response.text)
        assert response.json()["code"] == "VALIDATION_ERROR"
        assert field in [e["field"] for e in response.json()["errors"]], response.json()


async def test_an_unknown_method_answers_405_with_allow(sys_: System) -> None:
    response = await sys_.api.request("TRACE", "/v1/payments")
    assert response.status_code == 405
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    assert response.headers["content-type"].startswith("application/problem+json")


