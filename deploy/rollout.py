"""A build's way to current: its workers polling, the replay gate, then ramped or current; and
the way back."""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.worker import Replayer

from deploy import versions
from deploy.gate import Report, replay_gate


class Refused(Exception):
    def __init__(self, report: Report) -> None:
        super().__init__("\n".join(report.lines()))
        self.report = report


async def promote(client: Client, version: WorkerDeploymentVersion, workflows: list[type], *,
                  task_queue: str, percentage: float | None = None,
                  wait_seconds: float = 60) -> Report:
    """Make `version` current (or ramp it to `percentage`) once its workers poll and the gate
    passes; raises Refused (nothing changed) when the gate does not, NotPolling when no worker
    of the version is up. `workflows` are the build's own sagas: this runs from the new build."""
    await versions.wait_for_version(client, version, wait_seconds)
    report = await replay_gate(client, version.deployment_name, version, workflows,
                               task_queue=task_queue)
    if report.refused:
        raise Refused(report)
    if percentage is None:
        await versions.make_current(client, version)
    else:
        await versions.ramp(client, version, percentage)
    return report


@dataclass
class RollBack:
    left: str | None  # the build rolled back from
    moved: int = 0  # open auto-upgrading runs that continue on the build returned to
    pinned: list[str] = field(default_factory=list)  # kept on the build left: they took its steps


async def roll_back(client: Client, to: WorkerDeploymentVersion, workflows: list[type] | None,
                    *, wait_seconds: float = 60) -> RollBack:
    """Make `to` current again. Open auto-upgrading runs whose last task ran on the build being
    left would move back with it; those that took a step `to`'s code does not have would stop
    with a non-determinism error there, so each is replayed on `workflows` (`to`'s own code: run
    this from the build returned to) and pinned to the build left when it does not replay, or
    every one when `workflows` is None (its code is not here). The build left keeps running
    until they end (`drained`)."""
    state = await versions.deployment(client, to.deployment_name)
    left = state.current if state else None
    result = RollBack(left)
    await versions.wait_for_version(client, to, wait_seconds)
    if left and left != to.build_id:
        leaving = WorkerDeploymentVersion(to.deployment_name, left)
        replayer = Replayer(workflows=workflows, data_converter=client.data_converter) \
            if workflows else None
        async for run in client.list_workflows(versions.moving_query(leaving)):
            if replayer is not None:
                history = await client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
                replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
                if replayed.replay_failure is None:
                    result.moved += 1
                    continue
            await versions.pin(client, run.id, run.run_id, leaving)
            result.pinned.append(run.id)
    await versions.make_current(client, to)
    return result
