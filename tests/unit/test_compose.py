"""docker-compose.yml describes the production shape; no Docker engine runs here, so check its
structure and that every command it runs exists in this code base."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import yaml

from devstack.temporal import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_part_of_the_system_is_a_service() -> None:
    services = compose()["services"]
    assert {"temporal", "temporal-db", "temporal-ui", "app-db", "migrate", "api", "worker",
            "gateway"} <= set(services)
    assert services["temporal"]["environment"]["DB"] == "postgres12"


def test_every_app_command_is_a_module_of_ours() -> None:
    services = compose()["services"]
    ours = {name: s for name, s in services.items() if s.get("image") == "paysaga:latest"}
    assert set(ours) == {"migrate", "api", "worker", "deploy", "gateway", "gateway-secondary",
                         "codec"}
    for name, service in ours.items():
        command = service["command"]
        assert command[:2] == ["python", "-m"], name
        assert importlib.util.find_spec(command[2]) is not None, f"{name}: {command}"
        assert service["environment"]["DATABASE_URL"].startswith("postgresql://")


def test_the_workers_build_is_made_current_once_they_poll() -> None:
    deploy = compose()["services"]["deploy"]
    assert deploy["command"][:4] == ["python", "-m", "deploy", "promote"]
    assert deploy["restart"] == "no"  # a one-shot step, not a service
    assert "worker" in deploy["depends_on"]


def test_the_contracts_search_attributes_are_registered() -> None:
    setup = " ".join(compose()["services"]["temporal-setup"]["command"])
    for name, kind in SEARCH_ATTRIBUTES.items():  # the ones make dev and the tests register
        assert f"--name {name} --type {kind}" in setup


def test_the_image_copies_every_package_the_commands_need() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("domain", "settings", "db", "activities", "workflows", "worker", "api",
                    "fakegateway", "deploy"):
        assert f"COPY {package} {package}" in dockerfile


def test_prometheus_and_grafana_ship_with_the_dashboard_and_the_alerts() -> None:
    services = compose()["services"]
    mounted = [v.split(":")[0] for name in ("prometheus", "grafana") for v in services[name]["volumes"]]
    for path in mounted:
        assert (ROOT / path).exists(), path
    config = yaml.safe_load((ROOT / "ops/prometheus/prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    assert {"api:8000", "worker:9464"} <= targets
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert services["worker"]["environment"]["WORKER_METRICS_HOST"] == "0.0.0.0"


def test_the_event_bus_is_a_three_node_jetstream_cluster_the_app_uses() -> None:
    services = compose()["services"]
    nodes = [services[f"nats-{i}"] for i in (1, 2, 3)]
    for i, node in enumerate(nodes, 1):
        command = node["command"]
        assert "--jetstream" in command
        assert command[command.index("--cluster_name") + 1] == "paysaga"
        routes = command[command.index("--routes") + 1].split(",")
        assert sorted(routes) == sorted(f"nats://nats-{j}:6222" for j in (1, 2, 3) if j != i)
    env = services["worker"]["environment"]
    assert env["NATS_URL"].count("nats://") == 3
    assert env["NATS_STREAM_REPLICAS"] == "3"
