"""The wing's registration: its workflows and activities, beside the live ones on one worker.
(Kept out of legacy/__init__.py: the workflow sandbox imports that package.)"""


from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from legacy.activities import LegacyLedgerActivities
from legacy.payment_v1 import PaymentWorkflowV1

WORKFLOWS: list[type] = [PaymentWorkflowV1]


def activities(engine: AsyncEngine) -> list[Callable[..., Any]]:
    steps = LegacyLedgerActivities(engine)
    return [steps.open_payment, steps.reserve_funds, steps.begin_retry, steps.post_refund]


def register(engine: AsyncEngine) -> dict[str, list[Any]]:
    """The wing's workflows and activities, for `Worker(**...)` beside the live ones."""
    return {"workflows": WORKFLOWS, "activities": activities(engine)}
