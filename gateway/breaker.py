"""A circuit breaker in front of the gateway (seed 004).

closed -> (N consecutive failures) -> open -> (cool-down) -> half-open: one trial call
    trial succeeds -> closed;  trial fails -> open again

While open, calls fail fast without touching the network, with a retryable error whose next
retry is due when the cool-down ends, so the workflow's retry policy keeps its own limits.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import Gauge

from telemetry.metrics import WORKER_REGISTRY

STATE = Gauge("paysaga_gateway_circuit_state",
              "gateway circuit by connector: 0 closed, 1 half-open, 2 open", ["connector"],
              registry=WORKER_REGISTRY)
LEVEL = {"closed": 0, "half_open": 1, "open": 2}


class CircuitBreaker:
    def __init__(self, failure_threshold: int = 5, cooldown_seconds: float = 10.0,
                 clock: Callable[[], float] = time.monotonic, connector: str = "primary") -> None:
        self.gauge = STATE.labels(connector)
        self.failure_threshold = failure_threshold
        self.cooldown_seconds = cooldown_seconds
        self.clock = clock
        self.state = "closed"
        self.failures = 0
        self.opened_at = 0.0
        self.trial_in_flight = False
        self.gauge.set(0)

    def _set(self, state: str) -> None:
        self.state = state
        self.gauge.set(LEVEL[state])

    def retry_in(self) -> float:
        """Seconds until a call may be tried again (0 when one may be tried now)."""
        if self.state != "open":
            return 0.0
        return max(0.0, self.opened_at + self.cooldown_seconds - self.clock())

    def allow_peek(self) -> bool:
        """Whether a call could go now, without taking the half-open trial."""
        return self.state == "closed" or (self.state == "open" and self.retry_in() == 0) or (
            self.state == "half_open" and not self.trial_in_flight)

    def allow(self) -> bool:
        if self.state == "open" and self.retry_in() == 0:
            self._set("half_open")
            self.trial_in_flight = False
        if self.state == "half_open":
            if self.trial_in_flight:
                return False
            self.trial_in_flight = True
            return True
        return self.state == "closed"

    def succeeded(self) -> None:
        self.failures = 0
        self.trial_in_flight = False
        self._set("closed")

    def failed(self) -> None:
        self.failures += 1
        self.trial_in_flight = False
        if self.state == "half_open" or self.failures >= self.failure_threshold:
            self.opened_at = self.clock()
            self._set("open")
