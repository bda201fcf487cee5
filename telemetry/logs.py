"""JSON logs: one line per event. Inside a saga, every line carries the payment id (the workflow
id), the run id and, from activities, the activity and its attempt (the SDK puts them on records)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from telemetry.request_context import REQUEST_ID


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("temporal_workflow", "temporal_activity"):
            info = getattr(record, key, None)
            if isinstance(info, dict):
                line["payment_id"] = info.get("workflow_id")
                line["workflow_id"] = info.get("workflow_id")
                line["run_id"] = info.get("run_id") or info.get("workflow_run_id")
                if key == "temporal_activity":
                    line["activity"] = info.get("activity_type")
                    line["attempt"] = info.get("attempt")
        request_id = REQUEST_ID.get()
        if request_id:
            line["request_id"] = request_id
        event = getattr(record, "event", None)
        if isinstance(event, dict):
            line["event"] = event
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: int = logging.INFO) -> None:
    from temporalio import activity, workflow

    # the ids travel as fields of the JSON line, not appended to each message
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
    handler = logging.StreamHandler()
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
