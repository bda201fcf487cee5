"""The stack the benchmarks measure: `make dev`'s own processes, on ports of their own."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

PORTS = {"API_PORT": 18000, "GATEWAY_PORT": 18001, "GATEWAY_SECONDARY_PORT": 18002,
         "TEMPORAL_PORT": 17233,
         "TEMPORAL_UI_PORT": 18233, "EMBEDDED_PG_PORT": 15433, "NATS_PORT": 14223,
         "CODEC_PORT": 18081}


async def start_stack(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = dict(os.environ, DATA_DIR=str(data_dir), **{k: str(v) for k, v in PORTS.items()})
    env.pop("DATABASE_URL", None)
    env.pop("NATS_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "devstack"], env=env,  # noqa: ASYNC220
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = (await asyncio.to_thread(proc.stdout.readline)).decode()
        if not line and proc.poll() is not None:
            raise RuntimeError("make dev's stack exited")
        if "paysaga is running" in line:
            return proc, (data_dir / "dev_api_key").read_text().strip()
    raise TimeoutError("stack did not start")
