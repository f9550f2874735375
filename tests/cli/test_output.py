"""What ``run`` and ``worker`` print on stderr, as real processes: log formats."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path
from typing import Any

from durably.core.engine.engine import Engine

FLOW = '''
import os
from durably import DurableContext, Duration, RetryDecision, StepConfig, durable_execution


def charge(_):
    if not os.path.exists("charged"):  # the first attempt fails, the second succeeds
        open("charged", "w").close()
        raise KeyError("x")
    return "charged"


@durable_execution
def retried(event, context: DurableContext):
    every_second = StepConfig(retry_strategy=lambda error, attempt: RetryDecision.retry(Duration.from_seconds(1)))
    context.step(charge, name="charge", config=every_second)
    context.wait(Duration.from_seconds(1), name="cool-off")
    return "done"


@durable_execution
def approval(event, context: DurableContext):
    return context.wait_for_callback(lambda callback_id, ctx: None, name="approve")


@durable_execution
def chatty(event, context: DurableContext):
    context.wait(Duration.from_seconds(1), name="pause")  # the worker goes on from here
    context.logger.info("first line\\nsecond line")
    context.step(lambda step: step.logger.info("inside %s", "the step") or 1, name="work")
    return "logged"
'''
TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR) +\S")


def _status(db: Path, arn: str) -> str:
    engine = Engine(db)
    try:
        return str(engine.get_execution(arn)["Status"])
    finally:
        engine.close()
        engine.store.close()


def _worker_stderr(process: Any, arn: str, *args: str) -> str:
    """Run ``durably worker ARGS`` until ``arn`` ends, stop it with SIGTERM and answer its stderr."""
    worker = process.popen("worker", *args)
    try:
        deadline = time.monotonic() + 20
        while _status(process.cwd / ".durably" / "durably.db", arn) == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=15)
    assert worker.returncode == 0 and out == "", (out, err)
    return str(err)


def _start(process: Any, handler: str) -> str:
    """An execution that ``run --no-wait`` leaves waiting, for a worker to go on with."""
    return str(json.loads(process("run", handler, "--no-wait", "--quiet", "--output", "json").stdout)
               ["DurableExecutionArn"])


def test_worker_json_log_format_is_json_lines(tmp_path: Path, process: Any) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    arn = _start(process, "flow.py:chatty")
    records = [json.loads(line) for line in _worker_stderr(process, arn, "--log-format", "json").splitlines()]
    assert records[0]["logger"] == "durably.cli" and records[0]["message"].startswith("durably worker: 4 worker(s)")
    assert records[-1]["message"] == "durably worker: stopped"
    workflow = [r for r in records if r["logger"] == "durably.workflow"]
    assert [r["message"] for r in workflow] == ["first line\nsecond line", "inside the step"]
    assert all(r["executionArn"] == arn and r["level"] == "INFO" for r in workflow)
    assert workflow[1]["operationName"] == "work" and workflow[1]["attempt"] == 1


def test_worker_text_log_format_is_one_line_per_record(tmp_path: Path, process: Any) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    arn = _start(process, "flow.py:chatty")
    lines = _worker_stderr(process, arn).splitlines()
    assert all(TEXT_LINE.match(line) for line in lines), lines
    short = arn.split(":function:")[1].split(":")[0] + "/" + arn.split("/")[-2]
    assert " INFO    durably worker: 4 worker(s) on .durably/durably.db; Ctrl-C to stop" in lines[0]
    assert any(line.endswith(f" INFO    first line\\nsecond line  [{short}]") for line in lines), lines
    assert any(line.endswith(f" INFO    inside the step  [{short}]  operationName=work") for line in lines), lines
    assert lines[-1].endswith(" INFO    durably worker: stopped")
