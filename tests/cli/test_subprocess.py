"""``python -m durably`` as a user runs it: real processes, real time, one database file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from durably.core.engine.engine import Engine

FLOW = '''
from durably import DurableContext, Duration, durable_execution


@durable_execution
def approval(event, context: DurableContext):
    n = context.step(lambda _: event["n"] + 1, name="inc")
    cb = context.create_callback(name="approve")
    context.logger.info("callback %s", cb.callback_id)
    context.wait(Duration.from_seconds(1), name="pause")
    return {"n": n, "answer": cb.result()}


@durable_execution
def slow(event, context: DurableContext):
    import time
    def nap(_):
        time.sleep(30)
        return "slept"
    return context.step(nap, name="nap")


@durable_execution
def timed(event, context: DurableContext):
    context.step(lambda _: "stepped", name="first")
    context.wait(Duration.from_seconds(1), name="pause")
    return "waited"
'''


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLY_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def durably(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "durably", *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=60)
    if check:
        assert done.returncode == 0, (done.stdout, done.stderr)
    return done


@pytest.mark.sqlite_only
def test_run_no_wait_callback_then_worker(tmp_path: Path, status_of: Callable[[Path, str], str]) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    started = durably(tmp_path, "run", "flow.py:approval", "--input", '{"n": 1}', "--no-wait", "--output", "json",
                      "--log-format", "json")
    execution = json.loads(started.stdout)
    arn = execution["DurableExecutionArn"]
    assert execution["Status"] == "RUNNING"
    db = tmp_path / ".durably" / "durably.db"
    assert db.is_file()
    logs = [record for line in started.stderr.splitlines() if (record := json.loads(line))["logger"]
            == "durably.workflow"]
    assert logs[0]["message"].startswith("callback ") and logs[0]["executionArn"] == arn

    events = json.loads(durably(tmp_path, "history", arn, "--output", "json").stdout)["Events"]
    callback_id = next(e["CallbackStartedDetails"]["CallbackId"] for e in events
                       if e["EventType"] == "CallbackStarted")
    assert logs[0]["message"] == f"callback {callback_id}"
    durably(tmp_path, "callback", "success", callback_id, "--payload", '"approved"')
    assert status_of(db, arn) == "RUNNING"

    worker = subprocess.Popen([sys.executable, "-m", "durably", "worker", "--workers", "2"], cwd=tmp_path,
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while status_of(db, arn) == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=15)
    assert worker.returncode == 0, err
    assert "durably worker: stopped" in err and "Traceback" not in err
    assert out == ""

    final = json.loads(durably(tmp_path, "get", arn, "--output", "json").stdout)
    assert final["Status"] == "SUCCEEDED"
    assert json.loads(final["Result"]) == {"n": 2, "answer": '"approved"'}
    types = [e["EventType"] for e in json.loads(durably(tmp_path, "history", arn, "--output", "json").stdout)
             ["Events"]]
    assert types.count("CallbackSucceeded") == 1 and "WaitSucceeded" in types and types[-1] == "ExecutionSucceeded"


def test_run_waits_for_real(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    began = time.monotonic()
    done = durably(tmp_path, "run", str(tmp_path / "flow.py") + ":timed", "--output", "json")
    assert time.monotonic() - began >= 1.0
    execution: dict[str, Any] = json.loads(done.stdout)
    assert execution["Status"] == "SUCCEEDED" and execution["Result"] == '"waited"'
    table = durably(tmp_path, "history", execution["DurableExecutionArn"])
    assert "WaitSucceeded" in table.stdout and "pause" in table.stdout


def test_bad_database_from_a_real_process(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("not sqlite")
    done = durably(tmp_path, "--db", "notes.db", "list", check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("Error: NotADurablyDatabase: ") and done.stderr.count("\n") == 1
    assert (tmp_path / "notes.db").read_text() == "not sqlite"


def test_ctrl_c_during_run_leaves_it_running(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    run = subprocess.Popen([sys.executable, "-m", "durably", "run", "flow.py:slow", "--name", "sleepy"],
                           cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = tmp_path / ".durably" / "durably.db"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # interrupt once the step body runs
            if db.exists():
                engine = Engine(db)
                try:
                    listed = engine.list_executions()["DurableExecutions"]
                    if listed and any(e["EventType"] == "StepStarted"
                                      for e in engine.get_history(listed[0]["DurableExecutionArn"])):
                        break
                finally:
                    engine.close()
                    engine.store.close()
            time.sleep(0.05)
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=15)
    finally:
        run.kill()
    assert run.returncode == 130, err
    assert out == ""
    assert "is still RUNNING" in err and "Traceback" not in err
    listed = json.loads(durably(tmp_path, "list", "--output", "json").stdout)["DurableExecutions"]
    assert [(e["DurableExecutionName"], e["Status"]) for e in listed] == [("sleepy", "RUNNING")]
