"""A build's way to current: its workers polling, the replay gate, then ramped or current."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion

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
