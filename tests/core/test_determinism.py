"""Non-determinism: code that asks for a different operation than the history holds fails the execution."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from durably import (
    ChildContextError,
    DurableContext,
    Duration,
    ExecutionError,
    NonDeterministicExecutionError,
    StepConfig,
    durable_execution,
)
from durably.core.identity import operation_id
from durably.testing import DurableTestRunner, TestResult

from .conftest import MakeRunner

Body = Callable[[DurableContext], Any]


def first_charge(ctx: DurableContext) -> Any:
    return ctx.step(lambda _: 1, name="charge")


def run_then_change(make_runner: MakeRunner, original: Body, changed: Body) -> TestResult:
    """Run ``original`` then a wait; deploy ``changed`` in its place; resume (replay)."""
    code = {"body": original}

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        code["body"](ctx)
        ctx.wait(Duration(5), name="pause")
        return "done"

    runner: DurableTestRunner = make_runner(handler)
    arn = runner.run_async(None)
    assert runner.engine.run_until_suspended(arn)["Status"] == "RUNNING"
    code["body"] = changed
    return runner.resume(arn)


def nondeterminism_message(result: TestResult) -> str:
    assert result.status == "FAILED"
    assert result.error is not None
    assert result.error.ErrorType == "durably.core.errors.NonDeterministicExecutionError"
    assert result.error.ErrorMessage is not None
    # the execution failed at once, without retrying the invocation
    assert len(result.events("InvocationCompleted")) == 2
    assert all("Error" not in e["InvocationCompletedDetails"] for e in result.events("InvocationCompleted"))
    return result.error.ErrorMessage


def test_a_renamed_step_names_both_names_and_the_operation(make_runner: MakeRunner) -> None:
    runs: list[str] = []

    def renamed(ctx: DurableContext) -> Any:
        return ctx.step(lambda _: runs.append("bill"), name="bill")

    message = nondeterminism_message(run_then_change(make_runner, first_charge, renamed))
    assert f"id={operation_id(None, 1)!r}" in message
    assert "name checkpoint='charge' current='bill'" in message
    assert runs == []  # the renamed step did not run


def test_a_changed_operation_type_names_both_types(make_runner: MakeRunner) -> None:
    def now_a_wait(ctx: DurableContext) -> Any:
        ctx.wait(Duration(1), name="charge")

    message = nondeterminism_message(run_then_change(make_runner, first_charge, now_a_wait))
    assert f"id={operation_id(None, 1)!r}" in message
    assert "type checkpoint='STEP' current=" in message
    assert "WAIT" in message.split("current=", 1)[1]


def test_a_changed_operation_type_shows_both_sides_alike(make_runner: MakeRunner) -> None:
    def now_a_wait(ctx: DurableContext) -> Any:
        ctx.wait(Duration(1), name="charge")

    message = nondeterminism_message(run_then_change(make_runner, first_charge, now_a_wait))
    assert "type checkpoint='STEP' current='WAIT'" in message


def test_a_step_turned_into_a_child_context_is_detected(make_runner: MakeRunner) -> None:
    runs: list[str] = []

    def now_a_child(ctx: DurableContext) -> Any:
        return ctx.run_in_child_context(lambda child: runs.append("child"), name="charge")

    message = nondeterminism_message(run_then_change(make_runner, first_charge, now_a_child))
    assert "type checkpoint='STEP'" in message and "CONTEXT" in message
    assert runs == []


def test_a_changed_sub_type_is_detected(make_runner: MakeRunner) -> None:
    def custom(ctx: DurableContext) -> Any:
        return ctx.step(lambda _: 1, name="charge", config=StepConfig(sub_type="Payment"))

    message = nondeterminism_message(run_then_change(make_runner, first_charge, custom))
    assert "subtype checkpoint='Step' current='Payment'" in message


def test_reordered_operations_are_detected(make_runner: MakeRunner) -> None:
    def original(ctx: DurableContext) -> Any:
        ctx.step(lambda _: 1, name="reserve")
        ctx.step(lambda _: 2, name="charge")

    def swapped(ctx: DurableContext) -> Any:
        ctx.step(lambda _: 2, name="charge")
        ctx.step(lambda _: 1, name="reserve")

    message = nondeterminism_message(run_then_change(make_runner, original, swapped))
    assert "name checkpoint='reserve' current='charge'" in message


def test_nondeterminism_inside_a_child_context_is_not_wrapped(make_runner: MakeRunner) -> None:
    def in_child(step_name: str) -> Body:
        def run(ctx: DurableContext) -> Any:
            def group(child: DurableContext) -> Any:
                child.step(lambda _: 1, name=step_name)
                child.wait(Duration(1), name="inside")  # keeps the child unfinished: the replay re-enters it
            try:
                return ctx.run_in_child_context(group, name="group")
            except ChildContextError:  # a child's failure can be handled; non-determinism must not be
                pytest.fail("non-determinism was wrapped in ChildContextError")
        return run

    message = nondeterminism_message(run_then_change(make_runner, in_child("inner"), in_child("renamed")))
    assert f"id={operation_id(operation_id(None, 1), 1)!r}" in message
    assert "name checkpoint='inner' current='renamed'" in message


def test_inserting_an_operation_before_recorded_ones_is_detected(make_runner: MakeRunner) -> None:
    def extended(ctx: DurableContext) -> Any:
        first_charge(ctx)
        ctx.step(lambda _: 2, name="receipt")  # takes the id the recorded "pause" wait has

    message = nondeterminism_message(run_then_change(make_runner, first_charge, extended))
    assert f"id={operation_id(None, 2)!r}" in message
    assert "type checkpoint='WAIT'" in message


def test_operations_added_after_the_last_recorded_one_just_run(make_runner: MakeRunner) -> None:
    code: dict[str, bool] = {"extended": False}
    runs: list[str] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.step(lambda _: 1, name="charge")
        ctx.wait(Duration(5), name="pause")
        if code["extended"]:
            ctx.step(lambda _: runs.append("receipt"), name="receipt")
        return "done"

    runner = make_runner(handler)
    arn = runner.run_async(None)
    runner.engine.run_until_suspended(arn)
    code["extended"] = True
    result = runner.resume(arn)
    assert result.value == "done"
    assert runs == ["receipt"]


def test_nondeterministic_execution_error_is_an_execution_error() -> None:
    assert issubclass(NonDeterministicExecutionError, ExecutionError)
