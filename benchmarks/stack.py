"""The stack the benchmarks measure: `make dev`'s own processes, on ports of their own (every
one, the workers' metrics too), so a bench runs beside `make dev` and `make chaos`."""

from __future__ import annotations

import asyncio
import collections
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

PORTS = {"API_PORT": 18000, "GATEWAY_PORT": 18001, "GATEWAY_SECONDARY_PORT": 18002,
         "TEMPORAL_PORT": 17233,
         "TEMPORAL_UI_PORT": 18233, "EMBEDDED_PG_PORT": 15433, "NATS_PORT": 14223,
         "CODEC_PORT": 18081, "WORKER_METRICS_PORT": 19464, "WORKER_SDK_METRICS_PORT": 19465}


class StackDied(RuntimeError):
    """A part of the bench's stack died: which one, and the end of its log."""


class Stack:
    """`python -m devstack` as a child process; its output kept (the last 60 lines) so a part
    that dies is named with the end of its log (devstack prints both)."""

    def __init__(self, data_dir: Path) -> None:
        env = dict(os.environ, DATA_DIR=str(data_dir), **{k: str(v) for k, v in PORTS.items()})
        env.pop("DATABASE_URL", None)
        env.pop("NATS_URL", None)
        self.data_dir = data_dir
        self.proc = subprocess.Popen([sys.executable, "-m", "devstack"], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: collections.deque[str] = collections.deque(maxlen=60)
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if "paysaga is running" in line:
                self.ready.set()

    def died(self) -> StackDied | None:
        """The stack's failure, if it has exited: what it said last (the part and its log)."""
        if self.proc.poll() is None:
            return None
        time.sleep(0.2)  # the reader takes the last lines
        said = "\n".join(self.lines)
        return StackDied(f"the bench's stack exited ({self.proc.returncode}); its last words:\n"
                         f"{said}")

    async def started(self, timeout: float = 180) -> str:
        """Wait until it runs; the tenant key."""
        deadline = time.monotonic() + timeout
        while not self.ready.is_set():
            if (err := self.died()) is not None:
                raise err
            if time.monotonic() > deadline:
                raise TimeoutError("the bench's stack did not start:\n" + "\n".join(self.lines))
            await asyncio.sleep(0.2)
        return (self.data_dir / "dev_api_key").read_text().strip()

    def key(self, name: str) -> str:
        return (self.data_dir / name).read_text().strip()

    def stop(self) -> None:
        self.proc.send_signal(2)
        self.proc.wait(60)


async def start_stack(data_dir: Path) -> tuple[Stack, str]:
    stack = Stack(data_dir)
    try:
        return stack, await stack.started()
    except BaseException:
        if stack.proc.poll() is None:
            stack.stop()
        raise
