"""``durably publish-version``, ``update-alias``, ``list-versions`` and ``run FUNCTION:ALIAS``."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

APP = '''
import pricing
from durably import DurableContext, durable_execution


@durable_execution
def quote(event, context: DurableContext):
    answer = context.create_callback(name="approve").result()
    return {"price": pricing.price(event["n"]), "pricing": pricing.VERSION, "answer": answer}
'''


def pricing(version: int) -> str:
    return f"VERSION = {version}\n\ndef price(n):\n    return n * {version * 10}\n"


def test_publish_alias_list_and_run_a_version(durably: Any) -> None:
    published = durably("publish-version", "double", "handlers.py:double", "--description", "first cut")
    assert published.exit_code == 0, published.stderr
    assert published.stdout.strip() == ("published double version 1: "
                                        "arn:aws:lambda:us-east-1:000000000000:function:double:1")
    (durably.root / "handlers.py").write_text((durably.root / "handlers.py").read_text().replace("* 2", "* 3"))
    assert durably.json("publish-version", "double", "handlers.py:double")["Version"] == "2"
    moved = durably("update-alias", "double", "live", "1")
    assert moved.stdout.strip() == ("double:live is version 1: "
                                    "arn:aws:lambda:us-east-1:000000000000:function:double:live")

    ran = durably.json("run", "double:live", "--input", '{"n": 5}')
    assert ran["Version"] == "1" and json.loads(ran["Result"]) == {"doubled": 10}
    assert ":function:double:1/durable-execution/" in ran["DurableExecutionArn"]
    assert json.loads(durably.json("run", "double:2", "--input", '{"n": 5}')["Result"]) == {"doubled": 15}
    latest = durably.json("run", "double", "--input", '{"n": 5}')  # $LATEST: the code as it is now
    assert latest["Version"] == "$LATEST" and json.loads(latest["Result"]) == {"doubled": 15}
    assert json.loads(durably.json("run", "handlers.py:double", "--input", '{"n": 1}')["Result"]) == {"doubled": 3}

    table = durably("list-versions", "double").stdout
    lines = [line.split() for line in table.splitlines()]
    assert ["1", "live"] == lines[2][:2] and lines[2][-2:] == ["first", "cut"] and lines[3][0] == "2"
    listed = durably.json("list-versions", "double")
    assert [v["Version"] for v in listed["Versions"]] == ["1", "2"]
    assert listed["Aliases"][0]["Name"] == "live" and listed["Aliases"][0]["FunctionVersion"] == "1"


def test_bad_versions_are_one_line_errors(durably: Any, one_line_error: Callable[..., str]) -> None:
    assert "nowhere.py" in one_line_error(durably("publish-version", "app", "nowhere.py:handler"),
                                          "HandlerImportError")
    assert "not decorated" in one_line_error(durably("publish-version", "app", "handlers.py:plain"),
                                             "HandlerImportError")
    one_line_error(durably("publish-version", "bad name", "handlers.py:double"),
                   "InvalidParameterValueException", 2)
    assert "no function 'app'" in one_line_error(durably("list-versions", "app"), "ResourceNotFoundException")
    durably("publish-version", "app", "handlers.py:double")
    assert "not only digits" in one_line_error(durably("update-alias", "app", "7", "1"),
                                               "InvalidParameterValueException")
    assert "no published version 9" in one_line_error(durably("update-alias", "app", "live", "9"),
                                                      "ResourceNotFoundException")
    assert "no alias 'live'" in one_line_error(durably("run", "app:live"), "ResourceNotFoundException")
    assert "no published version 3" in one_line_error(durably("run", "app:3"), "ResourceNotFoundException")
    assert "with published versions" in one_line_error(durably("run", "other:1"), "ResourceNotFoundException")


def _callback_id(process: Any, arn: str) -> str:
    events = json.loads(process("history", arn, "--output", "json").stdout)["Events"]
    return str(next(e["CallbackStartedDetails"]["CallbackId"] for e in events if e["EventType"] == "CallbackStarted"))


def test_two_versions_of_one_function_run_side_by_side_in_one_worker(tmp_path: Path, process: Any) -> None:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "pricing.py").write_text(pricing(1))
    process("publish-version", "app", "app.py:quote")
    process("update-alias", "app", "live", "1")
    first = json.loads(process("run", "app:live", "--input", '{"n": 3}', "--no-wait", "--output", "json").stdout)
    (tmp_path / "pricing.py").write_text(pricing(2))  # app.py is the same; the module it imports is not
    process("publish-version", "app", "app.py:quote")
    process("update-alias", "app", "live", "2")
    second = json.loads(process("run", "app:live", "--input", '{"n": 3}', "--no-wait", "--output", "json").stdout)
    arns = [first["DurableExecutionArn"], second["DurableExecutionArn"]]
    assert [first["Status"], second["Status"]] == ["RUNNING", "RUNNING"]

    worker = process.popen("worker", "--workers", "2")
    try:
        for arn, answer in zip(arns, ("one", "two"), strict=True):
            process("callback", "success", _callback_id(process, arn), "--payload", answer)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ended = [json.loads(process("get", arn, "--output", "json").stdout) for arn in arns]
            if all(e["Status"] != "RUNNING" for e in ended):
                break
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0 and "Traceback" not in err, err
    assert [e["Status"] for e in ended] == ["SUCCEEDED", "SUCCEEDED"], err
    assert [json.loads(e["Result"]) for e in ended] == [{"price": 30, "pricing": 1, "answer": "one"},
                                                        {"price": 60, "pricing": 2, "answer": "two"}]
    assert [e["Version"] for e in ended] == ["1", "2"]
    assert sorted(p.name for p in (tmp_path / ".durably" / "versions" / "app").iterdir()) == ["1", "2"]


SLOW = '''
import os, pathlib, time
from durably import DurableContext, Duration, durable_execution


@durable_execution
def work(event, context: DurableContext):
    context.wait(Duration.from_seconds(1), name="later")

    def body(_):
        first = pathlib.Path(event["dir"]) / "first"
        if not first.exists():
            first.write_text(str(os.getpid()))
            time.sleep(4)
            return "stale"
        return "fresh"
    return context.step(body, name="work")
'''


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_killed_workers_version_invocation_is_taken_over_and_its_process_fenced(
        tmp_path: Path, process: Any) -> None:
    (tmp_path / "slow.py").write_text(SLOW)
    process("publish-version", "slow", "slow.py:work")
    started = process("run", "slow:1", "--input", json.dumps({"dir": str(tmp_path)}), "--no-wait", "--output", "json")
    arn = json.loads(started.stdout)["DurableExecutionArn"]
    first = process.popen("worker")
    deadline = time.monotonic() + 20
    while not (tmp_path / "first").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    stale_pid = int((tmp_path / "first").read_text())
    first.kill()  # the worker only: its version process goes on with the step, unaware
    first.wait(timeout=10)  # not communicate(): the version process holds the worker's stderr until it exits
    second = process.popen("worker")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
                _gone(stale_pid) and json.loads(process("get", arn, "--output", "json").stdout)["Status"] != "RUNNING"):
            time.sleep(0.2)
    finally:
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=30)
        first.communicate(timeout=10)
    assert _gone(stale_pid)  # it exited once its invocation ended: its parent was gone
    final = json.loads(process("get", arn, "--output", "json").stdout)
    assert final["Status"] == "SUCCEEDED" and final["Result"] == '"fresh"', err
    events = json.loads(process("history", arn, "--output", "json").stdout)["Events"]
    types = [e["EventType"] for e in events]
    assert types.count("StepSucceeded") == 1 and types[-1] == "ExecutionSucceeded"
    crashed = [e for e in events
               if e["EventType"] == "InvocationCompleted" and "Error" in e["InvocationCompletedDetails"]]
    assert len(crashed) == 1 and "exited during the invocation" in json.dumps(crashed[0])


@pytest.mark.sqlite_only
def test_delete_function_removes_its_versions_code_and_closed_executions(durably: Any,
                                                                         one_line_error: Callable[..., str]) -> None:
    durably("publish-version", "double", "handlers.py:double")
    done = durably.json("run", "double:1", "--input", '{"n": 1}')
    other = durably.json("run", "handlers.py:double", "--input", '{"n": 1}', "--function-name", "other")
    snapshots = durably.db.parent / "versions" / "double"
    assert snapshots.is_dir()
    waiting = durably.start("handlers.py:approval", "--function-name", "double")["DurableExecutionArn"]
    refused = one_line_error(durably("delete-function", "double", "--yes"), "ResourceConflictException")
    assert waiting in refused
    assert durably.json("get", done["DurableExecutionArn"])["Status"] == "SUCCEEDED"  # nothing deleted
    durably("stop", waiting)
    assert durably("delete-function", "double").exit_code != 0  # asks, and no answer is no
    deleted = durably.json("delete-function", "double", "--yes")
    assert deleted == {"FunctionName": "double", "DeletedExecutions": 2, "DeletedVersions": 1}
    assert not snapshots.exists()
    assert durably.json("list", "--function-name", "double")["DurableExecutions"] == []
    assert durably.json("get", other["DurableExecutionArn"])["Status"] == "SUCCEEDED"  # another function's
    one_line_error(durably("delete-function", "double", "--yes"), "ResourceNotFoundException")
