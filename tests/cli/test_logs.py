"""The stderr formats of ``run`` and ``worker``: one readable line per record, or one JSON object."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

from durably.cli.logs import JsonLinesFormatter, TextFormatter, short_arn

ARN = ("arn:aws:lambda:us-east-1:000000000000:function:orders-ship:$LATEST/durable-execution/order-7/"
       "9f1c2b3a4d5e6f708192a3b4c5d6e7f8")
WHEN = dt.datetime(2026, 3, 1, 12, 0, 30, 250000, dt.UTC).timestamp()


def _record(logger: str, message: str, level: int = logging.INFO, exc: bool = False,
            args: tuple[Any, ...] = (), **extra: Any) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise KeyError("x")
        except KeyError:
            exc_info = sys.exc_info()
    record = logging.getLogger(logger).makeRecord(logger, level, "engine.py", 1, message, args, exc_info, extra=extra)
    record.created = WHEN
    return record


def test_short_arn_is_function_and_execution_name() -> None:
    assert short_arn(ARN) == "orders-ship/order-7"
    assert short_arn("not-an-arn") == "not-an-arn"


def test_text_engine_record_shortens_the_arn_in_its_message() -> None:
    line = TextFormatter().format(_record("durably.engine", f"finished {ARN} SUCCEEDED in 12 ms",
                                          executionArn=ARN, status="SUCCEEDED", durationMs=12))
    assert line == ("2026-03-01T12:00:30.250Z INFO    engine: finished orders-ship/order-7 SUCCEEDED in 12 ms"
                    "  durationMs=12")


def test_text_takeover_keeps_only_what_the_message_does_not_say() -> None:
    line = TextFormatter().format(_record(
        "durably.engine", f"took over {ARN} from host:41:ab: the worker process 41 exited", logging.WARNING,
        executionArn=ARN, owner="host:41:ab", reason="the worker process 41 exited", previousToken="t0"))
    assert line == ("2026-03-01T12:00:30.250Z WARNING engine: took over orders-ship/order-7 from host:41:ab: "
                    "the worker process 41 exited  previousToken=t0")
    failed = TextFormatter().format(_record("durably.engine", "invocation failed", logging.WARNING,
                                            error={"ErrorType": "ValueError"}))
    assert failed.endswith('engine: invocation failed  error={"ErrorType": "ValueError"}')


def test_text_workflow_record_has_no_logger_name_and_key_extras() -> None:
    record = _record("durably.workflow", "charged %s\nnext line", args=("card",), operationName="charge",
                     operationId="ab" * 32, attempt=2, parentId="cd" * 32, executionArn=ARN)
    assert TextFormatter().format(record) == (
        "2026-03-01T12:00:30.250Z INFO    charged card\\nnext line  [orders-ship/order-7]  "
        "operationName=charge  attempt=2")
    first = TextFormatter().format(_record("durably.workflow", "hello", operationName="charge", attempt=1))
    assert first == "2026-03-01T12:00:30.250Z INFO    hello  operationName=charge"


def test_text_exception_stays_on_the_line_unless_debugging() -> None:
    record = _record("durably.engine", "scheduler iteration failed", logging.ERROR, exc=True)
    assert TextFormatter().format(record) == (
        "2026-03-01T12:00:30.250Z ERROR   engine: scheduler iteration failed  (KeyError: 'x')")
    debug = TextFormatter(tracebacks=True).format(record).splitlines()
    assert debug[0] == "2026-03-01T12:00:30.250Z ERROR   engine: scheduler iteration failed"
    assert debug[1].startswith("Traceback") and debug[-1] == "KeyError: 'x'"


def test_json_record_has_the_durable_fields_the_logger_and_other_extras() -> None:
    out = json.loads(JsonLinesFormatter().format(_record(
        "durably.engine", f"invocation of {ARN} failed: boom", logging.WARNING, executionArn=ARN,
        operationName="charge", attempt=3, error={"ErrorType": "ValueError"}, owner="h:1:x")))
    assert out == {"timestamp": "2026-03-01T12:00:30.250+00:00", "level": "WARNING",
                   "message": f"invocation of {ARN} failed: boom", "executionArn": ARN, "operationName": "charge",
                   "attempt": 3, "logger": "durably.engine", "error": {"ErrorType": "ValueError"},
                   "owner": "h:1:x"}
    workflow = json.loads(JsonLinesFormatter().format(_record("durably.workflow", "multi\nline")))
    assert workflow["message"] == "multi\nline" and workflow["logger"] == "durably.workflow"
