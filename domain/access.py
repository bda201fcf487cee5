"""Who may do what: API keys' kinds and scopes, the principal a key stands for. Keys are random
secrets, stored only as SHA-256 hashes (db/api_keys.py).

Least privilege: a **tenant key** is bound to one tenant and holds tenant scopes only (payments,
wallets), by default and at most. Powers that span tenants (reconciliation sees every tenant's
gateway records) belong to **platform operator keys**, made explicitly (`keys create --operator`),
which hold operator scopes only. A tenant key asking for an operator scope is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

TENANT_SCOPES = ("payments:write", "payments:read", "wallets:write", "wallets:read")
# platform-wide: reconciliation sees every tenant's gateway records and payments
OPERATOR_SCOPES = ("reconciliations:write", "reconciliations:read")
SCOPES = TENANT_SCOPES + OPERATOR_SCOPES
TENANT, OPERATOR = "tenant", "operator"
KIND_SCOPES = {TENANT: TENANT_SCOPES, OPERATOR: OPERATOR_SCOPES}
PLATFORM_TENANT = "_platform"  # the tenant column of operator keys: they belong to no tenant


class ScopeError(ValueError):
    """Scopes a key of this kind cannot hold."""


@dataclass(frozen=True)
class Principal:
    key_id: str
    tenant_id: str
    scopes: frozenset[str]
    kind: str = TENANT


def scopes_for(kind: str, asked: list[str] | None) -> list[str]:
    """The scopes a new key of `kind` gets: all of its kind's when none are asked for; an
    unknown scope, or one of the other kind's, is a ScopeError that says why."""
    allowed = KIND_SCOPES[kind]
    if not asked:
        return list(allowed)
    unknown = sorted(set(asked) - set(SCOPES))
    if unknown:
        raise ScopeError(f"unknown scopes: {', '.join(unknown)} (known: {' '.join(SCOPES)})")
    foreign = sorted(set(asked) - set(allowed))
    if foreign and kind == TENANT:
        raise ScopeError(f"{', '.join(foreign)}: operator scopes span every tenant, so a tenant "
                         "key cannot hold them; make a platform operator key instead "
                         "(python -m api keys create --operator --name ...)")
    if foreign:
        raise ScopeError(f"{', '.join(foreign)}: tenant scopes belong to tenant keys; an operator "
                         f"key holds {' '.join(OPERATOR_SCOPES)}")
    return [s for s in allowed if s in asked]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
