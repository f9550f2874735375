"""``context.wait`` and ``Duration``: validation, suspension, resumption by the engine's timer."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
from durably import (
    DurableContext,
    Duration,
    ValidationError,
    durable_execution,
)
from durably.core.engine.engine import Engine
from durably.core.identity import operation_id
from durably.core.limits import MAX_WAIT_SECONDS

from .conftest import MakeRunner, recording


# ---------------------------------------------------------------------------- Duration
def test_duration_constructors_give_whole_seconds() -> None:
    assert Duration.from_seconds(2.9) == Duration(2)
    assert Duration.from_minutes(1.5) == Duration(90)
    assert Duration.from_hours(0.5) == Duration(1800)
    assert Duration.from_days(2) == Duration(172_800)
    assert Duration(3.7).seconds == 3  # type: ignore[arg-type]
    assert isinstance(Duration(3.7).seconds, int)  # type: ignore[arg-type]
    assert Duration.from_minutes(2).to_seconds() == 120
    assert Duration() == Duration(0)


@pytest.mark.parametrize("make", [lambda: Duration(-1), lambda: Duration.from_seconds(-3),
                                  lambda: Duration.from_minutes(-1), lambda: Duration.from_seconds(-1.5),
                                  lambda: Duration(-0.5)])  # type: ignore[arg-type]
def test_negative_durations_are_rejected(make: Any) -> None:
    with pytest.raises(ValidationError, match="negative"):
        make()


def test_duration_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Duration(5).seconds = 6  # type: ignore[misc]


@pytest.mark.parametrize(("duration", "message"), [
    (Duration(0), "1 to 31622400 seconds, not 0"),
    (Duration.from_seconds(0.9), "not 0"),
    (Duration(MAX_WAIT_SECONDS + 1), f"not {MAX_WAIT_SECONDS + 1}"),
    (5, "takes a Duration, not int"),
    (5.0, "takes a Duration, not float"),
])
def test_invalid_waits_raise_before_anything_is_checkpointed(
        make_runner: MakeRunner, duration: Any, message: str) -> None:
    errors: list[str] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            ctx.wait(duration, name="bad")
        except ValidationError as exc:
            errors.append(str(exc))
        return ctx.step(lambda _: "after", name="after")

    result = make_runner(handler).run(None)
    assert result.value == "after"
    assert len(errors) == 1 and message in errors[0]
    assert [op.Name for op in result.operations] == ["after"]
    assert result.get_step("after").Id == operation_id(None, 1)  # the invalid wait took no id
    assert result.events("WaitStarted") == []


def test_an_uncaught_invalid_wait_fails_the_execution(make_runner: MakeRunner) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.wait(Duration(0), name="zero")

    result = make_runner(handler).run(None)
    assert result.status == "FAILED"
    assert result.error is not None and result.error.ErrorType == "durably.core.errors.ValidationError"


# ---------------------------------------------------------------------------- suspension
def test_wait_suspends_and_a_new_invocation_resumes_after_it(make_runner: MakeRunner) -> None:
    entries: list[bool] = []
    step_runs: list[str] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        entries.append(ctx.is_replaying())
        before = ctx.step(recording(step_runs, "before", "b"), name="before")
        ctx.wait(Duration.from_hours(1), name="cool-off")
        after = ctx.step(recording(step_runs, "after", "a"), name="after")
        return before + after

    started = time.monotonic()
    result = make_runner(handler).run(None)
    assert time.monotonic() - started < 5
    assert result.value == "ba"
    assert entries == [False, True]  # two invocations; the second replays from the top
    assert step_runs == ["before", "after"]
    types = [e["EventType"] for e in result.history]
    assert types == ["ExecutionStarted", "StepStarted", "StepSucceeded", "WaitStarted", "InvocationCompleted",
                     "WaitSucceeded", "StepStarted", "StepSucceeded", "InvocationCompleted", "ExecutionSucceeded"]
    (started_event,) = result.events("WaitStarted", name="cool-off")
    details = started_event["WaitStartedDetails"]
    assert details["Duration"] == 3600
    assert details["ScheduledEndTimestamp"] == started_event["EventTimestamp"] + 3_600_000
    (done,) = result.events("WaitSucceeded", name="cool-off")
    assert done["EventTimestamp"] >= details["ScheduledEndTimestamp"]
    assert done["WaitSucceededDetails"] == {"Duration": 3600}
    wait = result.get_wait("cool-off")
    assert (wait.Status, wait.SubType) == ("SUCCEEDED", "Wait")
    assert wait.WaitDetails is not None and wait.WaitDetails.ScheduledEndTimestamp == details["ScheduledEndTimestamp"]


def test_a_wait_does_not_resume_before_its_time(engine: Engine) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.wait(Duration(30), name="half-minute")
        return "woke"

    arn = engine.start_execution(handler, None)
    assert engine.run_until_suspended(arn)["Status"] == "RUNNING"
    wait = next(op for op in engine.service.all_operations(arn) if op.Name == "half-minute")
    assert wait.Status == "STARTED"
    engine.advance_time(20)
    assert engine.run_until_suspended(arn)["Status"] == "RUNNING"
    history = engine.get_history(arn)
    assert [e["EventType"] for e in history].count("InvocationCompleted") == 1
    assert "WaitSucceeded" not in [e["EventType"] for e in history]
    engine.advance_time(11)
    execution = engine.run_until_suspended(arn)
    assert execution["Status"] == "SUCCEEDED"
    assert execution["Result"] == '"woke"'


def test_each_wait_is_a_suspension_and_one_second_is_the_minimum(make_runner: MakeRunner) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        for i in range(3):
            ctx.wait(Duration(1), name=f"tick-{i}")
        return "done"

    result = make_runner(handler).run(None)
    assert result.value == "done"
    assert len(result.events("InvocationCompleted")) == 4
    assert [e["Name"] for e in result.events("WaitSucceeded")] == ["tick-0", "tick-1", "tick-2"]
    assert [result.get_wait(f"tick-{i}").Id for i in range(3)] == [operation_id(None, n) for n in (1, 2, 3)]


def test_an_unnamed_wait_is_recorded_without_a_name(make_runner: MakeRunner) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.wait(Duration(2))
        return None

    result = make_runner(handler).run(None)
    assert result.status == "SUCCEEDED"
    (wait,) = result.operations
    assert (wait.Type, wait.Name, wait.Status) == ("WAIT", None, "SUCCEEDED")
