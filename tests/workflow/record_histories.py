"""Record representative payment histories as JSON fixtures for the replay test.

    .venv/bin/python -m tests.workflow.record_histories

Run it when a workflow change is *meant* to be incompatible (after patching with
`workflow.patched`, record new fixtures beside the old ones; never delete the old ones while
workflows of that shape may still be running).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.temporal import register_search_attributes, test_server_binary
from tests.conftest import eventually
from tests.workflow.fakes import FakeSaga, decline, unavailable
from tests.workflow.test_payment_workflow import payment, status_of
from workflows.payment import PaymentWorkflow
from workflows.types import Charge, RefundRequest

HERE = Path(__file__).parent / "histories"
Handle = WorkflowHandle[PaymentWorkflow, Any]


async def happy(handle: Handle) -> None:
    await handle.result()


async def declined_then_retried(handle: Handle) -> None:
    await eventually(lambda: status_of(handle), lambda s: s == "failed")
    await handle.execute_update(PaymentWorkflow.request_retry)
    await handle.result()


async def refunded(handle: Handle) -> None:
    await eventually(lambda: status_of(handle), lambda s: s == "completed")
    await handle.execute_update(PaymentWorkflow.request_refund, RefundRequest("ref_1", 5000, "fp"))
    await handle.execute_update(PaymentWorkflow.request_refund, RefundRequest("ref_2", 0, "fp2"))
    await handle.result()


async def expired_hold(handle: Handle) -> None:
    await handle.result()


async def canceled(handle: Handle) -> None:
    await eventually(lambda: status_of(handle), lambda s: s == "failed")
    await handle.signal(PaymentWorkflow.cancel)
    await handle.result()


def scenarios() -> dict[str, tuple[FakeSaga, dict[str, Any], Callable[[Handle], Awaitable[None]]]]:
    flaky = iter([decline, lambda r: Charge("succeeded", "ch_2")])
    return {
        "happy": (FakeSaga(), {}, happy),
        "declined_then_retried": (FakeSaga(charge=lambda r: next(flaky)(r)), {}, declined_then_retried),
        "refunded": (FakeSaga(), {}, refunded),
        "expired_hold": (FakeSaga(charge=unavailable, lookup=lambda r: Charge("not_found")),
                         {"max_manual_retries": 0, "gateway_retry_max_attempts": 1000,
                          "gateway_retry_max_interval_seconds": 60}, expired_hold),
        "canceled": (FakeSaga(charge=decline), {}, canceled),
    }


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=test_server_binary())
    await register_search_attributes(env.client)
    HERE.mkdir(exist_ok=True)
    try:
        for name, (saga, policy, drive) in scenarios().items():
            queue = f"record-{uuid.uuid4()}"
            inp = payment(**policy)
            async with Worker(env.client, task_queue=queue, workflows=[PaymentWorkflow],
                              activities=saga.activities()):
                handle = await env.client.start_workflow(PaymentWorkflow.run, inp,
                                                         id=inp.payment_id, task_queue=queue)
                await drive(handle)
                history = await handle.fetch_history()
            (HERE / f"{name}.json").write_text(history.to_json())
            print(f"recorded {name}: {len(history.events)} events")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
