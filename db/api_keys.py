"""API keys as stored: create (tenant or platform operator), list, revoke, and find the principal a
secret stands for. The scope rules are domain/access.py's."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db import direct
from domain.access import (
    KIND_SCOPES,
    OPERATOR,
    PLATFORM_TENANT,
    TENANT,
    Principal,
    hash_key,
    scopes_for,
)
from domain.ids import new_id


async def create_key(engine: AsyncEngine, *, tenant_id: str, name: str,
                     scopes: list[str] | None = None, secret: str | None = None) -> tuple[str, str]:
    """Create a tenant key (tenant scopes only; all of them by default); returns (key id, the
    secret, shown once). `secret` pins a known dev key. ScopeError for an operator scope."""
    return await _create(engine, TENANT, tenant_id, name, scopes_for(TENANT, scopes), secret)


async def create_operator_key(engine: AsyncEngine, *, name: str, scopes: list[str] | None = None,
                              secret: str | None = None) -> tuple[str, str]:
    """Create a platform operator key (operator scopes only; all of them by default)."""
    return await _create(engine, OPERATOR, PLATFORM_TENANT, name, scopes_for(OPERATOR, scopes),
                         secret)


async def _create(engine: AsyncEngine, kind: str, tenant_id: str, name: str, scopes: list[str],
                  secret: str | None) -> tuple[str, str]:
    secret = secret or f"sk_{secrets.token_urlsafe(24)}"
    key_id = new_id("key")
    values = {"id": key_id, "t": tenant_id, "n": name, "h": hash_key(secret),
              "s": " ".join(scopes), "k": kind}
    async with engine.begin() as conn:
        existing = (await conn.execute(text("SELECT id FROM api_keys WHERE key_hash = :h"),
                                       values)).scalar()
        if existing:  # a pinned key (make dev's) gets the kind, tenant and scopes asked for now
            await conn.execute(text("UPDATE api_keys SET scopes = :s, kind = :k, tenant_id = :t "
                                    "WHERE id = :eid"), values | {"eid": existing})
            return str(existing), secret
        await conn.execute(text(
            "INSERT INTO api_keys (id, tenant_id, name, key_hash, scopes, kind) "
            "VALUES (:id, :t, :n, :h, :s, :k)"), values)
    return key_id, secret


async def list_keys(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Every key (never a secret), operator keys first, then tenant keys by tenant."""
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT id, kind, tenant_id, name, scopes, created_at, revoked_at FROM api_keys "
            "ORDER BY kind = 'tenant', tenant_id, created_at"))).mappings().all()
    return [dict(r) for r in rows]


async def revoke_key(engine: AsyncEngine, key_id: str) -> bool:
    async with engine.begin() as conn:
        result = await conn.execute(text(
            "UPDATE api_keys SET revoked_at = now() WHERE id = :id AND revoked_at IS NULL"),
            {"id": key_id})
        return bool(result.rowcount)


async def authenticate(engine: AsyncEngine, secret: str) -> Principal | None:
    async with direct.connect(engine) as conn:
        row = (await conn.execute(text(
            "SELECT id, tenant_id, scopes, kind FROM api_keys "
            "WHERE key_hash = :h AND revoked_at IS NULL"), {"h": hash_key(secret)})).first()
    if row is None:
        return None
    # a key holds its kind's scopes only, whatever an older row says
    scopes = frozenset(row.scopes.split()) & frozenset(KIND_SCOPES.get(row.kind, ()))
    return Principal(row.id, row.tenant_id, scopes, row.kind)
