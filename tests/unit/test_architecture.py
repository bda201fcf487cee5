"""The house's rules, read from the imports (the same check anyone can run with `make test`):
layers only import downwards, no import circle, routes are peers, activities are peers, the ledger
and the gateway each have one door."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from release.packages import FLOOR as PACKAGE_FLOORS
from release.packages import PACKAGES as PACKAGE_LIST
from release.packages import SHIPPED

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = tuple(PACKAGE_LIST)
# lower number, lower floor; a module imports only from its own floor's package or below
FLOOR = dict(PACKAGE_FLOORS)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = modules()


def imports(path: Path) -> Iterator[str]:
    """The project modules a file imports (at any depth: function-local imports count too)."""
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from api import pages` imports the module api.pages, `from db.ledger import emit`
            # the module db.ledger
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES
                     else node.module for a in node.names]
        for name in names:
            if name in MODULES:
                yield name


GRAPH = {name: sorted(set(imports(path)) - {name}) for name, path in MODULES.items()}


def package(module: str) -> str:
    return module.split(".")[0]


def test_every_package_has_a_floor() -> None:
    assert {package(m) for m in MODULES} == set(FLOOR)


def test_no_import_runs_back_up() -> None:
    upward = [(m, i) for m, deps in GRAPH.items() for i in deps
              if FLOOR[package(i)] > FLOOR[package(m)]]
    assert upward == []


def test_packages_on_one_floor_do_not_import_each_other() -> None:
    sideways = [(m, i) for m, deps in GRAPH.items() for i in deps
                if package(i) != package(m) and FLOOR[package(i)] == FLOOR[package(m)]]
    assert sideways == []


def test_no_import_circle() -> None:
    state: dict[str, int] = {}
    circle: list[str] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in GRAPH[module]:
            if state.get(dep) == 1:
                circle.extend([*path[path.index(dep):], dep] if dep in path else [module, dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[module] = 2

    for module in GRAPH:
        if module not in state:
            visit(module, [module])
    assert circle == []


def test_routes_are_peers() -> None:
    assert [(m, i) for m, deps in GRAPH.items() if m.startswith("api.routes.")
            for i in deps if i.startswith("api.routes")] == []
    # and nothing else in the API reaches into a route module
    assert [(m, i) for m, deps in GRAPH.items() if not m.startswith("api.routes")
            and m != "api.app" for i in deps if i.startswith("api.routes.")] == []


def test_activities_are_peers() -> None:
    # what more than one step module shares (its metrics, the postings a step and the activity
    # that moved the money both make) is not a step: steps use it, it uses no step
    shared = {"activities.metrics", "activities.postings"}
    assert [(m, i) for m in shared for i in GRAPH[m] if i.startswith("activities.")
            and i not in shared] == []
    steps = {m for m in GRAPH if m.startswith("activities.") and m not in shared}
    assert [(m, i) for m in steps for i in GRAPH[m] if i in steps] == []


def test_the_database_layer_knows_no_workflow_and_no_activity() -> None:
    assert [(m, i) for m, deps in GRAPH.items() if package(m) == "db"
            for i in deps if package(i) in ("workflows", "activities", "gateway", "api")] == []


def test_only_the_gateway_client_speaks_http_to_processors() -> None:
    """Activities call gateway.client's methods, never a connector's raw HTTP client."""
    raw = [str(path.relative_to(ROOT)) for name, path in MODULES.items()
           if package(name) in ("activities", "worker", "api")
           and re.search(r"\.at\([^)]*\)\.http|\.http\.(get|post|request)\(", path.read_text())
           and name != "activities.webhooks"]  # webhooks speak to the tenants' receivers
    assert raw == []


def test_every_package_the_services_run_is_installed_and_in_the_image() -> None:
    """A package left out of pyproject's list or the Dockerfile imports in a checkout but not in
    the image (`pip install .`); both are checked against release/packages.py, the one list."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = {p.rstrip("*") for p in config["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert listed == set(SHIPPED)
    copied = set(re.findall(r"^COPY (\w+) \1$", (ROOT / "Dockerfile").read_text(), re.M))
    assert copied == set(SHIPPED)


def test_every_directory_with_python_is_a_listed_package() -> None:
    """A new top-level package is declared in release/packages.py, with its floor."""
    found = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert found == set(PACKAGES)


SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT INTO|UPDATE\s+\w+\s+SET|DELETE FROM|"
                 r"ON CONFLICT|CREATE (TABLE|INDEX|DATABASE))\b|\w+ = :\w+|\w+ = ANY\(", re.S)
# not paysaga's database: the fake processor keeps its own SQLite records, and devstack
# administers the embedded server (CREATE DATABASE) before any table exists
NOT_OUR_DATABASE = {"fakegateway.store", "devstack.postgres"}


def sql_in(path: Path) -> list[str]:
    """The string constants of a file that read as SQL, and its imports of SQL builders."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
            found.append(node.value.strip().splitlines()[0][:60])
        elif isinstance(node, ast.ImportFrom) and node.module in ("sqlalchemy", "sqlmodel"):
            found += [f"import {a.name}" for a in node.names if a.name in ("text", "select")]
    return found


def test_no_sql_outside_the_database_door() -> None:
    """Every SQL statement of paysaga's database lives in db/: routes, activities, the worker and
    the tools call functions named for what they do."""
    outside = {name: sql_in(path) for name, path in MODULES.items()
               if package(name) != "db" and name not in NOT_OUR_DATABASE}
    assert {name: found for name, found in outside.items() if found} == {}
