"""One way to page every list: keyset cursors (`starting_after` = the last item's id, `has_more`,
`next_cursor`), with `offset` kept where a list had it. A list declares its table, its order and
its scope; `fetch` does the rest in one place.

    ORDER BY (created_at, id) DESC  ->  starting_after=X: (created_at, id) < X's (created_at, id)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Query
from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from api.errors import Problem
from api.schemas import Page

T = TypeVar("T")

StartingAfter = Annotated[str | None, Query(
    max_length=200, description="cursor: the `next_cursor` of the previous page (the last "
                                "item's id); pages without counting (`total` is null)")]


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


def _bad_cursor(value: str) -> Problem:
    return Problem(400, "VALIDATION_ERROR", f"the request is invalid: starting_after: no item "
                   f"{value} in this list", errors=[{"field": "starting_after",
                                                     "message": "no such item in this list"}])


async def fetch(conn: AsyncConnection, keyset: Keyset, *, select: str, where: Sequence[str],
                params: dict[str, Any], limit: int, offset: int = 0,
                starting_after: str | None = None,
                count: bool = True) -> tuple[Sequence[RowMapping], bool, int | None]:
    """One page of `select` FROM the keyset's table: (rows, has_more, total). `total` is counted
    on the offset path when `count`; null on the cursor path."""
    where = [*where]
    params = dict(params)
    if starting_after is not None:
        if offset:
            raise Problem(400, "VALIDATION_ERROR", "the request is invalid: offset: use either "
                          "offset or starting_after", errors=[{
                              "field": "offset", "message": "not with starting_after"}])
        params["after"] = keyset.cursor(starting_after)
        anchor = (await conn.execute(text(
            f"SELECT 1 FROM {keyset.table} WHERE id = :after AND {keyset.scope}"), params)).first()
        if anchor is None:
            raise _bad_cursor(starting_after)
        where.append(keyset.after())
    clause = " AND ".join(where) or "TRUE"
    total = None
    if count and starting_after is None:
        total = int((await conn.execute(text(
            f"SELECT count(*) FROM {keyset.table} WHERE {clause}"), params)).scalar() or 0)
    rows = (await conn.execute(text(
        f"SELECT {select} FROM {keyset.table} WHERE {clause} ORDER BY {keyset.order_by()} "
        "LIMIT :page_limit OFFSET :page_offset"),
        params | {"page_limit": limit + 1, "page_offset": offset})).mappings().all()
    return rows[:limit], len(rows) > limit, total


def page(rows: Sequence[Any], item: Callable[[Any], T], *, has_more: bool, limit: int,
         offset: int = 0, total: int | None = None) -> Page[T]:
    """The one list shape; `next_cursor` is the last row's id when more follow."""
    items = [item(r) for r in rows]
    cursor = str(rows[-1]["id"]) if has_more and rows else None
    return Page(items=items, has_more=has_more, next_cursor=cursor, limit=limit, offset=offset,
                total=total)
