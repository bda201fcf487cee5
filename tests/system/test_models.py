"""The SQLModel tables describe what the migrations created: same tables, same columns."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import SQLModel

import db.models  # noqa: F401 - registers the tables
from tests.system.conftest import System


async def test_every_model_column_exists_in_the_migrated_schema(sys_: System) -> None:
    async with sys_.engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public'"))).all()
    migrated: dict[str, set[str]] = {}
    for table, column in rows:
        migrated.setdefault(table, set()).add(column)
    for table in SQLModel.metadata.sorted_tables:
        assert table.name in migrated, f"no table {table.name}"
        assert {c.name for c in table.columns} == migrated[table.name], table.name
