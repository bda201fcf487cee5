"""Health: the database, Temporal, and a worker polling the payments task queue."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import AppState, StateDep
from api.schemas import HealthPublic
from db.engine import ping
from temporal_client.ask import workers_polling

router = APIRouter(tags=["operations"])


async def _database(state: AppState) -> str:
    await ping(state.engine)
    return "ok"


async def _temporal(state: AppState) -> str:
    await state.temporal.service_client.check_health(timeout=timedelta(seconds=2))
    return "ok"


async def _worker(state: AppState) -> str:
    if await workers_polling(state.temporal, state.settings.temporal_task_queue):
        return "ok"
    return "no worker is polling the task queue"


async def _check(coro: object) -> str:
    try:
        return await asyncio.wait_for(coro, timeout=3)  # type: ignore[arg-type]
    except Exception as err:
        return f"error: {type(err).__name__}"


@router.get("/health", response_model=HealthPublic,
            responses={503: {"model": HealthPublic, "description": "a dependency is down"}})
async def health(state: StateDep) -> JSONResponse:
    checks = dict(zip(("database", "temporal", "worker"), await asyncio.gather(
        _check(_database(state)), _check(_temporal(state)), _check(_worker(state))), strict=True))
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                        status_code=200 if ok else 503)
