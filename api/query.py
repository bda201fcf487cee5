"""Query strings are checked like bodies: a parameter no route declares is refused, by name."""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from api.errors import Problem

_DECLARED: dict[int, frozenset[str]] = {}


def known_query_only(request: Request) -> None:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    declared = _DECLARED.get(id(route))
    if declared is None:
        declared = frozenset(_query_names(route.dependant))
        _DECLARED[id(route)] = declared
    unknown = sorted(set(request.query_params) - declared)
    if unknown:
        raise Problem(400, "VALIDATION_ERROR",
                      f"the request is invalid: unknown query parameter {', '.join(unknown)}",
                      errors=[{"field": f"query.{name}", "message": "unknown query parameter"}
                              for name in unknown])


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def comma_list(value: str | None, allowed: set[str], name: str) -> list[str]:
    """`failed,exhausted` -> ["failed", "exhausted"]; an unknown item is refused by name."""
    if value is None:
        return []
    items = [v.strip() for v in value.split(",") if v.strip()]
    wrong = [v for v in items if v not in allowed]
    if wrong or not items:
        raise Problem(400, "VALIDATION_ERROR",
                      f"the request is invalid: query.{name}: "
                      f"{', '.join(wrong) or 'empty'} is not one of {', '.join(sorted(allowed))}",
                      errors=[{"field": f"query.{name}",
                               "message": f"one or more of {', '.join(sorted(allowed))}, "
                                          "comma-separated"}])
    return items
