import json
import logging

from telemetry.logs import JSONFormatter


def test_saga_log_lines_carry_payment_workflow_and_run_ids() -> None:
    record = logging.LogRecord("temporalio.activity", logging.INFO, __file__, 1, "charging %s",
                               ("pay_x:a0",), None)
    record.temporal_activity = {"workflow_id": "pay_x", "workflow_run_id": "run-1",
                                "activity_type": "charge_gateway", "attempt": 2}
    line = json.loads(JSONFormatter().format(record))
    assert line["message"] == "charging pay_x:a0"
    assert (line["payment_id"], line["workflow_id"], line["run_id"]) == ("pay_x", "pay_x", "run-1")
    assert (line["activity"], line["attempt"]) == ("charge_gateway", 2)


def test_plain_lines_are_json_too() -> None:
    record = logging.LogRecord("paysaga.api", logging.WARNING, __file__, 1, "hello", (), None)
    line = json.loads(JSONFormatter().format(record))
    assert (line["level"], line["logger"], line["message"]) == ("warning", "paysaga.api", "hello")
    assert "payment_id" not in line
