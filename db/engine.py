"""The async SQLAlchemy engine over asyncpg, created once per process."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, exc, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def async_url(url: str) -> str:
    """Accept plain `postgresql://` URLs (as psql and the embedded server give them)."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """At most 2 x `pool_size` connections, as before, but each kept once opened: it was
    `pool_size` kept and as many again opened for a burst and closed when handed back (a
    connect, a TLS offer, the JSON codecs' setup and the statements prepared again, each time a
    burst came). The pool checks a connection's liveness on checkout without a round trip
    (`_alive`); the SQLAlchemy pre-ping cost three (BEGIN, `;`, ROLLBACK) on every checkout."""
    engine = create_async_engine(async_url(url), pool_size=2 * pool_size, max_overflow=0)
    event.listen(engine.sync_engine, "checkout", _alive)
    return engine


def _alive(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """A connection the server closed (a restart, an idle timeout) has been told so on its
    socket, and asyncpg marks it closed: the pool then discards it and takes another (a
    DisconnectionError on checkout is SQLAlchemy's documented way to say so). One that breaks
    mid-statement is still seen by SQLAlchemy as a disconnect, which invalidates the pool."""
    raw = record.driver_connection  # the asyncpg connection under SQLAlchemy's adapter
    if raw is not None and raw.is_closed():
        raise exc.DisconnectionError("the server closed this connection")


async def ping(engine: AsyncEngine) -> None:
    """One round trip: the database answers."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
