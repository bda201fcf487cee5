"""The README's walk-through, run as written against `make dev`'s stack (on free ports), so a
command that no longer works fails CI. Slow: it starts the whole stack (~20 s)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def walkthrough_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Walk-through", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", section, re.DOTALL)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_readme_walkthrough_works_as_written() -> None:
    blocks = walkthrough_blocks()
    assert len(blocks) >= 2
    ports = {name: _free_port() for name in ("API_PORT", "GATEWAY_PORT", "GATEWAY_SECONDARY_PORT",
                                                "TEMPORAL_PORT",
                                                "TEMPORAL_UI_PORT", "EMBEDDED_PG_PORT",
                                                "WORKER_METRICS_PORT", "WORKER_SDK_METRICS_PORT",
                                                "NATS_PORT", "CODEC_PORT")}
    with tempfile.TemporaryDirectory(prefix="paysaga-readme-") as data:
        env = dict(os.environ, DATA_DIR=data, **{k: str(v) for k, v in ports.items()})
        env.pop("DATABASE_URL", None)
        env.pop("NATS_URL", None)
        stack = subprocess.Popen([sys.executable, "-m", "devstack"], cwd=ROOT, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert stack.stdout is not None
            said = []
            for line in stack.stdout:  # the stack prints this once every part answers
                said.append(line)
                if "paysaga is running" in line:
                    break
            else:
                pytest.fail("make dev's stack did not start:\n" + "".join(said[-30:]))
            script = "\n".join(blocks).replace("localhost:8000", f"localhost:{ports['API_PORT']}")
            script = script.replace("localhost:8001", f"localhost:{ports['GATEWAY_PORT']}")
            script = script.replace(".data/", f"{data}/")
            run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=120, check=False)
            # the runbook's invariant check, as the README shows it (no DATABASE_URL needed)
            checked = subprocess.run(
                [sys.executable, "-m", "db.invariants"], cwd=ROOT, capture_output=True, text=True,
                timeout=60, check=False, env=dict(
                    env, GATEWAY_URL=f"http://127.0.0.1:{ports['GATEWAY_PORT']}",
                    GATEWAY_SECONDARY_URL=f"http://127.0.0.1:{ports['GATEWAY_SECONDARY_PORT']}",
                    TEMPORAL_ADDRESS=f"127.0.0.1:{ports['TEMPORAL_PORT']}"))
            # make dev made its workers' build current (README: deploying a new build)
            status = subprocess.run([sys.executable, "-m", "deploy", "status"], cwd=ROOT, env=dict(
                env, TEMPORAL_ADDRESS=f"127.0.0.1:{ports['TEMPORAL_PORT']}"), capture_output=True,
                text=True, timeout=60, check=False)
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{ports['WORKER_METRICS_PORT']}/metrics") as scraped:
                metrics = scraped.read().decode()
        finally:
            stack.send_signal(signal.SIGINT)
            stack.wait(60)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    assert '"status": "completed"' in out  # the payment, as step 4 shows it
    assert "HTTP/1.1 202" in out  # step 3's first POST
    assert '"balance":"397.49"' in out  # 500.00 - 100.50 - 2.01, step 5
    assert '"status":"succeeded","wallet_id"' in out  # step 7's top-up and withdrawal
    assert '"balance":"406.89"' in out  # + 40.00 topped up - 30.60 withdrawn, step 7
    assert '"type":"fee","amount":"-2.01"' in out.replace(" ", "")
    assert '"status":"completed"' in out.replace(" ", "")  # step 8's capture
    assert '"amount_captured":"62.50"' in out.replace(" ", "")
    assert '"balance":"343.14"' in out  # - 62.50 captured - 1.25 fee on it, step 8
    assert re.search(r"top-up tup_\w+: (pending|processing)\n", out)  # step 9's bank debit
    assert '"balance":"393.14"' in out  # + 50.00 once the processor's event settled it
    assert re.search(r"payment pay_\w+: requires_action at http://\S+/authenticate/", out)
    assert re.search(r"<h1>Charge ch_\w+: succeeded</h1>", out)  # step 10: authenticated
    assert '"balance":"382.94"' in out  # - 10.00 - 0.20 fee once completed
    assert '"balance":"342.94"' in out  # step 11: the disputed top-up's 40.00 taken
    assert '"disputed":"40.00","restricted":false' in out
    assert '"status":"under_review"' in out  # the evidence taken
    assert '"status":"won"' in out
    assert out.count('"balance":"382.94"') >= 2
    assert '"type":"dispute.created"' in out
    assert '"type":"dispute.won"' in out
    assert '"decline_above"' in out  # the gateway's new profile
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 violations" in checked.stdout
    assert status.returncode == 0, status.stdout + status.stderr
    build = status.stdout.split("this checkout's build: ")[1].split()[0]
    assert f"deployment paysaga: current {build}," in status.stdout
    assert (f'paysaga_worker_build_info{{build_id="{build}",deployment="paysaga"}} 1.0'
            in metrics)
