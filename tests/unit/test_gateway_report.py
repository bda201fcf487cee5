"""The fake gateway's settlement report: its records survive a restart, and the report pages
through a window by cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from fakegateway.app import Behavior, create_app


def client_for(path: str | None = None) -> httpx.AsyncClient:
    app = create_app(Behavior(fail_rate=0.0), records_path=path)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


async def charge(client: httpx.AsyncClient, key: str, amount: str = "10.00") -> dict[str, Any]:
    response = await client.post("/charges", json={"idempotency_key": key, "payment_id": f"pay_{key}",
                                             "amount": amount, "currency": "USD"})
    assert response.status_code in (200, 201), response.text  # 200: the same key again
    return dict(response.json())


async def test_records_survive_a_restart_and_the_report_pages_by_cursor(tmp_path: Path) -> None:
    path = str(tmp_path / "gateway.sqlite")
    start = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    async with client_for(path) as first:
        made = [await charge(first, f"k{i}") for i in range(5)]
        refund = await first.post("/refunds", json={"idempotency_key": "r1", "charge_id": made[0]["id"],
                                              "amount": "10.00"})
        assert refund.status_code == 201
    end = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    async with client_for(path) as again:
        assert (await charge(again, "k0"))["id"] == made[0]["id"]  # the same key, the same answer
        seen: list[dict[str, Any]] = []
        cursor = 0
        while cursor is not None:
            page = (await again.get("/reports/transactions",
                                    params={"from": start, "to": end, "cursor": cursor,
                                            "limit": 2})).json()
            assert len(page["items"]) <= 2
            seen.extend(page["items"])
            cursor = page["next_cursor"]
    assert [r["id"] for r in seen] == [m["id"] for m in made] + [refund.json()["id"]]
    assert {r["object"] for r in seen} == {"charge", "refund"}
    assert all(r["idempotency_key"] and r["amount"] and r["currency"] == "USD" for r in seen)


async def test_the_window_bounds_the_report() -> None:
    async with client_for() as gateway:
        await charge(gateway, "w1")
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        much_later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        empty = (await gateway.get("/reports/transactions",
                                   params={"from": later, "to": much_later})).json()
        assert empty == {"items": [], "next_cursor": None}
