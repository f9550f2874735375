"""What ``run`` and ``worker`` print on stderr, as real processes: log formats and a run's progress."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

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
CALLBACK_ID = re.compile(r"callback id ([0-9a-f]+)")


def _worker_stderr(process: Any, status_of: Callable[[Path, str], str], arn: str, *args: str) -> str:
    """Run ``durably worker ARGS`` until ``arn`` ends, stop it with SIGTERM and answer its stderr."""
    worker = process.popen("worker", *args)
    try:
        deadline = time.monotonic() + 20
        while status_of(process.cwd / ".durably" / "durably.db", arn) == "RUNNING" and time.monotonic() < deadline:
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


def _line_with(running: subprocess.Popen[str], text: str, timeout: float = 20) -> str:
    """The first line of ``running``'s stderr that holds ``text``; fails after ``timeout`` seconds."""
    found: list[str] = []

    def scan() -> None:
        assert running.stderr is not None
        for line in running.stderr:
            if text in line:
                found.append(line)
                return
    reader = threading.Thread(target=scan, daemon=True)
    reader.start()
    reader.join(timeout)
    assert found, f"no line with {text!r} on stderr within {timeout} s"
    return found[0]


@pytest.mark.sqlite_only
def test_worker_json_log_format_is_json_lines(tmp_path: Path, process: Any,
                                              status_of: Callable[[Path, str], str]) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    arn = _start(process, "flow.py:chatty")
    stderr = _worker_stderr(process, status_of, arn, "--log-format", "json")
    records = [json.loads(line) for line in stderr.splitlines()]
    assert records[0]["logger"] == "durably.cli" and records[0]["message"].startswith("durably worker: 4 worker(s)")
    assert records[-1]["message"] == "durably worker: stopped"
    workflow = [r for r in records if r["logger"] == "durably.workflow"]
    assert [r["message"] for r in workflow] == ["first line\nsecond line", "inside the step"]
    assert all(r["executionArn"] == arn and r["level"] == "INFO" for r in workflow)
    assert workflow[1]["operationName"] == "work" and workflow[1]["attempt"] == 1


@pytest.mark.sqlite_only
def test_worker_text_log_format_is_one_line_per_record(tmp_path: Path, process: Any,
                                                       status_of: Callable[[Path, str], str]) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    arn = _start(process, "flow.py:chatty")
    lines = _worker_stderr(process, status_of, arn).splitlines()
    assert all(TEXT_LINE.match(line) for line in lines), lines
    short = arn.split(":function:")[1].split(":")[0] + "/" + arn.split("/")[-2]
    assert " INFO    durably worker: 4 worker(s) on .durably/durably.db; Ctrl-C to stop" in lines[0]
    assert any(line.endswith(f" INFO    first line\\nsecond line  [{short}]") for line in lines), lines
    assert any(line.endswith(f" INFO    inside the step  [{short}]  operationName=work") for line in lines), lines
    assert lines[-1].endswith(" INFO    durably worker: stopped")


def test_run_shows_retries_and_waits_as_they_happen(tmp_path: Path, process: Any) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    done = process("run", "flow.py:retried", "--output", "json")
    assert json.loads(done.stdout)["Result"] == '"done"'  # stdout is the response alone
    lines = done.stderr.splitlines()
    retry = next(i for i, line in enumerate(lines)
                 if "step 'charge' attempt 1 failed: KeyError: 'x'; retrying in 1 s" in line)
    succeeded = next(i for i, line in enumerate(lines) if "step 'charge' succeeded in " in line)
    wait = next(i for i, line in enumerate(lines) if re.search(
        r"waiting 1 s on 'cool-off' \(until \d\d:\d\d:\d\d UTC\)", line))
    assert retry < succeeded < wait
    assert " on attempt 2  [" in lines[succeeded]
    assert any("wait 'cool-off' done" in line for line in lines[wait:])
    assert all(TEXT_LINE.match(line) for line in lines), lines
    assert process("run", "flow.py:retried", "--quiet", "--name", "hushed").stderr == ""


@pytest.mark.sqlite_only
def test_run_no_wait_tells_how_to_answer_the_callback(tmp_path: Path, process: Any) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    done = process("--db", "state.db", "run", "flow.py:approval", "--no-wait", "--output", "json",
                   "--log-format", "json")
    execution = json.loads(done.stdout)
    assert execution["Status"] == "RUNNING"
    events = json.loads(process("--db", "state.db", "history", execution["DurableExecutionArn"], "--output",
                                "json").stdout)["Events"]
    callback_id = next(e["CallbackStartedDetails"]["CallbackId"] for e in events
                       if e["EventType"] == "CallbackStarted")
    records = [json.loads(line) for line in done.stderr.splitlines()]
    waiting = next(r for r in records if r.get("eventType") == "CallbackStarted")
    assert waiting["callbackId"] == callback_id and waiting["operationName"] == "approve"
    assert f"durably --db state.db callback success {callback_id} --payload '...'" in waiting["message"]
    assert f"durably --db state.db callback failure {callback_id} --payload '" in waiting["message"]


def test_run_waits_for_a_callback_answered_from_another_process(tmp_path: Path, process: Any) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    run = process.popen("run", "flow.py:approval", "--output", "json")
    try:
        line = _line_with(run, "waiting on callback 'approve'")
        match = CALLBACK_ID.search(line)
        assert match, line
        assert f"`durably callback success {match[1]} --payload '...'`" in line
        process("callback", "success", match[1], "--payload", "approved")
        out, err = run.communicate(timeout=20)
    finally:
        run.kill()
    assert run.returncode == 0, err
    assert json.loads(out)["Result"] == '"approved"'
    assert "callback 'approve' answered after " in err and ": success" in err
