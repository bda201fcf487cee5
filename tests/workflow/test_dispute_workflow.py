"""The dispute saga over its whole life (75 days and more), with time skipping: evidence on day
6, reminders, no response until the deadline, won, lost, an acceptance, `dispute.closed`
arriving before `dispute.created`, the same event twice, a decision whose event was lost."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.dispute import (
    DisputeEvent,
    DisputeFacts,
    DisputeOpened,
    DisputeStart,
    DisputeStep,
    Evidence,
    OpenDispute,
)
from workflows.dispute import DisputeWorkflow
from workflows.search import DISPUTE_STATUS, DISPUTE_TOP_UP_ID


class FakeDispute:
    """The dispute's activities, recorded; `top_up` False makes it a payment's (unexpected)."""

    def __init__(self, *, top_up: bool = True, looked_up: str | None = None) -> None:
        self.top_up, self.looked_up = top_up, looked_up
        self.calls: list[tuple[str, Any]] = []

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="open_dispute")
        async def open_dispute(step: OpenDispute) -> DisputeOpened:
            self.calls.append(("open_dispute", step))
            return DisputeOpened("tup_1" if self.top_up else None, not self.top_up)

        @activity.defn(name="remind_dispute")
        async def remind(step: DisputeStep) -> None:
            self.calls.append((f"remind_dispute {step.reminder_hours}h", step))

        @activity.defn(name="submit_dispute_evidence")
        async def evidence(step: DisputeStep) -> str:
            self.calls.append(("submit_dispute_evidence", step))
            return "under_review"

        @activity.defn(name="decide_dispute")
        async def decide(step: DisputeStep) -> str:
            self.calls.append((f"decide_dispute {step.status} ({step.reason})", step))
            return step.status

        @activity.defn(name="look_up_dispute")
        async def look_up(step: DisputeStep) -> str | None:
            self.calls.append(("look_up_dispute", step))
            return self.looked_up

        return [open_dispute, remind, evidence, decide, look_up]


def facts(env_now: Any, status: str = "needs_response", due_days: int = 7) -> DisputeFacts:
    due = (env_now + timedelta(days=due_days)).isoformat().replace("+00:00", "Z")
    return DisputeFacts("dp_1", "ch_1", "tup_1", "40.80", "15.00", "USD", "fraudulent", status, due)


@pytest.fixture
async def saga(env: WorkflowEnvironment) -> AsyncIterator[tuple[str, FakeDispute]]:
    queue = f"q-{uuid.uuid4()}"
    fake = FakeDispute()
    async with Worker(env.client, task_queue=queue, workflows=[DisputeWorkflow],
                      activities=fake.activities()):
        yield queue, fake


async def begin(env: WorkflowEnvironment, queue: str,
                first: str = "dispute.created", status: str = "needs_response"
                ) -> tuple[WorkflowHandle[Any, Any], str]:
    did = f"dsp_{uuid.uuid4().hex[:12]}"
    handle = await env.client.start_workflow(
        DisputeWorkflow.run, DisputeStart(did, "primary", "dp_1"), id=did, task_queue=queue)
    answer = await handle.execute_update(
        DisputeWorkflow.processor_event,
        DisputeEvent("evt_1", first, facts(await env.get_current_time(), status)), id="evt_1")
    return handle, answer


async def closed(env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any], status: str,
                 event_id: str = "evt_9") -> str:
    event = DisputeEvent(event_id, "dispute.closed", facts(await env.get_current_time(), status))
    return await handle.execute_update(DisputeWorkflow.processor_event, event, id=event_id)


async def test_evidence_on_day_6_then_won_after_two_months(
        env: WorkflowEnvironment, saga: tuple[str, FakeDispute]) -> None:
    queue, fake = saga
    handle, answer = await begin(env, queue)
    assert answer == "applied"
    await env.sleep(timedelta(days=5, hours=12))  # past the 72 h reminder
    assert await handle.execute_update(DisputeWorkflow.submit_evidence,
                                       Evidence("receipt and delivery proof", ["f_1"])) == "under_review"
    await env.sleep(timedelta(days=64))
    assert await closed(env, handle, "won") == "applied"
    assert await handle.result() == "won"
    assert fake.names() == ["open_dispute", "remind_dispute 72h", "submit_dispute_evidence",
                            *["look_up_dispute"] * 9, "decide_dispute won (the network's decision)"]
    attributes = (await handle.describe()).typed_search_attributes
    assert (attributes.get(DISPUTE_STATUS), attributes.get(DISPUTE_TOP_UP_ID)) == ("won", "tup_1")


async def test_no_response_by_the_deadline_loses_it_after_both_reminders(
        env: WorkflowEnvironment, saga: tuple[str, FakeDispute]) -> None:
    queue, fake = saga
    handle, _ = await begin(env, queue)
    assert await handle.result() == "lost"
    assert fake.names() == ["open_dispute", "remind_dispute 72h", "remind_dispute 24h",
                            "decide_dispute lost (no_response)"]
    # it takes nothing once decided (the workflow has ended)
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):
        await handle.execute_update(DisputeWorkflow.accept)


async def test_evidence_then_lost(env: WorkflowEnvironment, saga: tuple[str, FakeDispute]) -> None:
    queue, fake = saga
    handle, _ = await begin(env, queue)
    await handle.execute_update(DisputeWorkflow.submit_evidence, Evidence("proof"))
    with pytest.raises(WorkflowUpdateFailedError):  # once
        await handle.execute_update(DisputeWorkflow.submit_evidence, Evidence("more proof"))
    await closed(env, handle, "lost")
    assert await handle.result() == "lost"
    assert fake.names() == ["open_dispute", "submit_dispute_evidence",
                            "decide_dispute lost (the network's decision)"]


async def test_an_acceptance_loses_it_at_once(
        env: WorkflowEnvironment, saga: tuple[str, FakeDispute]) -> None:
    queue, fake = saga
    handle, _ = await begin(env, queue)
    assert await handle.execute_update(DisputeWorkflow.accept) == "lost"
    assert await handle.result() == "lost"
    assert fake.names() == ["open_dispute", "decide_dispute lost (accepted)"]


async def test_closed_before_created_opens_then_decides_and_the_same_event_twice_is_once(
        env: WorkflowEnvironment, saga: tuple[str, FakeDispute]) -> None:
    queue, fake = saga
    handle, answer = await begin(env, queue, first="dispute.closed", status="won")
    assert answer == "applied"
    assert await handle.result() == "won"
    assert fake.names() == ["open_dispute", "decide_dispute won (the network's decision)"]


async def test_a_repeated_event_is_applied_once(
        env: WorkflowEnvironment, saga: tuple[str, FakeDispute]) -> None:
    queue, fake = saga
    handle, _ = await begin(env, queue)
    await handle.execute_update(DisputeWorkflow.submit_evidence, Evidence("proof"))
    assert await closed(env, handle, "won", "evt_5") == "applied"
    assert await closed(env, handle, "won", "evt_5") == "applied"  # Temporal's dedupe: the same
    assert await handle.result() == "won"
    assert fake.names().count("decide_dispute won (the network's decision)") == 1


async def test_a_decision_whose_event_was_lost_is_found_by_the_weekly_lookup(
        env: WorkflowEnvironment) -> None:
    queue = f"q-{uuid.uuid4()}"
    fake = FakeDispute(looked_up="won")
    async with Worker(env.client, task_queue=queue, workflows=[DisputeWorkflow],
                      activities=fake.activities()):
        handle, _ = await begin(env, queue)
        await handle.execute_update(DisputeWorkflow.submit_evidence, Evidence("proof"))
        assert await handle.result() == "won"
    assert fake.names() == ["open_dispute", "submit_dispute_evidence", "look_up_dispute",
                            "decide_dispute won (the network's decision)"]


async def test_a_dispute_on_a_payments_charge_is_recorded_for_an_operator(
        env: WorkflowEnvironment) -> None:
    queue = f"q-{uuid.uuid4()}"
    fake = FakeDispute(top_up=False)
    async with Worker(env.client, task_queue=queue, workflows=[DisputeWorkflow],
                      activities=fake.activities()):
        handle, _ = await begin(env, queue)
        assert (await handle.result()).startswith("unexpected")
    assert fake.names() == ["open_dispute"]
