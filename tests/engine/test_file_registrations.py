"""Registrations made by a handler file loaded by path record the file's path, so any process runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from durably.core.engine import functions
from durably.core.engine.engine import Engine
from durably.core.engine.functions import load_reference
from pg_store import database

FLOW = '''
from durably import DurableContext, durable_execution, register_durable_function, register_function


def echo(payload):
    return {"echoed": payload}


@durable_execution
def shout(event, context: DurableContext):
    return context.step(lambda _: event["say"].upper(), name="upper")


register_function("echo-target", echo)
register_durable_function("shout-target", shout)


@durable_execution
def handler(event, context: DurableContext):
    return {"echo": context.invoke("echo-target", event, name="echo"),
            "shout": context.invoke("shout-target", event, name="shout")}
'''


def _stored_refs(db: Path) -> dict[str, str | None]:
    engine = Engine(db)
    try:
        return {name: spec.ref for name in ("echo-target", "shout-target")
                if (spec := engine.service.stored_function(name)) is not None}
    finally:
        engine.close()
        engine.store.close()


def test_registrations_of_a_file_record_its_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(functions, "_registry", functions.registered())  # the file's registrations end with the test
    flow = tmp_path / "flow.py"
    flow.write_text(FLOW)
    load_reference(f"{flow}:handler")
    assert _stored_refs(tmp_path / "d.db") == {"echo-target": f"{flow}:echo", "shout-target": f"{flow}:shout"}


def _env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("DURABLY_")}, "PYTHONUNBUFFERED": "1"}


def test_a_worker_that_never_loaded_the_file_runs_what_it_registered(tmp_path: Path,
                                                                     status_of: Callable[[Path, str], str]) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "flow.py").write_text(FLOW)
    db = tmp_path / "durably.db"
    started = subprocess.run(
        [sys.executable, "-m", "durably", "--db", database(db), "run", "flow.py:handler", "--input", '{"say": "hi"}',
         "--no-wait", "--output", "json"], cwd=project, env=_env(), capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    arn = json.loads(started.stdout)["DurableExecutionArn"]
    assert status_of(db, arn) == "RUNNING"

    worker = subprocess.Popen([sys.executable, "-m", "durably", "--db", database(db), "worker"], cwd=elsewhere,
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while status_of(db, arn) == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=15)
    assert worker.returncode == 0, err

    engine = Engine(db)
    try:
        executions = [engine.get_execution(e["DurableExecutionArn"])
                      for e in engine.list_executions()["DurableExecutions"]]
    finally:
        engine.close()
        engine.store.close()
    assert sorted((e["Status"], e.get("Result")) for e in executions) == [
        ("SUCCEEDED", '"HI"'),
        ("SUCCEEDED", '{"echo":{"echoed":{"say":"hi"}},"shout":"HI"}'),
    ], err
