"""Per-API-key rate limits live in PostgreSQL: two API processes share one bucket per key."""

from __future__ import annotations

import secrets
from contextlib import AsyncExitStack

import httpx

from api.app import create_app
from db.api_keys import create_key
from tests.system.conftest import System


async def apis(sys_: System, key: str, stack: AsyncExitStack, count: int) -> list[httpx.AsyncClient]:
    """`count` API processes' worth of apps, with a tight write limit: 1/s, burst 3."""
    settings = sys_.settings.model_copy(update={
        "rate_limit_write_per_second": 1.0, "rate_limit_write_burst": 3})
    made = []
    for _ in range(count):
        app = create_app(settings, temporal=sys_.temporal.client)
        await stack.enter_async_context(app.router.lifespan_context(app))
        made.append(await stack.enter_async_context(httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api",
            headers={"Authorization": f"Bearer {key}"})))
    return made


async def test_a_key_over_its_limit_gets_429_with_retry_after_on_every_process(sys_: System) -> None:
    _, key = await create_key(sys_.engine, tenant_id=sys_.tenant, name="limited",
                              scopes=["wallets:write", "wallets:read"])
    async with AsyncExitStack() as stack:
        first, second = await apis(sys_, key, stack, 2)
        answers = []
        for i in range(5):  # alternate between the two processes
            api = (first, second)[i % 2]
            answers.append(await api.post("/v1/wallets", json={
                "user_id": f"rl-{secrets.token_hex(3)}", "currency": "USD"}))
        codes = [a.status_code for a in answers]
        assert codes[:3] == [201, 201, 201]  # the burst
        assert 429 in codes[3:]  # ... then the shared bucket is empty, on either process
        limited = next(a for a in answers if a.status_code == 429)
        assert limited.json()["code"] == "RATE_LIMITED"
        assert int(limited.headers["Retry-After"]) >= 1
        # reads have their own bucket; other keys are not affected
        assert (await first.get("/v1/wallets")).status_code == 200
        assert (await sys_.api.post("/v1/wallets", json={
            "user_id": f"rl-{secrets.token_hex(3)}", "currency": "USD"})).status_code == 201
