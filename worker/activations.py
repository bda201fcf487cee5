"""Workflow activations on the event loop's own thread: the worker's `workflow_task_executor`.

The SDK hands every activation (a workflow's code between two awaits: a few hundred
microseconds for ours) to a thread pool and waits for it on the event loop, so that it can
report a workflow that does not yield within 2 s. Each hand-off wakes a pool thread and then the
loop again, and the two threads take the GIL from each other: under the bench's load that was
about a tenth of the worker's CPU per payment. `OnTheLoop` runs the activation at once, on the
loop's thread, in a copy of the caller's context, and puts back the loop the activation unset
(the SDK's debug mode runs activations the same way).

What it gives up is the SDK's deadlock detection: a workflow that blocks now blocks the loop.
A watchdog thread takes its place as a report: an activation that has run `stuck_seconds` is
logged at ERROR with the stack it is on, once. `WORKER_WORKFLOW_THREADS=true` brings back the
SDK's thread pool (and its detection) to find a workflow that blocks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from typing import Any

log = logging.getLogger("paysaga.worker")


class OnTheLoop(concurrent.futures.ThreadPoolExecutor):
    """Runs each call on the calling thread before `submit` returns (see the module). A thread
    pool by type, as the SDK's signature asks; it never starts a pool thread. One watchdog thread
    serves every instance of the process."""

    def __init__(self, stuck_seconds: float = 2.0) -> None:
        super().__init__(max_workers=1, thread_name_prefix="unused")
        self.stuck_seconds = stuck_seconds
        self.running: tuple[int, float, int] | None = None  # (call number, since, thread id)
        self.reported = 0
        self._calls = 0
        _watch(self)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
               ) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        loop = asyncio._get_running_loop()
        self._calls += 1
        self.running = (self._calls, time.monotonic(), threading.get_ident())
        try:
            future.set_result(contextvars.copy_context().run(fn, *args, **kwargs))
        except BaseException as err:  # the SDK reads the failure off the future, as from a thread
            future.set_exception(err)
        finally:
            self.running = None
            asyncio._set_running_loop(loop)  # an activation leaves no running loop behind
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with _lock:
            _watched.discard(self)

    def check(self) -> None:
        """Report the activation running now if it has run `stuck_seconds` (once each)."""
        running = self.running
        if running is None or running[0] == self.reported:
            return
        call, since, thread = running
        if time.monotonic() - since < self.stuck_seconds:
            return
        self.reported = call
        frame = sys._current_frames().get(thread)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "?"
        log.error("a workflow activation has run %.1f s without yielding: every workflow "
                  "and activity of this worker waits for it. Its stack:\n%s",
                  time.monotonic() - since, stack)


_watched: weakref.WeakSet[OnTheLoop] = weakref.WeakSet()
_watchdog: threading.Thread | None = None
_lock = threading.Lock()


def _watch(executor: OnTheLoop) -> None:
    global _watchdog
    with _lock:
        _watched.add(executor)
        if _watchdog is None:
            _watchdog = threading.Thread(target=_patrol, name="activation-watchdog", daemon=True)
            _watchdog.start()


def _patrol() -> None:
    while True:
        with _lock:  # (a set changed by another thread while it is read raises)
            watched = list(_watched)
        for executor in watched:
            executor.check()
        time.sleep(min((e.stuck_seconds for e in watched), default=2.0) / 4)
