"""One list shape for every route: `items`, `has_more`, `next_cursor` (the last item's id), with
`limit`, `offset` and `total` where a list had them. The paging itself is db/pages.py; a page it
cannot give (an unknown cursor, a cursor with an offset) answers 400 VALIDATION_ERROR."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Query

from api.schemas import Page
from db.pages import Ask
from db.pages import Page as Rows

T = TypeVar("T")

StartingAfter = Annotated[str | None, Query(
    max_length=200, description="cursor: the `next_cursor` of the previous page (the last "
                                "item's id); pages without counting (`total` is null)")]


def ask(limit: int, offset: int = 0, starting_after: str | None = None) -> Ask:
    return Ask(limit, offset, starting_after)


def page(rows: Rows, item: Callable[[Any], T], asked: Ask) -> Page[T]:
    """The one list shape; `next_cursor` is the last row's id when more follow."""
    items = [item(r) for r in rows.rows]
    cursor = str(rows.rows[-1]["id"]) if rows.has_more and rows.rows else None
    return Page(items=items, has_more=rows.has_more, next_cursor=cursor, limit=asked.limit,
                offset=asked.offset, total=rows.total)
