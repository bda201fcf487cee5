"""One ledger step, as every saga runs it (workflow code): a local activity on our own database,
retried with backoff until it works (workflows/policies.py)."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.saga import SagaPolicy
    from workflows import policies


async def ledger(policy: SagaPolicy, name: str, arg: Any, result_type: type | None = None, *,
                 summary: str) -> Any:
    return await workflow.execute_local_activity(
        name, arg, result_type=result_type, start_to_close_timeout=policies.ledger_timeout(),
        retry_policy=policies.ledger_retry(policy), summary=summary)
