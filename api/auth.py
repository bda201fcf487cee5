"""API keys: random secrets, stored only as SHA-256 hashes, each bound to a tenant and scopes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.ids import new_id

SCOPES = ("payments:write", "payments:read", "wallets:write", "wallets:read",
          # operators: reconciliation sees every tenant's gateway records
          "reconciliations:write", "reconciliations:read")


@dataclass(frozen=True)
class Principal:
    key_id: str
    tenant_id: str
    scopes: frozenset[str]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_key(engine: AsyncEngine, *, tenant_id: str, name: str, scopes: list[str],
                     secret: str | None = None) -> tuple[str, str]:
    """Create a key; returns (key id, the secret, shown once). `secret` pins a known dev key."""
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(sorted(unknown))}")
    secret = secret or f"sk_{secrets.token_urlsafe(24)}"
    key_id = new_id("key")
    async with engine.begin() as conn:
        existing = (await conn.execute(text("SELECT id FROM api_keys WHERE key_hash = :h"),
                                       {"h": hash_key(secret)})).scalar()
        if existing:  # a pinned key (make dev's) gets the scopes asked for now
            await conn.execute(text("UPDATE api_keys SET scopes = :s WHERE id = :id"),
                               {"s": " ".join(scopes), "id": existing})
            return str(existing), secret
        await conn.execute(text(
            "INSERT INTO api_keys (id, tenant_id, name, key_hash, scopes) "
            "VALUES (:id, :t, :n, :h, :s)"),
            {"id": key_id, "t": tenant_id, "n": name, "h": hash_key(secret), "s": " ".join(scopes)})
    return key_id, secret


async def revoke_key(engine: AsyncEngine, key_id: str) -> bool:
    async with engine.begin() as conn:
        result = await conn.execute(text(
            "UPDATE api_keys SET revoked_at = now() WHERE id = :id AND revoked_at IS NULL"),
            {"id": key_id})
        return bool(result.rowcount)


async def authenticate(engine: AsyncEngine, secret: str) -> Principal | None:
    async with engine.connect() as conn:
        row = (await conn.execute(text(
            "SELECT id, tenant_id, scopes FROM api_keys WHERE key_hash = :h AND revoked_at IS NULL"),
            {"h": hash_key(secret)})).first()
    if row is None:
        return None
    return Principal(row.id, row.tenant_id, frozenset(row.scopes.split()))
