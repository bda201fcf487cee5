"""The replay gate in CI, with this session's own histories: every saga this build runs ran in the
suite, and every one of its finished runs replays on the code (runs after the others: files run
in name order). `PAYSAGA_RECORD_HISTORIES=1` also keeps one history per saga and way it closed,
decoded, in tests/workflow/histories/v3/ (README: recorded histories), where the workflow tests
replay them on every later build for as long as the README promises."""

from __future__ import annotations

import os
from pathlib import Path

from temporalio.worker import Replayer

from deploy.gate import behaviors
from tests.system.conftest import System, temporal_cli
from worker.main import WORKFLOWS

HISTORIES = Path(__file__).resolve().parents[1] / "workflow" / "histories"
RECORD_AS = "v3"  # the directory this build's recorded histories go to


async def test_every_saga_that_ran_replays_on_this_build(sys_: System) -> None:
    client = sys_.temporal.client
    replayer = Replayer(workflows=WORKFLOWS, data_converter=client.data_converter)
    record = os.environ.get("PAYSAGA_RECORD_HISTORIES") == "1"
    ran, failed = set(), []
    for kind in sorted(behaviors(WORKFLOWS)):
        query = (f"WorkflowType='{kind}' AND ExecutionStatus!='Running' "
                 f"AND TaskQueue='{sys_.settings.temporal_task_queue}'")
        async for run in client.list_workflows(query, limit=40):
            ran.add(kind)
            history = await client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
            result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
            if result.replay_failure is not None:
                failed.append((kind, run.id, str(result.replay_failure)))
                continue
            status = run.status.name.lower() if run.status else "closed"
            path = HISTORIES / RECORD_AS / f"{kind}_{status}.json"
            if record and not path.exists():  # decoded by the codec server: plain payloads
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(await temporal_cli(
                    sys_, "workflow", "show", "--workflow-id", run.id, "--run-id", run.run_id,
                    "--output", "json"))
    assert failed == []
    assert ran == set(behaviors(WORKFLOWS)), "a saga that never ran in the suite proves nothing"
