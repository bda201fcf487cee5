"""Processors' events in, as stored: each verified event once per connector and event id, the
ones still to carry to their saga, and how each one ended (delivered with the saga's answer, or
unmatched: about nothing paysaga knows, kept and reported)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

CHANNEL = "processor_events"


async def store(conn: AsyncConnection, connector: str, event_id: str, kind: str,
                subject: str | None, payload: dict[str, Any]) -> bool:
    """Keep the event; False when it was kept before (a processor's retry, a duplicate). A kept
    event wakes the relays (`NOTIFY processor_events`, sent when the transaction commits), in
    the same statement."""
    made = await conn.execute(text(
        "WITH made AS (INSERT INTO processor_events (connector, event_id, type, subject, payload) "
        "VALUES (:c, :e, :t, :s, CAST(:p AS JSONB)) ON CONFLICT (connector, event_id) DO NOTHING "
        "RETURNING id) SELECT pg_notify(:channel, '') FROM made"),
        {"c": connector, "e": event_id, "t": kind, "s": subject, "p": json.dumps(payload),
         "channel": CHANNEL})
    return made.first() is not None


async def waiting(conn: AsyncConnection, limit: int = 100) -> Sequence[Any]:
    """Events not yet carried to their saga, oldest first: (id, connector, event_id, type,
    subject, payload)."""
    return (await conn.execute(text(
        "SELECT id, connector, event_id, type, subject, payload FROM processor_events "
        "WHERE status = 'received' ORDER BY id LIMIT :n"), {"n": limit})).all()


async def settle(conn: AsyncConnection, ended: Sequence[tuple[int, str, str]]) -> None:
    """How each event ended, (id, status, outcome), in one statement."""
    if not ended:
        return
    ids, statuses, outcomes = zip(*ended, strict=True)
    await conn.execute(text(
        "UPDATE processor_events e SET status = x.s, outcome = x.o, delivered_at = now() "
        "FROM unnest(CAST(:ids AS BIGINT[]), CAST(:ss AS TEXT[]), CAST(:os AS TEXT[])) "
        "AS x(id, s, o) WHERE e.id = x.id"),
        {"ids": list(ids), "ss": list(statuses), "os": [o[:500] for o in outcomes]})


class Listener:
    """Calls `wake` whenever an event is kept, on a connection of its own, until closed (or the
    connection is lost: `alive` then says so, and the relay listens again)."""

    def __init__(self, conn: AsyncConnection, raw: Any) -> None:
        self._conn, self._raw = conn, raw

    @classmethod
    async def open(cls, engine: AsyncEngine, wake: Callable[[], None]) -> Listener:
        conn = await engine.connect()
        try:
            raw: Any = (await conn.get_raw_connection()).driver_connection
            await raw.add_listener(CHANNEL, lambda *_: wake())
        except BaseException:
            await conn.close()
            raise
        return cls(conn, raw)

    def alive(self) -> bool:
        return not self._raw.is_closed()

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # the connection may be gone already
            await self._conn.invalidate()
        with contextlib.suppress(Exception):
            await self._conn.close()


async def known_subject(conn: AsyncConnection, subject: str) -> bool:
    """A payment or a top-up by this id exists."""
    return (await conn.execute(text(
        "SELECT 1 FROM payments WHERE id = :s UNION ALL SELECT 1 FROM transfers WHERE id = :s"),
        {"s": subject})).first() is not None
