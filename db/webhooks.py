"""Webhook endpoints and their deliveries, as stored: an endpoint's life (create, change, disable,
delete, rotate its secret), the fan-out of committed events to the endpoints subscribed to them,
and each delivery's attempts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from db.pages import Ask, Keyset, Page, Where, fetch

ENDPOINT_COLUMNS = "id, url, events, enabled, created_at, updated_at, previous_secret_expires_at"
DELIVERY_COLUMNS = ("id, endpoint_id, event_id, status, attempts, last_status_code, last_error, "
                    "created_at, updated_at")
ENDPOINTS = Keyset("webhook_endpoints", descending=False,
                   scope="tenant_id = :t AND deleted_at IS NULL")
DELIVERIES = Keyset("webhook_deliveries", ("event_id", "id"), scope="tenant_id = :t")


def delivery_id(endpoint_id: str, event_id: int) -> str:
    return f"whd_{endpoint_id.removeprefix('whe_')}_{event_id}"


# -- endpoints ------------------------------------------------------------------------------

async def create_endpoint(conn: AsyncConnection, endpoint_id: str, tenant_id: str, url: str,
                          events: list[str], secret: str) -> Any:
    return (await conn.execute(text(
        "INSERT INTO webhook_endpoints (id, tenant_id, url, events, secret) "
        f"VALUES (:id, :t, :u, :e, :s) RETURNING {ENDPOINT_COLUMNS}"),
        {"id": endpoint_id, "t": tenant_id, "u": url, "e": " ".join(events), "s": secret})).one()


async def endpoints_page(conn: AsyncConnection, tenant_id: str, ask: Ask) -> Page:
    """The tenant's endpoints (not deleted), oldest first, not counted."""
    return await fetch(conn, ENDPOINTS, ask, select=ENDPOINT_COLUMNS,
                       where=Where(["tenant_id = :t", "deleted_at IS NULL"], {"t": tenant_id}),
                       count=False)


async def owned_endpoint(conn: AsyncConnection, tenant_id: str, endpoint_id: str) -> Any | None:
    """The tenant's endpoint (not deleted), or None."""
    return (await conn.execute(text(
        f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = :id AND tenant_id = :t "
        "AND deleted_at IS NULL"), {"id": endpoint_id, "t": tenant_id})).first()


async def update_endpoint(conn: AsyncConnection, endpoint_id: str, url: str | None,
                          events: list[str] | None, enabled: bool | None) -> Any:
    """Change what is given (None: as it was)."""
    return (await conn.execute(text(
        f"""
        UPDATE webhook_endpoints SET url = COALESCE(:u, url), events = COALESCE(:e, events),
            enabled = COALESCE(:en, enabled), updated_at = now()
        WHERE id = :id RETURNING {ENDPOINT_COLUMNS}
        """), {"id": endpoint_id, "u": url, "e": " ".join(events) if events else None,
               "en": enabled})).one()


async def delete_endpoint(conn: AsyncConnection, endpoint_id: str) -> None:
    await conn.execute(text(
        "UPDATE webhook_endpoints SET deleted_at = now(), enabled = false, updated_at = now() "
        "WHERE id = :id"), {"id": endpoint_id})


async def rotate_secret(conn: AsyncConnection, endpoint_id: str, secret: str,
                        overlap_seconds: int) -> Any:
    """The new secret signs; the previous one also signs for `overlap_seconds`."""
    return (await conn.execute(text(
        f"""
        UPDATE webhook_endpoints SET previous_secret = secret, secret = :s,
            previous_secret_expires_at = now() + make_interval(secs => :o), updated_at = now()
        WHERE id = :id RETURNING {ENDPOINT_COLUMNS}
        """), {"id": endpoint_id, "s": secret, "o": overlap_seconds})).one()


# -- deliveries -----------------------------------------------------------------------------

async def deliveries_page(conn: AsyncConnection, tenant_id: str, status: str | None,
                          ask: Ask) -> Page:
    """The tenant's deliveries, newest first (`failed`: the dead letters)."""
    where = Where(["tenant_id = :t"], {"t": tenant_id})
    if status:
        where.add("status = :s", s=status)
    return await fetch(conn, DELIVERIES, ask, select=DELIVERY_COLUMNS, where=where)


async def reopen_failed(conn: AsyncConnection, tenant_id: str, did: str) -> tuple[Any | None,
                                                                                   str | None]:
    """A failed delivery made pending again: (its row, None); else (None, its status, or None
    when the tenant has no such delivery)."""
    row = (await conn.execute(text(
        f"UPDATE webhook_deliveries SET status = 'pending', updated_at = now() "
        f"WHERE id = :id AND tenant_id = :t AND status = 'failed' RETURNING {DELIVERY_COLUMNS}"),
        {"id": did, "t": tenant_id})).first()
    if row is not None:
        return row, None
    return None, (await conn.execute(text(
        "SELECT status FROM webhook_deliveries WHERE id = :id AND tenant_id = :t"),
        {"id": did, "t": tenant_id})).scalar()


async def fan_out(conn: AsyncConnection, events: list[Any]) -> list[str]:
    """Create a delivery for every endpoint subscribed to each event; returns the new ids. One
    query for each tenant's endpoints per batch, one insert for the batch's deliveries."""
    endpoints: dict[str, list[Any]] = {}
    for tenant in {e.tenant_id for e in events}:
        endpoints[tenant] = list((await conn.execute(text(
            "SELECT id, events FROM webhook_endpoints WHERE tenant_id = :t AND enabled"),
            {"t": tenant})).all())
    wanted = [{"id": delivery_id(endpoint.id, event.id), "e": endpoint.id, "ev": event.id,
               "t": event.tenant_id}
              for event in events for endpoint in endpoints[event.tenant_id]
              if "*" in endpoint.events.split() or event.type in endpoint.events.split()]
    if not wanted:
        return []
    made = (await conn.execute(text(
        "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, tenant_id, status) "
        "SELECT * FROM unnest(CAST(:ids AS TEXT[]), CAST(:es AS TEXT[]), CAST(:evs AS BIGINT[]), "
        "CAST(:ts AS TEXT[])), LATERAL (SELECT 'pending') s "
        "ON CONFLICT DO NOTHING RETURNING id"),
        {"ids": [w["id"] for w in wanted], "es": [w["e"] for w in wanted],
         "evs": [w["ev"] for w in wanted], "ts": [w["t"] for w in wanted]})).scalars().all()
    made_set = set(made)
    return [w["id"] for w in wanted if w["id"] in made_set]  # in event order


async def stalled(conn: AsyncConnection, limit: int = 100) -> list[str]:
    """Deliveries left pending without a first attempt for a minute (their workflow was never
    started: a crash between the commit and the start)."""
    return list((await conn.execute(text(
        "SELECT id FROM webhook_deliveries WHERE status = 'pending' AND attempts = 0 "
        "AND created_at < now() - interval '1 minute' LIMIT :n"), {"n": limit})).scalars())


async def to_send(conn: AsyncConnection, did: str) -> Any:
    """What a delivery sends, and where: (id, url, secret, enabled, previous_secret while its
    overlap lasts, event_id, type, payment_id, wallet_id, data, created_at)."""
    return (await conn.execute(text(
        """
        SELECT d.id, w.url, w.secret, w.enabled,
               CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret END
                   AS previous_secret,
               e.id AS event_id, e.type, e.payment_id, e.wallet_id, e.data, e.created_at
        FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id
        JOIN events e ON e.id = d.event_id WHERE d.id = :id
        """), {"id": did})).one()


async def record_attempt(conn: AsyncConnection, did: str, code: int | None,
                         error: str | None) -> None:
    """One attempt's answer; without an error the delivery has succeeded."""
    await conn.execute(text(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status_code = :c, "
        "last_error = :e, status = CASE WHEN :ok THEN 'succeeded' ELSE status END, "
        "updated_at = now() WHERE id = :id"),
        {"c": code, "e": error, "ok": error is None, "id": did})


async def park_failed(conn: AsyncConnection, did: str) -> None:
    await conn.execute(text(
        "UPDATE webhook_deliveries SET status = 'failed', updated_at = now() WHERE id = :id"),
        {"id": did})
