"""`python -m worker`: run a payments worker until interrupted (TEMPORAL_*, DATABASE_URL, GATEWAY_URL)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from temporalio.client import Client

from db.engine import make_engine
from settings import get_settings
from worker.main import build_worker, gateway_client
from worker.outbox import run_relay


async def main() -> None:
    s = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    client = await Client.connect(s.temporal_address, namespace=s.temporal_namespace)
    engine = make_engine(s.database_url, pool_size=s.db_pool_size)
    async with gateway_client(s) as http:
        worker = build_worker(client, engine, http, s)
        logging.getLogger("paysaga.worker").info("worker polling %s", s.temporal_task_queue)
        relay = asyncio.create_task(run_relay(engine))
        try:
            await worker.run()
        finally:
            relay.cancel()
            await engine.dispose()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
