"""`make bench`, small: every step of the benchmark on the make dev stack at a small size (about a
minute), so a bench that no longer runs (a refused request, a port taken, a step that crashes)
fails `make test` rather than the next person's nine-minute run. The figures are not judged
here (speed is measured in `make bench`, never asserted); that each step ran and wrote its
figures is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

STEPS = ("paysaga", "bare", "bare_1", "bare_0", "bare_plain_paired", "bare_encrypted",
         "bare_one_at_a_time", "bare_one_at_a_time_paired", "relay",
         "top_up", "withdrawal", "capture_pairs", "inbox", "event_to_status",
         "cpu_ms_per_operation", "one_at_a_time", "post_202", "worker_rss_mb_after_completed",
         "parked", "running_workflows", "hot", "list", "rate_limit", "failover", "reconciliation")


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_every_step_of_the_bench_runs_and_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench-results.json"
    run = subprocess.run([sys.executable, "-m", "benchmarks.run", "--small", "--out", str(out)],
                         capture_output=True, text=True, timeout=380, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert [s for s in STEPS if s not in figures] == []
    cpu = figures["cpu_ms_per_operation"]
    assert set(cpu) == {"payment", "top_up", "withdrawal", "bare, 4 activities",
                        "bare, 1 activities", "bare, 0 activities"}
    assert min(cpu["payment"]["worker"], cpu["payment"]["api"]) > 0  # each process was found
    assert figures["paysaga"]["statuses"] == {"completed": 20}
    assert figures["reconciliation"]["counts"]["matched"] == 500, figures["reconciliation"]
    assert "CPU per payment, all processes / bare-4's" in run.stdout
