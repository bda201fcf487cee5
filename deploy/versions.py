"""What the Worker Deployment `paysaga` routes where, and changing it: the server's own APIs.

    wait_for_version(client, v)      until workers of version v have polled (it exists)
    make_current(client, v)          route new (and auto-upgrading) runs to v, and wait until the
                                     task queues have the new routing
    ramp(client, v, percentage)      send a percentage of them to v instead
    deployment(client, name)         the routing and every version's status
    open_pinned(client, v)           runs still pinned to v (0: v is drained and can be stopped)
    pin(client, run, v)              keep one run on v until it ends (a rollback's exceptions)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from google.protobuf.field_mask_pb2 import FieldMask
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.deployment.v1 import WorkerDeploymentVersion as VersionProto
from temporalio.api.enums.v1 import RoutingConfigUpdateState, VersionDrainageStatus
from temporalio.api.enums.v1 import WorkerDeploymentVersionStatus as VersionStatus
from temporalio.api.workflow.v1 import VersioningOverride, WorkflowExecutionOptions
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    DescribeWorkerDeploymentVersionRequest,
    SetWorkerDeploymentCurrentVersionRequest,
    SetWorkerDeploymentRampingVersionRequest,
    UpdateWorkflowExecutionOptionsRequest,
)
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode

IDENTITY = "paysaga-deploy"


class NotPolling(Exception):
    """No worker of the version has polled yet: start it first."""


def query(version: WorkerDeploymentVersion) -> str:
    """The visibility query for runs on a version (as `temporal workflow count --query` takes it)."""
    return f"TemporalWorkerDeploymentVersion='{version.deployment_name}:{version.build_id}'"


def moving_query(version: WorkerDeploymentVersion) -> str:
    """Open auto-upgrading runs whose last task ran on `version`."""
    return (f"{query(version)} AND TemporalWorkflowVersioningBehavior='AutoUpgrade' "
            "AND ExecutionStatus='Running'")


def pinned_query(version: WorkerDeploymentVersion) -> str:
    return (f"{query(version)} AND TemporalWorkflowVersioningBehavior='Pinned' "
            "AND ExecutionStatus='Running'")


@dataclass(frozen=True)
class VersionSummary:
    build_id: str
    status: str      # inactive, current, ramping, draining, drained
    drainage: str    # "", draining, drained (the server's periodic count)


@dataclass(frozen=True)
class Deployment:
    name: str
    current: str | None
    ramping: str | None
    ramp_percentage: float
    versions: list[VersionSummary]
    previous: str | None  # the version most recently current before the current one


def _status(value: VersionStatus.ValueType) -> str:
    return VersionStatus.Name(value).removeprefix("WORKER_DEPLOYMENT_VERSION_STATUS_").lower()


def _drainage(value: VersionDrainageStatus.ValueType) -> str:
    name = VersionDrainageStatus.Name(value).removeprefix("VERSION_DRAINAGE_STATUS_").lower()
    return "" if name == "unspecified" else name


async def deployment(client: Client, name: str) -> Deployment | None:
    """The deployment's routing and versions, or None before any versioned worker polled."""
    try:
        info = (await client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=name),
            timeout=timedelta(seconds=5))).worker_deployment_info
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    routing = info.routing_config
    current = routing.current_deployment_version.build_id or None
    ramping = routing.ramping_deployment_version.build_id or None
    summaries = sorted(info.version_summaries, key=lambda v: v.create_time.ToDatetime())
    versions = [VersionSummary(v.deployment_version.build_id, _status(v.status),
                               _drainage(v.drainage_status)) for v in summaries]
    before = [v for v in summaries if v.deployment_version.build_id != current
              and v.HasField("last_deactivation_time")]
    previous = (max(before, key=lambda v: v.last_deactivation_time.ToDatetime())
                .deployment_version.build_id if before else None)
    return Deployment(name, current, ramping, routing.ramping_version_percentage, versions, previous)


async def wait_for_version(client: Client, version: WorkerDeploymentVersion,
                           seconds: float = 60) -> None:
    """Until a worker of `version` has polled (the server knows the version and its queues)."""
    deadline = asyncio.get_running_loop().time() + seconds
    request = DescribeWorkerDeploymentVersionRequest(
        namespace=client.namespace,
        deployment_version=VersionProto(deployment_name=version.deployment_name,
                                        build_id=version.build_id))
    while True:
        try:
            found = await client.workflow_service.describe_worker_deployment_version(
                request, timeout=timedelta(seconds=5))
            if found.version_task_queues:
                return
        except RPCError as err:
            if err.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                raise
        if asyncio.get_running_loop().time() > deadline:
            raise NotPolling(f"no worker of {version.deployment_name}:{version.build_id} has "
                             f"polled within {seconds:.0f} s: start the build's workers first")
        await asyncio.sleep(0.2)


async def _routed(client: Client, name: str, *, current: str | None = None,
                  ramping: str | None = None, seconds: float = 30) -> None:
    """Until the routing change reached every task queue of the deployment."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        info = (await client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=name),
            timeout=timedelta(seconds=5))).worker_deployment_info
        routing = info.routing_config
        state = info.routing_config_update_state
        if ((current is None or routing.current_deployment_version.build_id == current)
                and (ramping is None or routing.ramping_deployment_version.build_id == ramping)
                and state in (RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_COMPLETED,
                              RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_UNSPECIFIED)):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"the routing of {name} did not reach its task queues in {seconds:.0f} s")


@contextmanager
def _polling() -> Iterator[None]:
    """The server's refusal of a version no worker polls as, as NotPolling."""
    try:
        yield
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise NotPolling(err.message) from None
        raise


async def make_current(client: Client, version: WorkerDeploymentVersion) -> None:
    """Route new runs (and auto-upgrading ones, at their next task) to `version`."""
    with _polling():
        await client.workflow_service.set_worker_deployment_current_version(
            SetWorkerDeploymentCurrentVersionRequest(
                namespace=client.namespace, deployment_name=version.deployment_name,
                build_id=version.build_id, identity=IDENTITY),
            timeout=timedelta(seconds=10))
    await _routed(client, version.deployment_name, current=version.build_id)


async def ramp(client: Client, version: WorkerDeploymentVersion, percentage: float) -> None:
    """Send `percentage` of new and auto-upgrading runs to `version`, the rest to the current one
    (0 keeps it ramping with none: a rollback of the ramp)."""
    with _polling():
        await client.workflow_service.set_worker_deployment_ramping_version(
            SetWorkerDeploymentRampingVersionRequest(
                namespace=client.namespace, deployment_name=version.deployment_name,
                build_id=version.build_id, percentage=percentage, identity=IDENTITY),
            timeout=timedelta(seconds=10))
    await _routed(client, version.deployment_name, ramping=version.build_id)


async def open_pinned(client: Client, version: WorkerDeploymentVersion) -> int:
    """Runs still pinned to `version`: while this is not 0 its workers must keep running."""
    return (await client.count_workflows(pinned_query(version))).count


async def pin(client: Client, workflow_id: str, run_id: str,
              version: WorkerDeploymentVersion) -> None:
    """Keep this run on `version` until it ends, whatever becomes current (a versioning
    override, as `temporal workflow update-options --versioning-override-behavior pinned`)."""
    pinned = VersioningOverride.PinnedOverride(
        behavior=VersioningOverride.PinnedOverrideBehavior.PINNED_OVERRIDE_BEHAVIOR_PINNED,
        version=VersionProto(deployment_name=version.deployment_name, build_id=version.build_id))
    await client.workflow_service.update_workflow_execution_options(
        UpdateWorkflowExecutionOptionsRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
            workflow_execution_options=WorkflowExecutionOptions(
                versioning_override=VersioningOverride(pinned=pinned)),
            update_mask=FieldMask(paths=["versioning_override"]), identity=IDENTITY),
        timeout=timedelta(seconds=10))
