"""Reconciliation runs against the gateway's report, their findings, and resolving exceptions.

Platform operators' routes (operator keys with `reconciliations:read` / `reconciliations:write`;
a tenant key is refused with 403 OPERATOR_KEY_REQUIRED): a gateway's report spans every tenant, so
these do too. The workflow writes everything read here; the API only starts
runs and records an operator's resolution.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import AwareDatetime, BaseModel, Field
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import WorkflowAlreadyStartedError

from api import pages, views
from api.creating import replay
from api.deps import IdempotencyKey, ReconciliationsRead, ReconciliationsWrite, StateDep
from api.errors import Problem, responses
from api.exact_json import ExactJSONRoute
from api.pages import StartingAfter
from api.query import Limit, comma_list, one_or_more
from api.schemas import Page, Strict
from contracts.reconciliation import ReconcileRun
from db import reconciliations
from domain.fingerprint import fingerprint
from domain.ids import reconciliation_id
from domain.reconciliation import QUIET, Finding, critical
from temporal_client.ask import described
from temporal_client.start import start_reconciliation

router = APIRouter(prefix="/v1/reconciliations", tags=["reconciliation"],
                   route_class=ExactJSONRoute)
MAX_WINDOW = timedelta(days=31)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
CLASSES = {f.value for f in Finding if f not in QUIET}
STATUSES = {"open", "healing", "healed", "resolved"}


class ReconciliationCreate(Strict):
    from_: AwareDatetime | None = Field(default=None, alias="from",
                                        description="window start (RFC 3339); default `to` - 24 h")
    to: AwareDatetime | None = Field(default=None, description="window end, exclusive; default now")


class FindingPublic(BaseModel):
    id: int
    class_: str = Field(alias="class")
    severity: str
    status: str = Field(description="open (an operator decides), healing, healed, resolved")
    heal: str = Field(description="capture, refund, post, or none")
    outcome: str | None
    gateway_key: str
    gateway_reference: str | None
    payment_id: str | None
    tenant_id: str | None
    evidence: dict[str, Any]
    note: str | None
    resolved_by: str | None
    first_reconciliation_id: str
    last_reconciliation_id: str
    times_seen: int
    created_at: str
    resolved_at: str | None


class ReconciliationPublic(BaseModel):
    id: str
    status: str = Field(description="running or completed")
    trigger: str = Field(description="schedule, api")
    requested_by: str | None
    window: dict[str, str] = Field(description="`from` (inclusive) and `to` (exclusive), RFC 3339")
    counts: dict[str, int] = Field(description="gateway records by class once completed")
    critical: int
    created_at: str | None
    completed_at: str | None
    findings: Page[FindingPublic] | None = Field(default=None, description="GET by id: the findings this "
                                         "run saw, oldest first, paginated")


class Resolve(Strict):
    note: str = Field(min_length=1, max_length=2000, description="what was done, for the record")


def _finding(r: Any) -> FindingPublic:
    """A `reconciliation_findings` row, read as a mapping (`class` is a Python keyword)."""
    return FindingPublic.model_validate({
        **{k: r[k] for k in FindingPublic.model_fields if k not in ("class_", "created_at",
                                                                   "resolved_at")},
        "class": r["class"], "created_at": views.rfc3339(r["created_at"]),
        "resolved_at": views.rfc3339(r["resolved_at"]) if r["resolved_at"] else None})


def _run(r: Any) -> ReconciliationPublic:
    counts = dict(r.counts or {})
    return ReconciliationPublic(
        id=r.id, status=r.status, trigger=r.trigger, requested_by=r.requested_by,
        window={"from": views.rfc3339(r.window_start), "to": views.rfc3339(r.window_end)},
        counts=counts, critical=critical(counts),
        created_at=views.rfc3339(r.created_at),
        completed_at=views.rfc3339(r.completed_at) if r.completed_at else None)


@router.post("", status_code=202, response_model=ReconciliationPublic,
             responses={200: {"model": ReconciliationPublic, "description": "idempotent replay"},
                        **responses(400, 401, 403, 422, operator=True)})
async def create(principal: ReconciliationsWrite, key: IdempotencyKey, body: ReconciliationCreate,
                 state: StateDep, response: Response) -> ReconciliationPublic:
    """Reconcile a window of the gateway's report now (the schedule does it every 15 minutes)."""
    end = body.to or datetime.now(UTC)
    start = body.from_ or (end - timedelta(days=1) if end > EARLIEST + timedelta(days=1) else end)
    if not EARLIEST <= start < end or end - start > MAX_WINDOW:
        raise Problem(400, "VALIDATION_ERROR", "the request is invalid: the window must run "
                      "forward, from 2000 on, and span at most 31 days",
                      errors=[{"field": "from", "message": "before `to`, at most 31 days before, "
                                                          "not before 2000-01-01T00:00:00Z"}])
    rid = reconciliation_id(principal.tenant_id, key)
    # the window is written in milliseconds: `from` rounds down and the exclusive `to` up, so no
    # record inside the asked window falls out of it in its last sub-millisecond
    end += timedelta(microseconds=-end.microsecond % 1000)
    window = {"from": views.rfc3339(start), "to": views.rfc3339(end)}
    fp = fingerprint(window)
    s = state.settings
    run = ReconcileRun(rid, window["from"], window["to"], "api", principal.key_id,
                       page_size=s.reconciliation_page_size,
                       pages_per_run=s.reconciliation_pages_per_run,
                       connectors=[c.name for c in s.connector_list])
    response.headers["Location"] = f"/v1/reconciliations/{rid}"
    try:
        await start_reconciliation(state.temporal, run, s.temporal_task_queue,
                                   {"fingerprint": fp, "window": window,
                                    "requested_by": principal.key_id})
    except WorkflowAlreadyStartedError:
        desc = await state.temporal.get_workflow_handle(rid).describe()
        replay(response, await desc.memo_value("fingerprint", default=None), fp)
        stored = await _stored(state, rid)
        if stored is not None:
            return stored
    return ReconciliationPublic(id=rid, status="running", trigger="api",
                                requested_by=principal.key_id, window=window, counts={},
                                critical=0, created_at=None, completed_at=None)


async def _stored(state: Any, rid: str) -> ReconciliationPublic | None:
    row = await reconciliations.run(state.engine, rid)
    return None if row is None else _run(row)


@router.get("", response_model=Page[ReconciliationPublic],
            responses=responses(400, 401, 403, operator=True))
async def list_runs(principal: ReconciliationsRead, state: StateDep, limit: Limit = 20,
                    starting_after: StartingAfter = None) -> Page[ReconciliationPublic]:
    """Runs, newest first."""
    asked = pages.ask(limit, 0, starting_after)
    async with state.engine.connect() as conn:
        found = await reconciliations.runs_page(conn, asked)
    return pages.page(found, lambda r: _run(SimpleNamespace(**r)), asked)


FindingStatus = Annotated[str | None, Query(
    description="one or more, comma-separated: open, healing, healed, resolved",
    pattern=one_or_more(STATUSES), max_length=200)]
FindingClass = Annotated[str | None, Query(
    alias="class", description="one or more classes, comma-separated: `unknown_charge`",
    pattern=one_or_more(CLASSES), max_length=300)]


async def _findings(state: Any, *, run: str | None, status: str | None, klass: str | None,
                    after: str | None, limit: int) -> Page[FindingPublic]:
    asked = pages.ask(limit, 0, after)
    statuses = comma_list(status, STATUSES, "status")
    classes = comma_list(klass, CLASSES, "class")
    async with state.engine.connect() as conn:
        found = await reconciliations.findings_page(conn, run, statuses, classes, asked)
    return pages.page(found, _finding, asked)


@router.get("/findings", response_model=Page[FindingPublic],
            responses=responses(400, 401, 403, operator=True))
async def list_findings(principal: ReconciliationsRead, state: StateDep,
                        status: FindingStatus = None, klass: FindingClass = None,
                        starting_after: StartingAfter = None, limit: Limit = 50) -> Page[FindingPublic]:
    """Findings of every run (each gateway record and class once), oldest first:
    `?status=open` is what waits for an operator."""
    return await _findings(state, run=None, status=status, klass=klass, after=starting_after,
                           limit=limit)


@router.post("/findings/{finding_id}/resolve", response_model=FindingPublic,
             responses=responses(400, 401, 403, 404, 409, operator=True))
async def resolve(principal: ReconciliationsWrite, finding_id: Annotated[int, Path(ge=1, le=2**62)],
                  body: Resolve, state: StateDep) -> FindingPublic:
    """Mark an open exception resolved, with a note of what was done. Only `open` findings can be
    resolved (a healed one needs nothing; one being healed is the workflow's)."""
    async with state.engine.begin() as conn:
        row, current = await reconciliations.resolve(conn, finding_id, body.note,
                                                     principal.key_id)
        if row is None:
            if current is None:
                raise Problem(404, "FINDING_NOT_FOUND", f"no finding {finding_id}")
            raise Problem(409, "CANNOT_RESOLVE_FINDING",
                          f"finding {finding_id} is {current}: only open findings are resolved",
                          extra={"finding_status": current})
    return _finding(row)


@router.get("/{rid}", response_model=ReconciliationPublic,
            responses=responses(400, 401, 403, 404, operator=True))
async def get_run(principal: ReconciliationsRead, rid: Annotated[str, Path(max_length=200)],
                  state: StateDep, status: FindingStatus = None, klass: FindingClass = None,
                  starting_after: StartingAfter = None, limit: Limit = 50) -> ReconciliationPublic:
    """A run: its window, counts by class, and the findings it saw (paginated by finding id)."""
    found = await _stored(state, rid)
    if found is None:
        found = await _from_workflow(state, rid)
    found.findings = await _findings(state, run=rid, status=status, klass=klass,
                                     after=starting_after, limit=limit)
    return found


async def _from_workflow(state: Any, rid: str) -> ReconciliationPublic:
    """Started, but its first step has not run yet: what its workflow says."""
    desc = await described(state.temporal, rid)
    window = None if desc is None else await desc.memo_value("window", default=None)
    if desc is None or desc.workflow_type != "Reconciliation" or window is None:
        raise Problem(404, "RECONCILIATION_NOT_FOUND", f"no reconciliation {rid}")
    running = desc.status == WorkflowExecutionStatus.RUNNING
    return ReconciliationPublic(
        id=rid, status="running" if running else "failed", trigger="api",
        requested_by=await desc.memo_value("requested_by", default=None), window=window,
        counts={}, critical=0, created_at=None, completed_at=None)
