"""The models are the schema: every table declared in db/models.py exactly as the migrations made
it (columns, types, nullability, server defaults, keys, unique constraints, indexes), so models and
migrations cannot drift apart."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import db.models  # noqa: F401  (declares every table)
from db.engine import make_engine


async def test_an_autogenerate_diff_against_the_migrated_database_is_empty(
        database_url: str) -> None:
    engine = make_engine(database_url, pool_size=1)

    def diff(sync: Any) -> list[Any]:
        context = MigrationContext.configure(sync, opts={"compare_type": True,
                                                         "compare_server_default": True})
        return list(compare_metadata(context, SQLModel.metadata))

    try:
        async with engine.connect() as conn:
            found = await conn.run_sync(diff)
    finally:
        await engine.dispose()
    assert found == []
    assert set(SQLModel.metadata.tables) == {
        "accounts", "api_keys", "deposits", "entries", "events", "holds", "journals", "payments",
        "rate_limits", "reconciliation_findings", "reconciliation_pages", "reconciliation_seen",
        "reconciliations", "refunds", "transfers", "webhook_deliveries", "webhook_endpoints",
        "processor_events", "disputes"}
