"""The replay gate: before a build is made current, the histories it would have to continue
replay on its code.

Replayed against the new build's workflows:
  - the open runs of every auto-upgrading type (whatever version they last ran on: they move to
    the new build at their next task), the most recent first;
  - the latest runs of every type on the current, ramping and previous versions
(an auto-upgrading type's runs pinned by an override, as a rollback leaves some, do not move and
are left out).
A history of an auto-upgrading type that fails to replay refuses the build: it would stop those
runs with a non-determinism error. A pinned type's failure is reported, not refused: its runs
finish on the version they started on (that is what pinning is for). Open runs of a type the
new build does not register at all refuse it too, unless they are pinned to a version that keeps
running: that is how a retired saga (v1's `PaymentWorkflow`) is proven drained before its code
goes (README: retiring a saga).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio.client import Client, WorkflowHistory
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import Replayer
from temporalio.workflow import _Definition

from deploy import versions


@dataclass(frozen=True)
class Failure:
    workflow_type: str
    workflow_id: str
    run_id: str
    pinned: bool
    error: str


@dataclass
class Report:
    build_id: str
    replayed: dict[str, int] = field(default_factory=dict)  # per workflow type
    failures: list[Failure] = field(default_factory=list)
    unknown_open: dict[str, int] = field(default_factory=dict)  # open, not pinned, type unknown

    @property
    def refused(self) -> bool:
        return bool(self.unknown_open) or any(not f.pinned for f in self.failures)

    def lines(self) -> list[str]:
        out = [f"replay gate for build {self.build_id}:"]
        for kind, n in sorted(self.replayed.items()):
            out.append(f"  {kind}: {n} histories replayed")
        for f in self.failures:
            what = ("pinned: its runs finish on their own version; not refused" if f.pinned
                    else "REFUSED: auto-upgrading runs would fail on this build")
            out.append(f"  {f.workflow_type} {f.workflow_id} ({f.run_id}): {what}\n"
                       f"      {f.error.splitlines()[0] if f.error else ''}")
        for kind, n in sorted(self.unknown_open.items()):
            out.append(f"  REFUSED: {n} open runs of {kind}, which this build does not run "
                       "(let them finish, or pin them to a version that keeps running)")
        out.append("  verdict: " + ("refused" if self.refused else "passes"))
        return out


def behaviors(workflows: list[type]) -> dict[str, VersioningBehavior]:
    found = {}
    for cls in workflows:
        defn = _Definition.must_from_class(cls)
        assert defn.name is not None
        found[defn.name] = defn.versioning_behavior or VersioningBehavior.UNSPECIFIED
    return found


# runs that move to the current build at their next task: auto-upgrading, or never versioned
# (a run pinned by an override, as a rollback leaves some, stays where it is)
MOVES = ("(TemporalWorkflowVersioningBehavior IS NULL "
         "OR TemporalWorkflowVersioningBehavior = 'AutoUpgrade')")


def _quoted(values: list[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


async def _histories(client: Client, query: str, limit: int) -> dict[str, WorkflowHistory]:
    """The histories of the runs `query` lists (the newest first), by run id."""
    found = {}
    async for run in client.list_workflows(query, limit=limit):
        handle = client.get_workflow_handle(run.id, run_id=run.run_id)
        found[run.run_id] = await handle.fetch_history()
    return found


async def replay_gate(client: Client, deployment: str, new: WorkerDeploymentVersion,
                      workflows: list[type], *, task_queue: str, per_type: int = 25) -> Report:
    report = Report(new.build_id)
    kinds = behaviors(workflows)
    state = await versions.deployment(client, deployment)
    builds = sorted({b for b in ((state.current, state.ramping, state.previous) if state else ())
                     if b and b != new.build_id})
    on_versions = (f"TemporalWorkerDeploymentVersion IN "
                   f"({_quoted([f'{deployment}:{b}' for b in builds])})") if builds else None
    replayer = Replayer(workflows=workflows, data_converter=client.data_converter)
    for kind, behavior in sorted(kinds.items()):
        histories: dict[str, WorkflowHistory] = {}
        moving = behavior == VersioningBehavior.AUTO_UPGRADE
        queries = [f"WorkflowType='{kind}' AND {on_versions}" + (f" AND {MOVES}" if moving else "")
                   ] if on_versions else []
        if moving:
            queries.append(f"WorkflowType='{kind}' AND ExecutionStatus='Running' "
                           f"AND TaskQueue='{task_queue}' AND {MOVES}")
        for q in queries:
            histories.update(await _histories(client, q, per_type))
        for run_id, history in histories.items():
            result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
            if result.replay_failure is not None:
                report.failures.append(Failure(
                    kind, history.workflow_id, run_id, behavior == VersioningBehavior.PINNED,
                    str(result.replay_failure)))
        report.replayed[kind] = len(histories)
    unknown = (f"ExecutionStatus='Running' AND TaskQueue='{task_queue}' "
               f"AND WorkflowType NOT IN ({_quoted(sorted(kinds))}) AND {MOVES}")
    async for run in client.list_workflows(unknown, limit=1000):
        report.unknown_open[run.workflow_type] = report.unknown_open.get(run.workflow_type, 0) + 1
    return report

