"""The chaos run, smaller: separate processes, crashes, restarts and gateway faults, and then
no payment left unsettled, no invariant violated, and a reconciliation over the whole run against
the gateway's report (which survived the gateway's crash) finds nothing unexplained; manual-capture
payments are captured, captured in part, voided or left to lapse meanwhile, and a new build of the
workers is promoted in the middle of it; card top-ups are disputed under lost, duplicated and
reordered processor webhooks, and each dispute ends as its processor decided. Slow (a few
minutes)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_payments_survive_crashes_restarts_and_gateway_faults() -> None:
    run = subprocess.run([sys.executable, "-m", "chaos.run", "--payments", "60", "--quick"],
                         capture_output=True, text=True, timeout=380, check=False)
    report = run.stdout
    assert "| invariant violations | 0 |" in report, report + run.stderr[-3000:]
    assert "| never accepted by the API | 0 |" in report, report
    assert "worker-1: SIGKILL and restart" in report
    assert "worker-2: SIGKILL and restart" in report
    assert "api-1: SIGKILL and restart" in report
    assert "| refunds accepted | 0 |" not in report
    assert "temporal: restart" in report
    assert "deploy: build chaos-build-b promoted mid-run (exit 0)" in report, report
    assert "| manual-capture payments settled by the run: none |" not in report, report
    assert "| forged processor webhooks refused (401) | 5 of 5 |" in report, report
    assert "postgresql: restart" in report
    assert "gateway: SIGKILL, an outage with failover, and restart" in report
    assert "| charged at the secondary (failed over) | 0 |" not in report, report
    assert "top-ups disputed at the processor, by what followed: none" not in report, report
    assert "every one recorded, each as the processor decided |" in report, report
    assert "| reconciliation | completed: " in report, report
    assert "| unexplained reconciliation findings | 0 |" in report, report
    assert run.returncode == 0, report + run.stderr[-3000:]
