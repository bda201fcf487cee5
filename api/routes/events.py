"""The domain-event feed (resumable by id) and the outbox's statistics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api import pages, views
from api.deps import PaymentsRead, StateDep
from api.errors import Problem, responses
from api.pages import StartingAfter
from api.query import Limit
from api.schemas import Page
from db import events

router = APIRouter(prefix="/v1", tags=["events"])


class FeedEvent(BaseModel):
    id: int
    type: str
    payment_id: str | None
    wallet_id: str | None
    data: dict[str, Any]
    created_at: str


class OutboxStats(BaseModel):
    total: int
    published: int
    pending: int
    oldest_pending_age_seconds: float | None


@router.get("/events", response_model=Page[FeedEvent], responses=responses(400, 401, 403))
async def feed(principal: PaymentsRead, state: StateDep,
               starting_after: StartingAfter = None,
               after: Annotated[int | None, Query(
                   ge=0, le=2**62, deprecated=True,
                   description="the older name of `starting_after` (an event id)")] = None,
               limit: Limit = 50) -> Page[FeedEvent]:
    """Every domain event of this tenant in order; pass `next_cursor` (the last `id` seen) as
    `starting_after` to resume. Not counted (`total` is null): the feed only grows."""
    if after is not None and starting_after is not None:
        raise Problem(400, "VALIDATION_ERROR", "the request is invalid: after: use either after "
                      "or starting_after", errors=[{"field": "after",
                                                    "message": "not with starting_after"}])
    asked = pages.ask(limit, 0, starting_after)
    async with state.engine.connect() as conn:
        found = await events.feed_page(conn, principal.tenant_id, after, asked)
    return pages.page(found, lambda r: FeedEvent(
        id=r["id"], type=r["type"], payment_id=r["payment_id"], wallet_id=r["wallet_id"],
        data=r["data"], created_at=views.rfc3339(r["created_at"])), asked)


@router.get("/outbox/stats", response_model=OutboxStats, responses=responses(401, 403))
async def outbox_stats(principal: PaymentsRead, state: StateDep) -> OutboxStats:
    """How far the outbox relay is behind (seed 001's statistics), for this tenant."""
    async with state.engine.connect() as conn:
        row = await events.outbox_stats(conn, principal.tenant_id)
    return OutboxStats(total=row.total, published=row.published, pending=row.total - row.published,
                       oldest_pending_age_seconds=None if row.oldest is None else float(row.oldest))
