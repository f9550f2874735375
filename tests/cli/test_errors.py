"""Bad input: one line ``Error: <code>: <message>`` on stderr, a non-zero exit, no traceback, no damage."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

ARN = "arn:aws:lambda:us-east-1:000000000000:function:nope:$LATEST/durable-execution/x/0123"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def existing_db(durably: Any) -> Any:
    """The database exists (one finished execution), so lookups reach the engine."""
    assert durably("run", "handlers.py:double", "--input", '{"n": 1}').exit_code == 0
    return durably


@pytest.mark.parametrize("verb", [["get", ARN], ["history", ARN], ["stop", ARN]])
def test_unknown_arn(existing_db: Any, one_line_error: Any, verb: list[str]) -> None:
    line = one_line_error(existing_db(*verb), "ResourceNotFoundException")
    assert ARN in line


@pytest.mark.parametrize("verb", [["success", "cb-unknown", "--payload", "x"], ["failure", "cb-unknown"],
                                  ["heartbeat", "cb-unknown"]])
def test_unknown_callback_id(existing_db: Any, one_line_error: Any, verb: list[str]) -> None:
    one_line_error(existing_db("callback", *verb), "ResourceNotFoundException")


def test_lookups_without_a_database_create_none(durably: Any, one_line_error: Any) -> None:
    line = one_line_error(durably("get", ARN), "ResourceNotFoundException")
    assert "no database" in line
    one_line_error(durably("callback", "success", "cb"), "ResourceNotFoundException")
    assert not durably.db.exists() and not durably.db.parent.exists()


def test_callback_answered_twice(durably: Any, one_line_error: Any) -> None:
    arn = durably.start("handlers.py:approval")["DurableExecutionArn"]
    callback_id = durably.callback_id(arn)
    assert durably("callback", "success", callback_id, "--payload", "yes").exit_code == 0
    before = durably.events(arn)
    line = one_line_error(durably("callback", "success", callback_id, "--payload", "again"),
                          "ResourceNotFoundException")
    assert "already SUCCEEDED" in line
    one_line_error(durably("callback", "failure", callback_id), "ResourceNotFoundException")
    one_line_error(durably("callback", "heartbeat", callback_id), "ResourceNotFoundException")
    assert durably.events(arn) == before


@pytest.mark.parametrize("text", ["{bad", "", "{'single': 1}", "[1,"])
def test_input_that_is_not_json(durably: Any, one_line_error: Any, text: str) -> None:
    line = one_line_error(durably("run", "handlers.py:double", "--input", text), "InvalidParameterValueException", 2)
    assert "--input is not valid JSON" in line
    assert not durably.db.exists()


def test_input_file_that_is_missing(durably: Any, one_line_error: Any) -> None:
    line = one_line_error(durably("run", "handlers.py:double", "--input", "file://missing.json"),
                          "InvalidParameterValueException", 2)
    assert "missing.json" in line


@pytest.mark.parametrize("payload", ["{nope", '"just a string"', "[1, 2]", '{"ErrorKind": "x"}',
                                     '{"ErrorType": 3}', '{"StackTrace": "not a list"}'])
def test_failure_payload_that_is_not_an_error_object(durably: Any, one_line_error: Any, payload: str) -> None:
    arn = durably.start("handlers.py:approval")["DurableExecutionArn"]
    callback_id = durably.callback_id(arn)
    one_line_error(durably("callback", "failure", callback_id, "--payload", payload),
                   "InvalidParameterValueException", 2)
    assert durably.events(arn)[-1]["EventType"] == "InvocationCompleted"  # still waiting
    assert durably("callback", "success", callback_id, "--payload", "later").exit_code == 0


def test_payload_over_one_mebibyte(durably: Any, one_line_error: Any) -> None:
    arn = durably.start("handlers.py:approval")["DurableExecutionArn"]
    callback_id = durably.callback_id(arn)
    big = "x" * (1024 * 1024 + 1)
    one_line_error(durably("callback", "success", callback_id, "--payload", big), "RequestTooLargeException")
    huge_error = json.dumps({"ErrorType": "Big", "ErrorData": big})
    one_line_error(durably("callback", "failure", callback_id, "--payload", huge_error), "RequestTooLargeException")
    assert durably.json("get", arn)["Status"] == "RUNNING"
    assert durably("callback", "success", callback_id, "--payload", "x" * (1024 * 1024)).exit_code == 0


def test_input_over_the_limit(durably: Any, one_line_error: Any) -> None:
    (durably.root / "big.json").write_text(json.dumps("y" * (6 * 1024 * 1024 + 1)))
    one_line_error(durably("run", "handlers.py:double", "--input", "file://big.json"), "RequestTooLargeException")
    assert durably.json("list") == {"DurableExecutions": []}


@pytest.mark.parametrize("ref", ["no_such_module_xyz:handler", "handlers.py:missing", "missing.py:handler",
                                 "broken.py:handler", "handlers.py:plain", "handlers.py"])
def test_handler_that_cannot_be_imported(durably: Any, one_line_error: Any, ref: str) -> None:
    (durably.root / "broken.py").write_text("def handler(:\n")
    result = durably("run", ref)
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert line.startswith(("Error: HandlerImportError: ", "Error: ResourceNotFoundException: ")), line
    one_line_error(result, line.split(":")[1].strip())
    assert durably.json("list") == {"DurableExecutions": []}


@pytest.mark.parametrize("option,value", [("--name", "has space"), ("--name", "x" * 65), ("--name", "ünï"),
                                          ("--function-name", "bad/name")])
def test_invalid_names(durably: Any, one_line_error: Any, option: str, value: str) -> None:
    line = one_line_error(durably("run", "handlers.py:double", option, value), "InvalidParameterValueException", 2)
    assert option in line


def test_same_name_different_input(durably: Any, one_line_error: Any) -> None:
    assert durably("run", "handlers.py:double", "--name", "once", "--input", '{"n": 1}').exit_code == 0
    one_line_error(durably("run", "handlers.py:double", "--name", "once", "--input", '{"n": 2}'),
                   "DurableExecutionAlreadyStartedException")


@pytest.mark.sqlite_only
def test_text_file_as_database(durably: Any, one_line_error: Any) -> None:
    path = durably.root / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 100)
    before = _digest(path)
    for verb in (["list"], ["get", ARN], ["run", "handlers.py:double"], ["callback", "heartbeat", "cb"]):
        line = one_line_error(durably(*verb, "--db", str(path)), "NotADurablyDatabase")
        assert "notes.txt" in line
    assert _digest(path) == before
    assert sorted(p.name for p in durably.root.iterdir()) == ["handlers.py", "notes.txt"]


@pytest.mark.sqlite_only
def test_foreign_sqlite_database(durably: Any, one_line_error: Any) -> None:
    path = durably.root / "app.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers(name) VALUES ('ann')")
    conn.commit()
    conn.close()
    before = _digest(path)
    for verb in (["list"], ["run", "handlers.py:double"], ["worker"]):
        line = one_line_error(durably(*verb, "--db", str(path)), "NotADurablyDatabase")
        assert "customers" in line
    assert _digest(path) == before
    assert not Path(f"{path}-wal").exists()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


@pytest.mark.parametrize("args", [["get"], ["history"], ["nope"], ["run"], ["list", "--max-items", "0"],
                                  ["list", "--status", "DONE"], ["--output", "yaml", "list"],
                                  ["worker", "--workers", "0"], ["callback", "success"],
                                  ["callback", "maybe", "cb"], ["run", "handlers.py:double", "--bogus"]])
def test_usage_errors_exit_2(durably: Any, args: list[str]) -> None:
    result = durably(*args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output


def test_no_arguments_shows_help(durably: Any) -> None:
    result = durably.runner.invoke(durably.cli_group, [])
    assert result.exit_code == 2 and "Commands:" in result.output


def test_unexpected_errors_are_one_line_too(durably: Any, one_line_error: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from durably.core.engine.service import Service

    def broken(self: Service, **filters: Any) -> dict[str, Any]:
        raise RuntimeError("disk on fire")
    assert durably("run", "handlers.py:double", "--input", '{"n": 1}').exit_code == 0
    monkeypatch.setattr(Service, "list_executions", broken)
    line = one_line_error(durably("list"), "RuntimeError")
    assert "disk on fire" in line and "DURABLY_DEBUG" in line
