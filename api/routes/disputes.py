"""Disputes (chargebacks on card top-ups): read them, and answer one while it needs a response,
with evidence (forwarded to the processor) or by accepting it. Each answer is an Update on the
dispute's workflow, which refuses what its state does not allow (`409 DISPUTE_NOT_OPEN`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api import pages
from api.deps import AppState, StateDep, WalletsRead, WalletsWrite
from api.errors import Problem, responses
from api.exact_json import ExactJSONRoute
from api.pages import StartingAfter
from api.query import Limit, Offset, comma_list, one_or_more
from api.schemas import Page, Strict
from contracts.dispute import Evidence
from db import disputes
from domain.money import to_major
from domain.times import rfc3339
from workflows.dispute import DisputeWorkflow

router = APIRouter(prefix="/v1/disputes", tags=["disputes"], route_class=ExactJSONRoute)
STATUSES = {"needs_response", "under_review", "won", "lost"}


class DisputePublic(BaseModel):
    id: str
    status: str = Field(description="needs_response, under_review, won or lost")
    reason: str = Field(description="the cardholder's, as the processor gave it (fraudulent, …)")
    amount: str = Field(description="what the processor took back")
    fee: str = Field(description="the processor's dispute fee, a loss")
    from_wallet: str = Field(description="what the dispute took from the wallet (what the "
                                         "top-up credited it, at most)")
    currency: str
    wallet_id: str | None
    top_up_id: str | None
    payment_id: str | None = Field(description="a dispute on a payment's charge: unexpected")
    charge_id: str
    connector: str
    unexpected: bool = Field(description="not a top-up's charge: recorded for an operator, no "
                                         "money moved by paysaga")
    evidence_due_by: str
    evidence: dict[str, Any] | None
    outcome_reason: str | None = Field(
        description="once decided: the network's decision, accepted or no_response")
    created_at: str
    closed_at: str | None
    timeline: list[dict[str, Any]] | None = Field(
        default=None, description="GET by id: the dispute's events, oldest first")


class EvidenceIn(Strict):
    text: str = Field(min_length=1, max_length=20_000, pattern=r"\S",
                      description="not blank")
    files: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=20, description="file ids at the processor")


def _view(d: dict[str, Any], timeline: list[dict[str, Any]] | None = None) -> DisputePublic:
    c = d["currency"]
    return DisputePublic(
        id=d["id"], status=d["status"], reason=d["reason"], amount=to_major(d["amount"], c),
        fee=to_major(d["fee"], c), from_wallet=to_major(d["from_wallet"], c), currency=c,
        wallet_id=d["wallet_id"], top_up_id=d["top_up_id"], payment_id=d["payment_id"],
        charge_id=d["charge_id"], connector=d["connector"], unexpected=d["unexpected"],
        evidence_due_by=rfc3339(d["evidence_due_by"]), evidence=d["evidence"],
        outcome_reason=d["outcome_reason"], created_at=rfc3339(d["created_at"]),
        closed_at=rfc3339(d["closed_at"]) if d["closed_at"] else None,
        timeline=None if timeline is None else [
            {"type": e["type"], "data": e["data"], "created_at": rfc3339(e["created_at"])}
            for e in timeline])


async def _load(state: AppState, tenant_id: str, dispute_id: str) -> dict[str, Any]:
    async with state.engine.connect() as conn:
        found = await disputes.get(conn, tenant_id, dispute_id)
    if found is None:
        raise Problem(404, "DISPUTE_NOT_FOUND", f"no dispute {dispute_id}")
    return found


@router.get("", response_model=Page[DisputePublic], responses=responses(400, 401, 403))
async def list_disputes(principal: WalletsRead, state: StateDep, limit: Limit = 50,
                        offset: Offset = 0, starting_after: StartingAfter = None,
                        status: Annotated[str | None, Query(
                            pattern=one_or_more(STATUSES),
                            description="one or more, comma-separated")] = None,
                        wallet_id: str | None = None) -> Page[DisputePublic]:
    """The tenant's disputes, newest first."""
    asked = pages.ask(limit, offset, starting_after)
    async with state.engine.connect() as conn:
        found = await disputes.page(conn, principal.tenant_id, asked,
                                    statuses=comma_list(status, STATUSES, "status"),
                                    wallet_id=wallet_id)
    return pages.page(found, lambda r: _view(dict(r)), asked)


@router.get("/{dispute_id}", response_model=DisputePublic, responses=responses(401, 403, 404))
async def get_dispute(principal: WalletsRead, dispute_id: str, state: StateDep) -> DisputePublic:
    found = await _load(state, principal.tenant_id, dispute_id)
    async with state.engine.connect() as conn:
        timeline = await disputes.timeline(conn, dispute_id)
    return _view(found, timeline)


@router.post("/{dispute_id}/evidence", response_model=DisputePublic,
             responses=responses(400, 401, 403, 404, 409))
async def submit_evidence(principal: WalletsWrite, dispute_id: str, body: EvidenceIn,
                          state: StateDep) -> DisputePublic:
    """The merchant's evidence, once, while the dispute needs a response: forwarded to the
    processor; the dispute is then `under_review`."""
    found = await _load(state, principal.tenant_id, dispute_id)
    await _answer(state, found, DisputeWorkflow.submit_evidence, Evidence(body.text, body.files))
    return _view(await _load(state, principal.tenant_id, dispute_id))


@router.post("/{dispute_id}/accept", response_model=DisputePublic,
             responses=responses(401, 403, 404, 409))
async def accept(principal: WalletsWrite, dispute_id: str, state: StateDep) -> DisputePublic:
    """Concede while the dispute needs a response: `lost` at once (told to the processor)."""
    found = await _load(state, principal.tenant_id, dispute_id)
    await _answer(state, found, DisputeWorkflow.accept)
    return _view(await _load(state, principal.tenant_id, dispute_id))


async def _answer(state: AppState, found: dict[str, Any], update: Any, *args: Any) -> None:
    handle = state.temporal.get_workflow_handle(found["id"])
    try:
        await handle.execute_update(update, *args)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        raise Problem(409, "DISPUTE_NOT_OPEN", message,
                      extra={"dispute_status": found["status"]}) from None
    except RPCError as err:
        if err.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise
        raise Problem(409, "DISPUTE_NOT_OPEN", f"dispute {found['id']} is {found['status']}: it "
                      "takes no answer", extra={"dispute_status": found["status"]}) from None
