"""The shipped Grafana dashboard and Prometheus alert rules: every expression parses, and every
metric they query exists in a real scrape of the running system (the API and a worker)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import promql_parser
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import bus.metrics  # noqa: F401 - registered by the worker through its relay
from telemetry.metrics import WORKER_REGISTRY
from tests.system.conftest import System

OPS = Path(__file__).resolve().parents[2] / "ops"


def expressions() -> dict[str, str]:
    dashboard = json.loads((OPS / "grafana/dashboards/paysaga.json").read_text())
    found = {f"panel {p['title']} / {t['refId']}": t["expr"]
             for p in dashboard["panels"] for t in p["targets"]}
    rules = yaml.safe_load((OPS / "prometheus/alerts.yml").read_text())
    found.update({f"alert {r['alert']}": r["expr"] for g in rules["groups"] for r in g["rules"]})
    return found


def metric_names(node: Any) -> set[str]:
    """Every metric name a parsed PromQL expression selects."""
    names: set[str] = set()
    if isinstance(node, promql_parser.VectorSelector) and node.name:
        names.add(node.name)
    for attr in ("expr", "lhs", "rhs", "vector_selector", "param"):
        child = getattr(node, attr, None)
        if child is not None and not isinstance(child, (str, int, float)):
            names |= metric_names(child)
    for arg in getattr(node, "args", None) or []:
        names |= metric_names(arg)
    return names


def test_every_expression_parses() -> None:
    exprs = expressions()
    assert len([k for k in exprs if k.startswith("alert")]) >= 6
    for where, expr in exprs.items():
        assert metric_names(promql_parser.parse(expr)), where


async def test_every_queried_metric_exists_in_a_real_scrape(sys_: System) -> None:
    # traffic, so that every labelled series has appeared: a success, a decline, a refund
    await sys_.behave(decline_above="5")
    wallet = await sys_.wallet(funds="50.00")
    ok = (await sys_.pay(wallet["user_id"], "2.00")).json()["id"]
    declined = (await sys_.pay(wallet["user_id"], "6.00")).json()["id"]
    await sys_.settled(ok, "completed")
    await sys_.settled(declined, "failed")
    await sys_.api.post(f"/v1/payments/{ok}/refunds", json={}, headers={"Idempotency-Key": f"d-{ok}"})
    await sys_.settled(ok, "refunded")

    text = (await sys_.api.get("/metrics", headers={"Authorization": ""})).text
    text += generate_latest(WORKER_REGISTRY).decode()
    scraped = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    for where, expr in expressions().items():
        missing = metric_names(promql_parser.parse(expr)) - scraped
        assert not missing, f"{where} queries {missing}, which no scrape has"
