"""What the API, the activities and the tools ask Temporal about a workflow from outside it.

    described(client, id)        its description, or None when no such workflow ever ran
    workflow_status(client, id)  Running, Completed, ... or None
    workflow_running(client, id) True only while it runs
    workers_polling(client, q)   workers that polled the task queue in the last two minutes
    within(seconds, call)        a call's result if it comes in time, else Outlived

The Temporal SDK turns a cancelled update call into its own exception
(`WorkflowUpdateRPCTimeoutOrCancelledError`), not `TimeoutError`, so `asyncio.wait_for` around
it let a 500 through; `within` consumes whatever the cancelled call raises.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError, RPCStatusCode

T = TypeVar("T")


async def described(client: Client, workflow_id: str) -> WorkflowExecutionDescription | None:
    try:
        return await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def workflow_status(client: Client, workflow_id: str) -> WorkflowExecutionStatus | None:
    desc = await described(client, workflow_id)
    return None if desc is None else desc.status


async def workflow_running(client: Client, workflow_id: str) -> bool:
    return await workflow_status(client, workflow_id) == WorkflowExecutionStatus.RUNNING


async def workers_polling(client: Client, task_queue: str) -> int:
    resp = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
        timeout=timedelta(seconds=2))
    recent = datetime.now(UTC) - timedelta(minutes=2)
    return sum(1 for p in resp.pollers if p.last_access_time.ToDatetime(UTC) > recent)


class Outlived(Exception):
    """The call did not finish within the client's wait (it was cancelled, not failed)."""


async def within(seconds: float, call: Awaitable[T]) -> T:
    """`call`'s result if it finishes within `seconds`; else cancel it and raise Outlived.

    Whatever the cancelled call raises while it unwinds (the SDK's own RPC-cancelled error) is
    consumed here; a call that finishes in time but reports an update RPC timeout is Outlived
    too (the server's long poll gave up before the outcome)."""
    task = asyncio.ensure_future(call)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        await asyncio.wait({task})
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it as never retrieved
        raise Outlived
    try:
        return task.result()
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise Outlived from None
