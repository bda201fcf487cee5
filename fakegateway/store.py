"""The fake gateway's records on disk (SQLite), so they survive its restart: a reconciliation
after a crash still has the outside truth. Without a path it keeps them in memory only."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def sortable(value: str) -> str:
    """An RFC 3339 time as fixed-width UTC text, so times compare as strings."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Records:
    def __init__(self, path: str | None) -> None:
        self.db = sqlite3.connect(path or ":memory:", check_same_thread=False)
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            "key TEXT UNIQUE NOT NULL, created_at TEXT NOT NULL, record TEXT NOT NULL)")
        self.db.commit()

    def all(self) -> list[dict[str, Any]]:
        return [json.loads(r) for (r,) in self.db.execute("SELECT record FROM records ORDER BY seq")]

    def add(self, record: dict[str, Any]) -> None:
        self.db.execute("INSERT OR IGNORE INTO records (key, created_at, record) VALUES (?, ?, ?)",
                        (record["idempotency_key"], sortable(record["created_at"]),
                         json.dumps(record)))
        self.db.commit()

    def replace(self, record: dict[str, Any]) -> None:
        self.db.execute("UPDATE records SET record = ? WHERE key = ?",
                        (json.dumps(record), record["idempotency_key"]))
        self.db.commit()

    def page(self, start: str, end: str, after: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
        """Accepted charges, refunds and payouts, and disputes (in their current status),
        created in [start, end), in order, after a cursor."""
        rows = self.db.execute(
            "SELECT seq, record FROM records WHERE seq > ? AND created_at >= ? AND created_at < ? "
            "AND (json_extract(record, '$.status') = 'succeeded' "
            "OR json_extract(record, '$.object') = 'dispute') ORDER BY seq LIMIT ?",
            (after, sortable(start), sortable(end), limit + 1)).fetchall()
        items = [json.loads(r) for _, r in rows[:limit]]
        return items, (rows[limit - 1][0] if len(rows) > limit else None)
