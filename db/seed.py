"""Rows planted directly for the benchmarks (`make bench`): a backlog of events for the relay,
payments and their capture journals for a 100,000-record reconciliation, a large payments table
for list latency. Never used by the services. Over a plain asyncpg connection."""

from __future__ import annotations

from datetime import datetime
from typing import Any


async def plant_events(db: Any, n: int, tag: str) -> None:
    """`n` unpublished `bench.relayed` events."""
    await db.execute(
        "INSERT INTO events (dedupe_key, type, tenant_id, payment_id, wallet_id, data) "
        "SELECT 'bench:' || g || ':' || $2, 'bench.relayed', 'bench', 'pay_bench_' || g, "
        """NULL, CAST('{"amount": "1.00", "currency": "USD"}' AS JSONB) """
        "FROM generate_series(1, $1) g", n, tag)


async def unpublished_bench_events(db: Any) -> int:
    return int(await db.fetchval("SELECT count(*) FROM events WHERE published_at IS NULL "
                                 "AND type = 'bench.relayed'"))


async def outbox_lag(db: Any) -> float:
    """The age in seconds of the oldest unpublished event (0: none)."""
    return float(await db.fetchval(
        "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) FROM events "
        "WHERE published_at IS NULL"))


async def plant_captured_payments(db: Any, n: int, base: datetime | str) -> None:
    """`n` completed payments `pay_rb0000000`... a millisecond apart from `base`, each with its
    capture journal (the ledger's side of a reconciliation)."""
    await db.execute(
        """
        INSERT INTO payments (id, tenant_id, idempotency_key, fingerprint, run_id, user_id,
            service_id, amount, fee, currency, status, attempt, created_at)
        SELECT 'pay_rb' || lpad(g::text, 7, '0'), 'default', 'rb-' || g, 'fp', 'run', 'u',
               'svc', 100, 2, 'USD', 'completed', 0, $2::timestamptz + make_interval(secs => g / 1000.0)
        FROM generate_series(0, $1 - 1) AS g ON CONFLICT DO NOTHING
        """, n, base)
    await db.execute(
        """
        INSERT INTO journals (id, kind, reference, payment_id, currency, created_at)
        SELECT 'jnl_rb' || g, 'payment', 'capture:pay_rb' || lpad(g::text, 7, '0') || ':0',
               'pay_rb' || lpad(g::text, 7, '0'), 'USD',
               $2::timestamptz + make_interval(secs => g / 1000.0 + 0.05)
        FROM generate_series(0, $1 - 1) AS g ON CONFLICT DO NOTHING
        """, n, base)
    await db.execute("ANALYZE payments; ANALYZE journals")


async def plant_payments(db: Any, rows: int) -> None:
    """`rows` settled payments of tenant `default`, a second apart, 1,000 users."""
    await db.execute(
        """
        INSERT INTO payments (id, tenant_id, idempotency_key, fingerprint, run_id, user_id,
            service_id, amount, fee, currency, status, created_at)
        SELECT 'pay_bench_' || g, 'default', 'bench-' || g, 'fp', 'run', 'user-' || (g % 1000),
            'svc', 100, 2, 'USD', (ARRAY['completed','failed','exhausted'])[1 + g % 3],
            now() - make_interval(secs => g)
        FROM generate_series(1, $1) AS g ON CONFLICT DO NOTHING
        """, rows)
    await db.execute("ANALYZE payments")
