"""The reconciliation saga's contract: a run, its pages of the gateway's report, the ledger's side."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ReconcileRun:
    """One reconciliation run's input, and what it carries across continue-as-new.

    The schedule starts it with no id and no window: the run takes its workflow id and the
    window of `lookback_seconds` ending `settle_seconds` ago."""

    reconciliation_id: str = ""
    start: str = ""  # RFC 3339, inclusive
    end: str = ""    # RFC 3339, exclusive
    trigger: str = "schedule"
    requested_by: str | None = None
    lookback_seconds: int = 3600
    settle_seconds: int = 60
    page_size: int = 1000
    pages_per_run: int = 20  # continue-as-new after this many pages: history stays small
    cursor: int = 0
    pages: int = 0
    connectors: list[str] = field(default_factory=list)  # every connector's report ([]: the default)
    connector_index: int = 0


@dataclass
class ReportPage:
    reconciliation_id: str
    start: str
    end: str
    cursor: int
    limit: int
    connector: str | None = None


@dataclass
class PageOutcome:
    records: int
    next_cursor: int | None
    to_heal: list[int] = field(default_factory=list)  # finding ids the workflow heals


@dataclass
class LedgerSide:
    """The ledger's side of a run: captures in the window the report had no charge for."""

    reconciliation_id: str
    start: str
    end: str
    after: str = ""
    limit: int = 1000
    page: int = 0


@dataclass
class LedgerSideOutcome:
    checked: int
    next_after: str | None


@dataclass
class ReconcileReport:
    reconciliation_id: str
    counts: dict[str, int]
    critical: int
