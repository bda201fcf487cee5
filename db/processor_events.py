"""Processors' events in, as stored: each verified event once per connector and event id, the
ones still to carry to their saga, and how each one ended (delivered with the saga's answer, or
unmatched: about nothing paysaga knows, kept and reported)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def store(conn: AsyncConnection, connector: str, event_id: str, kind: str,
                subject: str | None, payload: dict[str, Any]) -> bool:
    """Keep the event; False when it was kept before (a processor's retry, a duplicate)."""
    made = await conn.execute(text(
        "INSERT INTO processor_events (connector, event_id, type, subject, payload) "
        "VALUES (:c, :e, :t, :s, CAST(:p AS JSONB)) ON CONFLICT (connector, event_id) DO NOTHING"),
        {"c": connector, "e": event_id, "t": kind, "s": subject, "p": json.dumps(payload)})
    return bool(made.rowcount == 1)


async def waiting(conn: AsyncConnection, limit: int = 100) -> Sequence[Any]:
    """Events not yet carried to their saga, oldest first: (id, connector, event_id, type,
    subject, payload)."""
    return (await conn.execute(text(
        "SELECT id, connector, event_id, type, subject, payload FROM processor_events "
        "WHERE status = 'received' ORDER BY id LIMIT :n"), {"n": limit})).all()


async def settle(conn: AsyncConnection, row_id: int, status: str, outcome: str) -> None:
    await conn.execute(text(
        "UPDATE processor_events SET status = :s, outcome = :o, delivered_at = now() "
        "WHERE id = :id"), {"s": status, "o": outcome[:500], "id": row_id})


async def known_subject(conn: AsyncConnection, subject: str) -> bool:
    """A payment or a top-up by this id exists."""
    return (await conn.execute(text(
        "SELECT 1 FROM payments WHERE id = :s UNION ALL SELECT 1 FROM transfers WHERE id = :s"),
        {"s": subject})).first() is not None
