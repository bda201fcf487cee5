"""The processor inbox's relay (worker/inbox.py) over stand-ins for the database and Temporal:
a batch's sagas are reached at once, each saga's events in the order they came, and what was
carried is written in one statement even when one saga could not be reached."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from worker import inbox


class Engine:
    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[None]:
        yield None

    begin = connect


def row(n: int, subject: str) -> Any:
    return SimpleNamespace(id=n, event_id=f"evt_{n}", type="charge.succeeded", connector="primary",
                           subject=subject, payload={"data": {"object": {
                               "id": f"ch_{n}", "status": "succeeded"}}})


class Temporal:
    def __init__(self, slow: str, broken: str | None = None) -> None:
        self.slow, self.broken, self.calls = slow, broken, []  # type: ignore[var-annotated]
        self.release = asyncio.Event()

    def get_workflow_handle(self, subject: str) -> Any:
        async def execute_update(_name: str, event: Any, *, id: str, result_type: type) -> str:
            self.calls.append((subject, id))
            if subject == self.broken:
                raise RuntimeError("Temporal away")
            if subject == self.slow and id == "evt_1":
                await self.release.wait()  # the first saga's first event takes its time
            elif subject != self.slow:
                self.release.set()  # ... which holds up no other saga
            return "applied"
        return SimpleNamespace(execute_update=execute_update)


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> list[list[tuple[int, str, str]]]:
    written: list[list[tuple[int, str, str]]] = []
    rows = [row(1, "pay_a"), row(2, "pay_b"), row(3, "pay_a"), row(4, "tup_c")]

    real_waiting, real_settle = inbox.processor_events.waiting, inbox.processor_events.settle

    # Only this test's calls are stood in for (its Engine's connection is None): the system
    # tests' worker runs its inbox relay in this same process and event loop, and a pass of it
    # during this test once wrote an empty settle here.
    async def waiting(conn: Any, limit: int) -> Sequence[Any]:
        return rows if conn is None else await real_waiting(conn, limit)

    async def settle(conn: Any, ended: list[tuple[int, str, str]]) -> None:
        if conn is not None:
            return await real_settle(conn, ended)
        written.append(sorted(ended))
        return None

    monkeypatch.setattr(inbox.processor_events, "waiting", waiting)
    monkeypatch.setattr(inbox.processor_events, "settle", settle)
    return written


async def test_sagas_are_reached_at_once_each_one_in_order(settled: list[Any]) -> None:
    temporal = Temporal(slow="pay_a")
    carried = await asyncio.wait_for(inbox.carry_once(Engine(), temporal, "q"), 5)  # type: ignore[arg-type]
    assert carried == 4
    of_a = [event for subject, event in temporal.calls if subject == "pay_a"]
    assert of_a == ["evt_1", "evt_3"]  # in the order they came
    assert settled == [[(1, "delivered", "applied"), (2, "delivered", "applied"),
                        (3, "delivered", "applied"), (4, "delivered", "applied")]]


async def test_what_was_carried_is_kept_when_one_saga_cannot_be_reached(settled: list[Any]) -> None:
    temporal = Temporal(slow="none", broken="pay_b")
    with pytest.raises(RuntimeError, match="Temporal away"):
        await inbox.carry_once(Engine(), temporal, "q")  # type: ignore[arg-type]
    # the others' outcomes are written; pay_b's event stays `received`, carried next time
    assert settled == [[(1, "delivered", "applied"), (3, "delivered", "applied"),
                        (4, "delivered", "applied")]]
