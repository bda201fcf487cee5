"""Health: the database, Temporal, and a worker polling the payments task queue."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from api.deps import AppState, StateDep
from api.schemas import HealthPublic

router = APIRouter(tags=["operations"])


async def _database(state: AppState) -> str:
    async with state.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return "ok"


async def _temporal(state: AppState) -> str:
    await state.temporal.service_client.check_health(timeout=timedelta(seconds=2))
    return "ok"


async def workers_polling(state: AppState) -> int:
    """Workers that polled the payments task queue in the last two minutes."""
    resp = await state.temporal.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=state.temporal.namespace,
            task_queue=TaskQueue(name=state.settings.temporal_task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
        timeout=timedelta(seconds=2))
    recent = datetime.now(UTC) - timedelta(minutes=2)
    return sum(1 for p in resp.pollers if p.last_access_time.ToDatetime(UTC) > recent)


async def _worker(state: AppState) -> str:
    if await workers_polling(state):
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
