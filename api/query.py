"""Query strings are checked like bodies: a parameter no route declares is refused, by name."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BeforeValidator

from api.errors import Problem

_DECLARED: dict[int, frozenset[str]] = {}


async def known_query_only(request: Request) -> None:  # async: a plain def runs in a thread
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
                      errors=[{"field": name, "message": "unknown query parameter"}
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
                      f"the request is invalid: {name}: "
                      f"{', '.join(wrong) or 'empty'} is not one of {', '.join(sorted(allowed))}",
                      errors=[{"field": name,
                               "message": f"one or more of {', '.join(sorted(allowed))}, "
                                          "comma-separated"}])
    return items


def one_or_more(values: set[str]) -> str:
    """The pattern of a comma-separated list of one or more of `values`."""
    one = "|".join(sorted(values))
    return f"^({one})(,({one}))*$"


MAX_OFFSET = 1_000_000
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip (at most 1,000,000; "
                                                              "page further with a cursor)")]
Limit = Annotated[int, Query(ge=1, le=200)]
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$")


def _rfc3339_only(value: object) -> object:
    """A time filter is an RFC 3339 date-time: `0.5` is not one, whatever pydantic would make of it."""
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise ValueError("an RFC 3339 date-time, e.g. 2026-01-15T10:00:00Z")
    return value


Time = Annotated[datetime | None, BeforeValidator(_rfc3339_only), Query()]
