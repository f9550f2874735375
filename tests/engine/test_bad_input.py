"""Bad input at the engine's API: clear errors, and nothing changed afterwards."""

from __future__ import annotations

import importlib
import json
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from durably.core import (
    DurableContext,
    Duration,
    ErrorObject,
    HandlerImportError,
    InvalidParameterValueException,
    NotADurablyDatabase,
    RequestTooLargeException,
    ResourceNotFoundException,
    durable_execution,
)
from durably.core.engine import engine as engine_module
from durably.core.engine.engine import Engine
from durably.core.engine.functions import FunctionSpec
from durably.core.engine.stores.base import ExecutionQuery
from durably.core.limits import (
    MAX_ERROR_DATA,
    MAX_ERROR_MESSAGE,
    MAX_EXECUTION_RESULT,
    MAX_OPERATION_PAYLOAD,
    utf8_size,
)


@durable_execution
def approval(event: Any, ctx: DurableContext) -> Any:
    return ctx.create_callback(name="approval").result()


MISSING_ARN = ("arn:aws:lambda:us-east-1:000000000000:function:approval:$LATEST/durable-execution/"
               "nobody/00000000000000000000000000000000")


def drive(engine: Engine, arn: str) -> dict[str, Any]:
    return engine.run_until_complete(arn, timeout=20, skip_time=True, stop_when_blocked=True)


def callback_id(engine: Engine, arn: str) -> str:
    events = [e for e in engine.get_history(arn) if e["EventType"] == "CallbackStarted"]
    return str(events[-1]["CallbackStartedDetails"]["CallbackId"])


def nothing_started(engine: Engine) -> bool:
    listed = engine.list_executions()["DurableExecutions"]
    return listed == [] and engine.store.read(lambda tx: tx.list_executions(ExecutionQuery())) == []


# ---------------------------------------------------------------------------- unknown things
def test_unknown_arn(engine: Engine) -> None:
    for call in (lambda: engine.get_execution(MISSING_ARN), lambda: engine.get_history(MISSING_ARN),
                 lambda: engine.stop_execution(MISSING_ARN),
                 lambda: engine.service.get_state(MISSING_ARN),
                 lambda: engine.service.checkpoint(MISSING_ARN, "0" * 32, []),
                 lambda: engine.service.all_operations(MISSING_ARN),
                 lambda: engine.get_execution("not even an arn")):
        with pytest.raises(ResourceNotFoundException) as info:
            call()
        assert info.value.status == 404
    assert nothing_started(engine)


def test_unknown_callback_id(engine: Engine) -> None:
    arn = engine.start_execution(approval, None)
    drive(engine, arn)
    before = engine.get_history(arn)
    calls: list[Callable[[], None]] = [
        lambda: engine.send_callback_success("f" * 40, "x"),
        lambda: engine.send_callback_failure("f" * 40, ErrorObject(ErrorMessage="x")),
        lambda: engine.send_callback_heartbeat("f" * 40),
        lambda: engine.send_callback_success("", "x"),
    ]
    for call in calls:
        with pytest.raises(ResourceNotFoundException, match="no callback"):
            call()
    assert engine.get_history(arn) == before


@pytest.mark.parametrize("second", ["success", "failure", "heartbeat"])
def test_callback_answered_twice(engine: Engine, second: str) -> None:
    arn = engine.start_execution(approval, None)
    drive(engine, arn)
    cid = callback_id(engine, arn)
    engine.send_callback_success(cid, "first")
    ops_before = [op.model_dump_json() for op in engine.service.all_operations(arn)]
    history_before = engine.get_history(arn)
    with pytest.raises(ResourceNotFoundException, match="already SUCCEEDED"):
        if second == "success":
            engine.send_callback_success(cid, "second")
        elif second == "failure":
            engine.send_callback_failure(cid, ErrorObject(ErrorMessage="second"))
        else:
            engine.send_callback_heartbeat(cid)
    assert [op.model_dump_json() for op in engine.service.all_operations(arn)] == ops_before
    assert engine.get_history(arn) == history_before
    done = drive(engine, arn)
    assert done["Status"] == "SUCCEEDED" and json.loads(done["Result"]) == "first"


# ---------------------------------------------------------------------------- start input
@pytest.mark.parametrize("text", ["{not json", "abc", "", "{\"a\": 1", "[1, 2,]", None])
def test_non_json_start_input(engine: Engine, text: str | None) -> None:
    with pytest.raises(InvalidParameterValueException, match="not JSON"):
        engine.start_execution(approval, text, input_is_json=True)
    assert nothing_started(engine)


def test_json_start_input_is_stored_as_given(engine: Engine) -> None:
    arn = engine.start_execution(approval, '{"b": 2,  "a": 1}', input_is_json=True)
    assert engine.get_execution(arn)["InputPayload"] == '{"b": 2,  "a": 1}'


@pytest.mark.parametrize("value", [object(), {"f": lambda: 1}, float("nan"), {"k": b"\xff"}])
def test_non_serialisable_start_input(engine: Engine, value: Any) -> None:
    with pytest.raises(InvalidParameterValueException, match="cannot be stored as JSON"):
        engine.start_execution(approval, value)
    assert nothing_started(engine)


def test_start_input_over_6_mib(engine: Engine) -> None:
    big = "x" * (MAX_EXECUTION_RESULT - 1)  # + 2 quotes: just over the limit as JSON
    with pytest.raises(RequestTooLargeException, match=str(MAX_EXECUTION_RESULT)) as info:
        engine.start_execution(approval, big)
    assert info.value.status == 413
    with pytest.raises(RequestTooLargeException):
        engine.start_execution(approval, json.dumps("é" * (MAX_EXECUTION_RESULT // 2)), input_is_json=True)
    assert nothing_started(engine)
    # just at the limit is accepted
    arn = engine.start_execution(approval, "x" * (MAX_EXECUTION_RESULT - 2))
    assert len(engine.get_execution(arn)["InputPayload"]) == MAX_EXECUTION_RESULT


def test_bad_execution_name(engine: Engine) -> None:
    for name in ("has space", "x" * 65, "slash/name", ""):
        with pytest.raises(InvalidParameterValueException):
            engine.start_execution(approval, None, name=name)
    assert nothing_started(engine)


# ---------------------------------------------------------------------------- callback payloads
def test_callback_payload_over_1_mib(engine: Engine) -> None:
    arn = engine.start_execution(approval, None)
    drive(engine, arn)
    cid = callback_id(engine, arn)
    history = engine.get_history(arn)
    with pytest.raises(RequestTooLargeException) as info:
        engine.send_callback_success(cid, "x" * (MAX_OPERATION_PAYLOAD + 1))
    assert info.value.status == 413
    with pytest.raises(RequestTooLargeException):
        engine.send_callback_success(cid, ("é" * (MAX_OPERATION_PAYLOAD // 2 + 1)).encode())
    with pytest.raises(RequestTooLargeException, match="ErrorData"):
        engine.send_callback_failure(cid, ErrorObject(ErrorData="d" * (MAX_ERROR_DATA + 1)))
    assert engine.get_history(arn) == history
    op = next(o for o in engine.service.all_operations(arn) if o.Type == "CALLBACK")
    assert op.Status == "STARTED"
    engine.send_callback_success(cid, "small")
    assert json.loads(drive(engine, arn)["Result"]) == "small"


def test_callback_failure_with_a_huge_message_is_stored_truncated(engine: Engine) -> None:
    arn = engine.start_execution(approval, None)
    drive(engine, arn)
    engine.send_callback_failure(callback_id(engine, arn), ErrorObject(
        ErrorType="Rejected", ErrorMessage="é" * 2_000_000, StackTrace=[f"frame {i}\n" for i in range(1000)]))
    op = next(o for o in engine.service.all_operations(arn) if o.Type == "CALLBACK")
    assert op.Status == "FAILED" and op.CallbackDetails is not None and op.CallbackDetails.Error is not None
    stored = op.CallbackDetails.Error
    assert stored.ErrorMessage is not None and stored.ErrorMessage.endswith("… [truncated from 4,000,000 bytes]")
    assert utf8_size(stored.ErrorMessage) <= MAX_ERROR_MESSAGE
    assert stored.StackTrace is not None and stored.StackTrace[-1] == "frame 999\n"
    (event,) = [e for e in engine.get_history(arn) if e["EventType"] == "CallbackFailed"]
    assert event["CallbackFailedDetails"]["Error"]["Payload"] == stored.to_wire()


def test_callback_payload_not_utf8(engine: Engine) -> None:
    arn = engine.start_execution(approval, None)
    drive(engine, arn)
    with pytest.raises(InvalidParameterValueException, match="UTF-8"):
        engine.send_callback_success(callback_id(engine, arn), b"\xff\xfe")
    assert [o.Status for o in engine.service.all_operations(arn) if o.Type == "CALLBACK"] == ["STARTED"]


# ---------------------------------------------------------------------------- handler references
@pytest.mark.parametrize("ref", ["no_such_module_for_durably_tests:handler", "json:no_such_attribute"])
def test_handler_reference_that_cannot_be_imported(engine: Engine, ref: str) -> None:
    with pytest.raises(HandlerImportError) as info:
        engine.start_execution(ref, None)
    assert ref in str(info.value)
    assert nothing_started(engine)


def test_handler_file_that_does_not_exist(engine: Engine, tmp_path: Path) -> None:
    ref = f"{tmp_path / 'missing.py'}:handler"
    with pytest.raises(HandlerImportError, match=r"missing\.py"):
        engine.start_execution(ref, None)
    assert nothing_started(engine)


def test_handler_file_that_raises_on_import(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "broken_handler.py"
    path.write_text("raise RuntimeError('broken at import')\n")
    with pytest.raises(HandlerImportError, match="broken at import") as info:
        engine.start_execution(f"{path}:handler", None)
    assert "broken_handler.py:handler" in str(info.value)


def test_reference_to_something_not_durable(engine: Engine) -> None:
    with pytest.raises(HandlerImportError, match="durable_execution"):
        engine.start_execution("json:dumps", None)
    assert nothing_started(engine)


def test_stored_reference_that_no_longer_imports_is_retried_not_failed(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A handler that cannot be imported is a deployment problem: reported each time, retried, never failed."""
    monkeypatch.setattr(engine_module, "IMPORT_RETRY_FIRST", 0.05)
    ref = "gone_module_for_durably_tests:handler"
    arn, _ = engine.service.start_execution(FunctionSpec("gone", True, ref), "{}")
    with caplog.at_level(logging.ERROR, logger="durably.engine"):
        state = engine.run_until_complete(arn, timeout=1.0)
    assert state["Status"] == "RUNNING"
    reports = [r for r in caplog.records if ref in r.getMessage() and arn in r.getMessage()]
    assert len(reports) >= 2, "each retry is reported"
    problem = engine.service.last_invocation_error(arn)
    assert problem is not None and problem["Error"]["ErrorType"] == "HandlerImportError"
    assert ref in problem["Error"]["ErrorMessage"]
    assert not [e for e in engine.get_history(arn) if e["EventType"] == "InvocationCompleted"]

    (tmp_path / "gone_module_for_durably_tests.py").write_text(
        "from durably import durable_execution\n\n@durable_execution\ndef handler(event, ctx):\n"
        "    return ctx.step(lambda _: 'deployed', name='now')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    done = engine.run_until_complete(arn, timeout=20)
    assert done["Status"] == "SUCCEEDED" and done["Result"] == '"deployed"'
    assert engine.service.last_invocation_error(arn) is None


# ---------------------------------------------------------------------------- foreign databases
@pytest.mark.sqlite_only
def test_text_file_is_not_a_durably_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    before = path.read_bytes()
    with pytest.raises(NotADurablyDatabase, match="not a durably database"):
        Engine(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


@pytest.mark.sqlite_only
def test_foreign_sqlite_database_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT)")
    conn.executemany("INSERT INTO customers(name) VALUES (?)", [("ada",), ("grace",)])
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(NotADurablyDatabase, match="customers"):
        Engine(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert conn.execute("SELECT name FROM customers ORDER BY id").fetchall() == [("ada",), ("grace",)]
    conn.close()


@pytest.mark.sqlite_only
def test_foreign_wal_database_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t(x)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(NotADurablyDatabase):
        Engine(path)
    assert path.read_bytes() == before


def test_durably_database_opens_again(tmp_path: Path) -> None:
    path = tmp_path / "mine.db"
    with Engine(path, synchronous="OFF") as first:
        arn = first.start_execution(approval, 1)
        first.store.close()
    with Engine(path, synchronous="OFF") as second:
        assert second.get_execution(arn)["Status"] == "RUNNING"
        second.store.close()


def test_empty_file_becomes_a_durably_database(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with Engine(path, synchronous="OFF") as eng:
        eng.start_execution(approval, 1)
        eng.store.close()


def test_a_stop_with_a_huge_error_message_is_stored_truncated(engine: Engine) -> None:
    @durable_execution
    def waits(event: Any, ctx: DurableContext) -> Any:
        ctx.wait(Duration(60), name="w")

    arn = engine.start_execution(waits, None)
    engine.run_until_suspended(arn)
    engine.stop_execution(arn, ErrorObject(ErrorType="Ops", ErrorMessage="m" * 3_000_000))
    stored = engine.get_execution(arn)["Error"]["ErrorMessage"]
    assert len(stored) < 70_000 and "truncated" in stored
