"""The diagnosis module: pure functions over what the service reads, at a time each test chooses."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

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
from durably.cli.diagnose import read_facts
from durably.cli.diagnosis import DAY_MS, Diagnosis, Finding, Moment, Span, diagnose
from durably.cli.render import took
from durably.core.engine.engine import Engine
from durably.core.engine.functions import FunctionSpec
from durably.core.model import ErrorObject


@durable_execution
def pauses(event: Any, context: DurableContext) -> Any:
    context.step(lambda _: 1, name="before")
    context.wait(Duration(10), name="pause")
    return "done"


@durable_execution
def gated(event: Any, context: DurableContext) -> Any:
    config = CallbackConfig(timeout=Duration.from_hours(1), heartbeat_timeout=Duration.from_minutes(10))
    return context.create_callback(name="gate", config=config).result()


@durable_execution
def asks_a_person(event: Any, context: DurableContext) -> Any:
    return context.wait_for_callback(lambda callback_id, _: None, name="approval")


@durable_execution
def retries_slowly(event: Any, context: DurableContext) -> Any:
    def fetch(_: Any) -> Any:
        raise TimeoutError("upstream slow")
    retry = create_retry_strategy(RetryStrategyConfig(
        max_attempts=5, initial_delay=Duration(60), max_delay=Duration(60), jitter_strategy=JitterStrategy.NONE))
    return context.step(fetch, name="fetch", config=StepConfig(retry_strategy=retry))


@durable_execution
def quick(event: Any, context: DurableContext) -> Any:
    return context.step(lambda _: "ok", name="only")


def diagnosis_at(engine: Engine, arn: str, after_ms: int = 0, now: int | None = None) -> Diagnosis:
    """The diagnosis of ``arn`` at ``now``, or ``after_ms`` after the engine's now."""
    facts = read_facts(engine.service, arn)
    return diagnose(dataclasses.replace(facts, now=now if now is not None else facts.now + after_ms))


def one(diagnosis: Diagnosis, kind: str) -> Finding:
    found = [f for f in diagnosis.findings if f.kind == kind]
    assert len(found) == 1, diagnosis.findings
    return found[0]


def rows(finding: Finding, key: str) -> list[dict[str, Any]]:
    """A detail that is a table (operations, timers)."""
    value = finding.details[key]
    assert isinstance(value, list) and all(isinstance(row, dict) for row in value), value
    return cast(list[dict[str, Any]], value)


def kinds(diagnosis: Diagnosis) -> list[str]:
    return [f.kind for f in diagnosis.findings]


@pytest.mark.parametrize(("ms", "text"), [
    (0, "0 ms"), (999, "999 ms"), (4_250, "4.2 s"), (185_000, "3 min 5 s"), (5 * 3_600_000 + 120_000, "5 h 2 min"),
    (3 * DAY_MS + 4 * 3_600_000, "3 d 4 h")])
def test_took(ms: int, text: str) -> None:
    assert took(ms) == text


def test_a_wait_that_fell_due_without_a_worker(engine: Engine) -> None:
    arn = engine.start_execution(pauses, None)
    assert engine.run_until_suspended(arn)["Status"] == "RUNNING"

    on_time = diagnosis_at(engine, arn, 2_000)
    stuck = one(on_time, "stuck_operations")
    assert stuck.summary.startswith("wait 'pause' STARTED for ")
    (row,) = rows(stuck, "operations")
    assert row["operation"] == "'pause'" and row["waits_for"].startswith("its end, in ")
    assert "overdue_timer" not in kinds(on_time) and "worker" not in kinds(on_time)

    late = diagnosis_at(engine, arn, 70_000)
    overdue = one(late, "overdue_timer")
    assert overdue.severity == "warning" and overdue.summary.startswith("wait 'pause' ends 1 min 0 s ago")
    assert overdue.recommendation is not None and overdue.recommendation.startswith("durably worker")


def test_an_execution_no_worker_has_claimed(engine: Engine) -> None:
    arn, _ = engine.service.start_execution(FunctionSpec("quick", True, "somewhere:quick"), "{}")
    found = diagnosis_at(engine, arn)
    waiting = one(found, "worker")
    assert waiting.severity == "warning" and waiting.recommendation == "durably worker"
    assert found.handler == "somewhere:quick" and found.status == "RUNNING"


def test_an_invocation_whose_worker_went_silent(engine: Engine) -> None:
    arn, _ = engine.service.start_execution(FunctionSpec("quick", True, "somewhere:quick"), "{}")
    assert engine.service.claim(lease_ms=1_000, arn=arn) is not None
    running = one(diagnosis_at(engine, arn), "worker")
    assert running.severity == "info" and running.summary.startswith("an invocation is running, for ")
    assert running.details["worker"] == engine.service.owner
    silent = one(diagnosis_at(engine, arn, 31_000), "worker")
    assert silent.severity == "warning" and "stopped renewing its lease 30.0 s ago" in silent.summary


def test_invocations_that_crash_in_a_row(engine: Engine) -> None:
    arn, _ = engine.service.start_execution(FunctionSpec("quick", True, "somewhere:quick"), "{}")
    for _ in range(2):
        claim = engine.service.claim(arn=arn)
        assert claim is not None
        crash = ErrorObject(ErrorType="Runtime.ExitError", ErrorMessage="the worker process 42 exited")
        assert engine.service.complete_invocation(claim, None, crash, retry_delay_ms=0)
    crashed = one(diagnosis_at(engine, arn), "invocation_error")
    assert crashed.severity == "error"
    assert crashed.summary == ("2 of 5 invocations in a row failed (the execution fails at 5): "
                               "Runtime.ExitError: the worker process 42 exited")
    assert crashed.details["failed_invocations_in_history"] == 2


def test_a_callback_near_its_heartbeat_timeout(engine: Engine) -> None:
    arn = engine.start_execution(gated, None)
    assert engine.run_until_suspended(arn)["Status"] == "RUNNING"
    (started,) = [op.StartTimestamp for op in engine.service.all_operations(arn) if op.Name == "gate"]
    assert started is not None
    callback = one(diagnosis_at(engine, arn, now=started + 60_000), "open_callback")
    assert callback.severity == "info"
    assert callback.details["heartbeat_left_ms"] == Span(9 * 60_000)
    assert callback.recommendation is not None and "callback heartbeat " in callback.recommendation
    late = one(diagnosis_at(engine, arn, now=started + 9 * 60_000 + 30_000), "open_callback")
    assert late.severity == "warning", "30 s left of a 10 min heartbeat"
    assert "stuck_operations" not in kinds(diagnosis_at(engine, arn)), "the callback has its own finding"


def test_the_callback_of_a_wait_for_callback_goes_by_its_name(engine: Engine) -> None:
    arn = engine.start_execution(asks_a_person, None)
    assert engine.run_until_suspended(arn)["Status"] == "RUNNING"
    callback = one(diagnosis_at(engine, arn), "open_callback")
    assert callback.summary.startswith("waiting on callback 'approval' since ")
    assert callback.summary.endswith("; no timeout") and callback.details["timeout_at"] is None


def test_a_step_retrying_after_a_failed_attempt(engine: Engine) -> None:
    arn = engine.start_execution(retries_slowly, None)
    assert engine.run_until_suspended(arn)["Status"] == "RUNNING"
    found = diagnosis_at(engine, arn, 5_000)
    retrying = one(found, "retrying_operation")
    assert retrying.severity == "warning"
    assert retrying.summary == "step 'fetch' is retrying: attempt 1 failed with TimeoutError: upstream slow"
    assert retrying.details["failed_attempts"] == 1 and isinstance(retrying.details["next_attempt"], Moment)
    (row,) = rows(one(found, "stuck_operations"), "operations")
    assert row["status"] == "PENDING" and row["waits_for"].startswith("attempt 2, at ")


def test_past_its_timeout_while_running(engine: Engine) -> None:
    engine.register_durable_function("paused", pauses, execution_timeout=5)
    arn = engine.start_execution("paused", None)
    assert engine.run_until_suspended(arn)["Status"] == "RUNNING"
    timeout = one(diagnosis_at(engine, arn, 8_000), "timeout")
    assert timeout.severity == "error" and timeout.summary.startswith("past its timeout by 3.0 s")
    assert timeout.details["time_left_ms"] == Span(0)


def test_retention_of_a_closed_execution(engine: Engine) -> None:
    arn = engine.start_execution(quick, None)
    end = engine.run_until_complete(arn)["EndTimestamp"]
    kept = one(diagnosis_at(engine, arn, now=end + DAY_MS), "retention")
    assert kept.summary.startswith("kept 14 days after its end: purged after ")
    assert kept.summary.endswith("(in 13 d 0 h)")
    later = diagnosis_at(engine, arn, now=end + 15 * DAY_MS)
    assert one(later, "retention").summary == "past its 14-day retention: purged when a worker next runs"
    assert kinds(later) == ["status", "timeout", "retention"], "a closed execution waits on nothing"


def test_the_status_comes_first_then_errors_warnings_and_the_rest(engine: Engine) -> None:
    engine.register_durable_function("paused", pauses, execution_timeout=5)
    arn = engine.start_execution("paused", None)
    assert engine.run_until_suspended(arn)["Status"] == "RUNNING"
    found = diagnosis_at(engine, arn, 70_000)
    assert found.findings[0].kind == "status"
    severities = [f.severity for f in found.findings[1:]]
    assert severities == sorted(severities, key=("error", "warning", "info").index)
    assert {"error", "warning", "info"} <= set(severities)
