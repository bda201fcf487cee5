"""paysaga's packages, each once: its floor in the house and what it is for. A module imports only
from its own package or from packages on lower floors (tests/unit/test_architecture.py); pyproject's
package list and the Dockerfile are checked against `SHIPPED`; the build digest reads `WORKER_CODE`.
"""

from __future__ import annotations

# name: (floor, shipped in the image, run by the worker)
PACKAGES: dict[str, tuple[int, bool, bool]] = {
    "domain": (0, True, True),        # money, ids, statuses, fees, rules: pure functions
    "settings": (0, True, True),      # the settings object and the shapes it reads
    "contracts": (0, True, True),     # what the sagas and their steps exchange (dataclasses)
    "telemetry": (0, True, True),     # logs, tracing, the worker's metrics registry
    "db": (1, True, True),            # every SQL statement; the tables as SQLModel models
    "gateway": (1, True, True),       # the processors' HTTP client, its breaker
    "bus": (1, True, True),           # NATS JetStream: publishing the outbox, consuming it
    "workflows": (1, True, True),     # the sagas: workflow code only
    "routing": (1, True, True),       # which connectors a payment or top-up tries, in order
    "fakegateway": (1, True, False),  # the fake processor we ship, with fault injection
    "release": (1, True, True),       # this list, and the build id
    "temporal_client": (2, True, True),  # starting sagas, asking about them, codec, converter
    "activities": (3, True, True),    # the sagas' steps: thin I/O over db, gateway, Temporal
    "api": (3, True, False),          # the HTTP API
    "worker": (4, True, True),        # the worker process and the outbox relay
    "devstack": (4, True, False),     # `make dev`: the whole system on embedded defaults
    "deploy": (5, True, False),       # worker deployments: promote, ramp, rollback, the gate
    "benchmarks": (5, False, False),  # `make bench` (run from a checkout)
    "chaos": (5, False, False),       # `make chaos` (run from a checkout)
}

FLOOR = {name: floor for name, (floor, _, _) in PACKAGES.items()}
SHIPPED = tuple(name for name, (_, shipped, _) in PACKAGES.items() if shipped)
WORKER_CODE = tuple(name for name, (_, _, worker) in PACKAGES.items() if worker)
