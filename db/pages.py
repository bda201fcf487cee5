"""One way to page every list: keyset cursors (`starting_after` = the last item's id, `has_more`),
with `offset` kept where a list had it. A list declares its table, its order and its scope; `fetch`
does the rest in one place; each db module's `*_page` function says what its list selects.

    ORDER BY (created_at, id) DESC  ->  starting_after=X: (created_at, id) < X's (created_at, id)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection


class PageError(ValueError):
    """A page the list cannot give: `field` names the query parameter (the API answers 400)."""

    def __init__(self, field: str, message: str, detail: str) -> None:
        super().__init__(detail)
        self.field, self.message, self.detail = field, message, detail


@dataclass(frozen=True)
class Ask:
    """Which page a caller asks for."""

    limit: int = 50
    offset: int = 0
    starting_after: str | None = None


@dataclass
class Page:
    rows: Sequence[RowMapping]
    has_more: bool
    total: int | None = None


@dataclass(frozen=True)
class Keyset:
    """A list's order over `table`: `columns` (ending with a unique id column), one direction.
    `scope` is the SQL that limits a cursor's anchor to what the caller may see."""

    table: str
    columns: tuple[str, ...] = ("created_at", "id")
    descending: bool = True
    scope: str = "TRUE"
    integer_ids: bool = False  # the id column is a number (events, entries, findings)

    def order_by(self) -> str:
        way = " DESC" if self.descending else ""
        return ", ".join(f"{c}{way}" for c in self.columns)

    def after(self) -> str:
        cols = ", ".join(self.columns)
        op = "<" if self.descending else ">"
        if self.columns == ("id",):
            return f"id {op} :after"
        return (f"({cols}) {op} (SELECT {cols} FROM {self.table} "
                f"WHERE id = :after AND {self.scope})")

    def cursor(self, value: str) -> Any:
        if not self.integer_ids:
            return value
        if not value.isdigit() or len(value) > 18:
            raise _bad_cursor(value)
        return int(value)


@dataclass
class Where:
    """A list's conditions, built up by its db module."""

    clauses: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def add(self, clause: str, **params: Any) -> Where:
        self.clauses.append(clause)
        self.params.update(params)
        return self


def _bad_cursor(value: str) -> PageError:
    return PageError("starting_after", "no such item in this list",
                     f"starting_after: no item {value} in this list")


async def fetch(conn: AsyncConnection, keyset: Keyset, ask: Ask, *, select: str,
                where: Where | None = None, count: bool = True) -> Page:
    """One page of `select` FROM the keyset's table. `total` is counted on the offset path when
    `count`; None on the cursor path."""
    where = where or Where()
    clauses, params = [*where.clauses], dict(where.params)
    if ask.starting_after is not None:
        if ask.offset:
            raise PageError("offset", "not with starting_after",
                            "offset: use either offset or starting_after")
        params["after"] = keyset.cursor(ask.starting_after)
        anchor = (await conn.execute(text(
            f"SELECT 1 FROM {keyset.table} WHERE id = :after AND {keyset.scope}"), params)).first()
        if anchor is None:
            raise _bad_cursor(ask.starting_after)
        clauses.append(keyset.after())
    clause = " AND ".join(clauses) or "TRUE"
    total = None
    if count and ask.starting_after is None:
        total = int((await conn.execute(text(
            f"SELECT count(*) FROM {keyset.table} WHERE {clause}"), params)).scalar() or 0)
    rows = (await conn.execute(text(
        f"SELECT {select} FROM {keyset.table} WHERE {clause} ORDER BY {keyset.order_by()} "
        "LIMIT :page_limit OFFSET :page_offset"),
        params | {"page_limit": ask.limit + 1, "page_offset": ask.offset})).mappings().all()
    return Page(rows[:ask.limit], len(rows) > ask.limit, total)
