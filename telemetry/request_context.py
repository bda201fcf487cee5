"""The id of the HTTP request being served, for log lines and problem bodies."""

from __future__ import annotations

from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("paysaga_request_id", default=None)
