"""``durably diagnose``: the playbook run on real executions, read through the CLI."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from durably import (
    CallbackConfig,
    DurableContext,
    Duration,
    JitterStrategy,
    RetryStrategyConfig,
    StepConfig,
    create_retry_strategy,
    durable_execution,
)
from durably.core.engine.clock import Clock, SkippingClock
from durably.core.engine.engine import Engine

APPROVAL = '''
from durably import CallbackConfig, DurableContext, Duration, durable_execution


@durable_execution
def approval(event, context: DurableContext):
    cb = context.create_callback(name="approve", config=CallbackConfig(timeout=Duration.from_hours(2)))
    return {"answer": cb.result()}
'''


@durable_execution
def flaky_charge(event: Any, context: DurableContext) -> Any:
    def charge(_: Any) -> Any:
        raise ConnectionError("gateway down")
    retry = create_retry_strategy(RetryStrategyConfig(max_attempts=3, initial_delay=Duration(1), max_delay=Duration(1),
                                                      jitter_strategy=JitterStrategy.NONE))
    return context.step(charge, name="charge", config=StepConfig(retry_strategy=retry))


@durable_execution
def waits_for_approval(event: Any, context: DurableContext) -> Any:
    return context.create_callback(name="approve", config=CallbackConfig(timeout=Duration.from_days(1))).result()


CODE = {"first": "reserve"}


@durable_execution
def changes_its_mind(event: Any, context: DurableContext) -> Any:
    """Its first step's name is CODE["first"]: change it between invocations to break replay."""
    context.step(lambda _: 1, name=CODE["first"])
    return context.create_callback(name="go").result()


@contextmanager
def engine_on(db: Path, clock: Clock | None = None) -> Iterator[Engine]:
    engine = Engine(db, clock=clock)
    try:
        yield engine
    finally:
        engine.close()
        engine.store.close()


def finding(diagnosis: dict[str, Any], kind: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [f for f in diagnosis["findings"] if f["kind"] == kind]
    assert len(found) == 1, found
    return found[0]


def test_a_callback_wait_names_the_callback_the_time_left_and_the_commands_that_answer_it(durably: Any) -> None:
    (durably.root / "approvals.py").write_text(APPROVAL)
    arn = durably.start("approvals.py:approval", "--name", "approval-1")["DurableExecutionArn"]
    callback_id = durably.callback_id(arn)

    diagnosis = durably.json("diagnose", "approval-1")
    assert diagnosis["status"] == "RUNNING" and diagnosis["execution_arn"] == arn
    waiting = finding(diagnosis, "open_callback")
    assert waiting["details"]["callback_id"] == callback_id and waiting["details"]["operation"] == "approve"
    assert 7_000_000 < waiting["details"]["timeout_left_ms"] <= 7_200_000
    assert "times out in 1 h 59 min" in waiting["summary"]
    success, failure = waiting["recommendation"].splitlines()
    assert failure.startswith(f"durably --db {durably.db} callback failure {callback_id} --payload ")

    answer = shlex.split(success)
    assert answer[:5] == ["durably", "--db", str(durably.db), "callback", "success"]
    answered = durably(*[a if a != "..." else '"yes"' for a in answer[3:]])  # the command, as printed
    assert answered.exit_code == 0, answered.stderr
    assert not [f for f in durably.json("diagnose", arn)["findings"] if f["kind"] == "open_callback"]

    shown = durably("diagnose", arn[-32:-20])  # an id prefix
    assert shown.exit_code == 0, shown.stderr
    assert "ready to run, but no worker has claimed it" in shown.stdout


@pytest.mark.sqlite_only
def test_the_readable_report_of_a_callback_wait(durably: Any, terminal: Callable[..., list[str]]) -> None:
    (durably.root / "approvals.py").write_text(APPROVAL)
    arn = durably.start("approvals.py:approval", "--name", "approval-2")["DurableExecutionArn"]
    callback_id = durably.callback_id(arn)
    lines = terminal("--db", str(durably.db), "diagnose", "approval-2", columns=100)
    assert lines[0].startswith("Diagnosis of approval-2 (approvals-approval): RUNNING")
    assert lines[1] == f"'{arn}'", "the ARN, whole and quoted for the shell"
    assert any(line.startswith("INFO     waiting on callback 'approve' since ") for line in lines)
    assert f"         → durably --db {durably.db} callback success {callback_id} --payload '...'" in lines
    assert all(len(line) <= 100 for line in lines if "→" not in line and arn not in line)


def test_a_step_that_failed_after_its_retries(durably: Any) -> None:
    with engine_on(durably.db, SkippingClock()) as engine:
        arn = engine.start_execution(flaky_charge, None, name="charge-1")
        assert engine.run_until_complete(arn, skip_time=True)["Status"] == "FAILED"
    diagnosis = durably.json("diagnose", "charge-1")
    assert diagnosis["status"] == "FAILED"
    status = finding(diagnosis, "status")
    assert status["severity"] == "error" and "StepError: gateway down" in status["summary"]
    failed = finding(diagnosis, "failed_operation")
    assert failed["severity"] == "error"
    assert failed["summary"] == "step 'charge' FAILED after 3 attempts: ConnectionError: gateway down"
    assert failed["details"]["attempts"] == 3 and failed["details"]["failed_attempts"] == 3
    assert failed["details"]["error_type"] == "ConnectionError"
    assert any('raise ConnectionError("gateway down")' in line for line in failed["details"]["stack_trace"])
    assert finding(diagnosis, "retention")["details"]["retention_days"] == 14

    shown = durably("diagnose", "charge-1")
    assert shown.exit_code == 0, "a diagnosis that finds a failure still succeeds"
    assert "ERROR    step 'charge' FAILED after 3 attempts" in shown.stdout
    assert 'raise ConnectionError("gateway down")' in shown.stdout


def test_a_handler_that_can_no_longer_be_imported(durably: Any, process: Any) -> None:
    """Started from a file (in another process) that is then renamed: each worker's try is an invocation error."""
    (durably.root / "approvals.py").write_text(APPROVAL)
    started = process("--db", str(durably.db), "--output", "json", "run", "approvals.py:approval", "--name", "gone-1",
                      "--no-wait", "--quiet")
    arn = json.loads(started.stdout)["DurableExecutionArn"]
    assert durably("callback", "success", durably.callback_id(arn), "--payload", '"yes"').exit_code == 0
    (durably.root / "approvals.py").rename(durably.root / "approvals-old.py")
    with engine_on(durably.db) as engine:
        assert engine.run_until_suspended(arn)["Status"] == "RUNNING"

    diagnosis = durably.json("diagnose", "gone-1")
    problem = finding(diagnosis, "invocation_error")
    assert problem["severity"] == "error" and problem["details"]["error_type"] == "HandlerImportError"
    assert "approvals.py" in problem["summary"] and "no file" in problem["summary"]
    assert diagnosis["handler"] == f"{durably.root / 'approvals.py'}:approval"
    assert diagnosis["handler"] in problem["recommendation"] and "worker" in problem["recommendation"]
    assert diagnosis["findings"][1] == problem, "the error comes first, after the status"


def test_an_execution_near_its_timeout(durably: Any) -> None:
    started_early = SkippingClock()
    started_early.offset_ms = -55_000  # it started 55 s ago
    with engine_on(durably.db, started_early) as engine:
        engine.register_durable_function("approvals", waits_for_approval, execution_timeout=60)
        arn = engine.start_execution("approvals", None, name="late-1")
        assert engine.run_until_suspended(arn)["Status"] == "RUNNING"
    timeout = finding(durably.json("diagnose", "late-1"), "timeout")
    assert timeout["severity"] == "warning" and "of its 1 min 0 s timeout used" in timeout["summary"]
    assert timeout["details"]["execution_timeout_s"] == 60 and timeout["details"]["used_percent"] >= 90
    assert 0 < timeout["details"]["time_left_ms"] <= 5_000
    assert "execution_timeout=" in timeout["recommendation"]
    assert timeout["details"]["slowest"][0]["operation"] == "'approve'"


def test_a_non_deterministic_replay(durably: Any, monkeypatch: Any) -> None:
    with engine_on(durably.db, SkippingClock()) as engine:
        arn = engine.start_execution(changes_its_mind, None, name="changed-1")
        assert engine.run_until_suspended(arn)["Status"] == "RUNNING"
        monkeypatch.setitem(CODE, "first", "reserve_stock")  # a new deployment renamed the step
        engine.send_callback_success(durably.callback_id(arn), '"go"')
        assert engine.run_until_complete(arn)["Status"] == "FAILED"
    diagnosis = durably.json("diagnose", "changed-1")
    broken = finding(diagnosis, "non_determinism")
    assert broken["severity"] == "error" and broken["details"]["error_type"].endswith("NonDeterministicExecutionError")
    assert "'reserve'" in broken["details"]["error_message"]
    command, keep = broken["recommendation"].splitlines()
    assert command.startswith(f"durably --db {durably.db} replay --check ") and f"'{arn}'" in command
    assert "keep the old code" in keep


def test_json_keys(durably: Any) -> None:
    arn = durably.start("handlers.py:approval")["DurableExecutionArn"]
    diagnosis = durably.json("diagnose", arn)
    assert set(diagnosis) == {"execution_arn", "name", "function", "handler", "status", "elapsed_ms", "findings"}
    assert isinstance(diagnosis["elapsed_ms"], int) and diagnosis["function"] == "handlers-approval"
    assert diagnosis["findings"][0]["kind"] == "status"
    for found in diagnosis["findings"]:
        assert set(found) == {"kind", "severity", "summary", "details", "recommendation"}
        assert found["severity"] in ("error", "warning", "info")
        assert isinstance(found["details"], dict) and "\n" not in found["summary"]
    assert finding(diagnosis, "status")["details"]["started"].endswith("+00:00")


def test_an_execution_that_does_not_exist(durably: Any, one_line_error: Callable[..., str]) -> None:
    durably.start("handlers.py:double", "--input", '{"n": 1}')
    line = one_line_error(durably("diagnose", "no-such-execution"), "ResourceNotFoundException")
    assert "no-such-execution" in line
    one_line_error(durably("diagnose", "x", "--db", str(durably.root / "nothing.db")), "ResourceNotFoundException")


def test_a_latest_execution_whose_file_changed_is_warned_about(durably: Any) -> None:
    source = durably.root / "approvals.py"
    source.write_text(APPROVAL)
    durably.start("approvals.py:approval", "--name", "approval-9")
    assert "code_changed" not in [f["kind"] for f in durably.json("diagnose", "approval-9")["findings"]]
    source.write_text(APPROVAL + "\n# edited while the execution waits\n")
    [finding] = [f for f in durably.json("diagnose", "approval-9")["findings"] if f["kind"] == "code_changed"]
    assert finding["severity"] == "warning" and "replay --check" in finding["recommendation"]


def test_a_failed_execution_is_recommended_a_redrive(durably: Any) -> None:
    with engine_on(durably.db, SkippingClock()) as engine:
        arn = engine.start_execution(flaky_charge, None, name="charge-9")
        engine.run_until_complete(arn, skip_time=True)
    status = durably.json("diagnose", "charge-9")["findings"][0]
    assert status["kind"] == "status" and f"redrive '{arn}'" in status["recommendation"]
