"""The pool without SQLAlchemy's pre-ping: a connection the server closed (a restart, an idle
timeout, an operator's pg_terminate_backend) is replaced on checkout, so the next request does
not fail on it, and no checkout costs a round trip."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy import text

from db.engine import make_engine


async def test_a_connection_the_server_closed_is_replaced_on_checkout(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            old = (await conn.get_raw_connection()).driver_connection
        assert old is not None
        killer = await asyncpg.connect(database_url)
        try:
            await killer.execute("SELECT pg_terminate_backend($1)", old.get_server_pid())
        finally:
            await killer.close()
        deadline = asyncio.get_running_loop().time() + 5
        while not old.is_closed():  # the socket tells asyncpg
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
            assert (await conn.get_raw_connection()).driver_connection is not old
    finally:
        await engine.dispose()
