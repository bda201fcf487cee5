"""The domain-event feed (resumable by id) and the outbox's statistics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import text

from api import views
from api.deps import PaymentsRead, StateDep
from api.errors import responses
from api.query import Limit

router = APIRouter(prefix="/v1", tags=["events"])


class FeedEvent(BaseModel):
    id: int
    type: str
    payment_id: str | None
    wallet_id: str | None
    data: dict[str, Any]
    created_at: str


class Feed(BaseModel):
    items: list[FeedEvent]
    total: int
    limit: int
    offset: int
    next_after: int | None


class OutboxStats(BaseModel):
    total: int
    published: int
    pending: int
    oldest_pending_age_seconds: float | None


@router.get("/events", response_model=Feed, responses=responses(400, 401, 403))
async def feed(principal: PaymentsRead, state: StateDep,
               after: Annotated[int, Query(ge=0, description="resume after this event id")] = 0,
               limit: Limit = 50) -> Feed:
    """Every domain event of this tenant in order; pass the last `id` seen as `after` to resume."""
    params = {"t": principal.tenant_id, "a": after, "l": limit}
    async with state.engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT id, type, payment_id, wallet_id, data, created_at FROM events "
            "WHERE tenant_id = :t AND id > :a ORDER BY id LIMIT :l"), params)).all()
        total = (await conn.execute(text(
            "SELECT count(*) FROM events WHERE tenant_id = :t AND id > :a"), params)).scalar()
    items = [FeedEvent(id=r.id, type=r.type, payment_id=r.payment_id, wallet_id=r.wallet_id,
                       data=r.data, created_at=views.rfc3339(r.created_at)) for r in rows]
    return Feed(items=items, total=total or 0, limit=limit, offset=0,
                next_after=items[-1].id if items else None)


@router.get("/outbox/stats", response_model=OutboxStats, responses=responses(401, 403))
async def outbox_stats(principal: PaymentsRead, state: StateDep) -> OutboxStats:
    """How far the outbox relay is behind (seed 001's statistics), for this tenant."""
    async with state.engine.connect() as conn:
        row = (await conn.execute(text(
            """
            SELECT count(*) AS total, count(published_at) AS published,
                   EXTRACT(EPOCH FROM now() - min(created_at) FILTER (WHERE published_at IS NULL))
                     AS oldest
            FROM events WHERE tenant_id = :t
            """), {"t": principal.tenant_id})).one()
    return OutboxStats(total=row.total, published=row.published, pending=row.total - row.published,
                       oldest_pending_age_seconds=None if row.oldest is None else float(row.oldest))
