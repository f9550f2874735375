"""The replay check (``durably.core.replay_check``): histories recorded by a v1 of a handler, replayed
against v2s, with no step body run and nothing written."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from durably import (
    DurableContext,
    Duration,
    NonDeterministicExecutionError,
    RetryDecision,
    StepConfig,
    StepContext,
    StepSemantics,
    durable_execution,
)
from durably.core.engine.engine import Engine
from durably.core.execution import DurableFunction
from durably.core.model import Operation
from durably.core.replay_check import ReplayReport, check_replay

from .conftest import recording

RUNS: list[str] = []
"""Every step body below appends to it: a check must leave it empty."""


@pytest.fixture(autouse=True)
def _no_runs() -> None:
    RUNS.clear()


def body(label: str, value: Any = None) -> Callable[[StepContext], Any]:
    return recording(RUNS, label, value if value is not None else label)


def recorded(engine: Engine, handler: DurableFunction, event: Any = None, *,
             complete: bool = False) -> tuple[str, list[Operation]]:
    """Run ``handler`` to its first suspension (or to its end) and answer its ARN and history."""
    arn = engine.start_execution(handler, event if event is not None else {})
    if complete:
        engine.run_until_complete(arn, skip_time=True)
    else:
        engine.run_until_suspended(arn)
    RUNS.clear()
    return arn, engine.service.all_operations(arn)


def checked(handler: DurableFunction, arn: str, ops: list[Operation], engine: Engine) -> ReplayReport:
    before = engine.service.all_operations(arn), engine.get_history(arn)
    report = check_replay(handler, arn, ops)
    assert RUNS == [], "a step body ran during the check"
    assert (engine.service.all_operations(arn), engine.get_history(arn)) == before
    return report


# ---------------------------------------------------------------------------- the order handler, v1 and v2s
@durable_execution
def order_v1(event: Any, ctx: DurableContext) -> Any:
    ctx.step(body("reserve"), name="reserve")
    ctx.wait(Duration(60), name="cool-down")
    return ctx.step(body("charge"), name="charge")


@durable_execution
def order_v2_adds_a_step(event: Any, ctx: DurableContext) -> Any:
    ctx.step(body("reserve"), name="reserve")
    ctx.wait(Duration(60), name="cool-down")
    charge = ctx.step(body("charge"), name="charge")
    ctx.step(body("notify"), name="notify")
    return charge


@durable_execution
def order_v2_renames_a_step(event: Any, ctx: DurableContext) -> Any:
    ctx.step(body("reserve"), name="reserve-stock")
    ctx.wait(Duration(60), name="cool-down")
    return ctx.step(body("charge"), name="charge")


@durable_execution
def order_v2_swaps_the_wait(event: Any, ctx: DurableContext) -> Any:
    ctx.step(body("reserve"), name="reserve")
    ctx.step(body("cool-down"), name="cool-down")
    return ctx.step(body("charge"), name="charge")


def test_the_same_code_replays_a_suspended_history_up_to_its_open_wait(engine: Engine) -> None:
    arn, ops = recorded(engine, order_v1)
    report = checked(order_v1, arn, ops, engine)
    assert (report.ok, report.outcome, report.operations_replayed) == (True, "waiting", 2)
    assert report.frontier is not None and (report.frontier.type, report.frontier.name) == ("WAIT", "cool-down")


def test_a_step_added_at_the_end_replays_up_to_the_frontier(engine: Engine) -> None:
    arn, ops = recorded(engine, order_v1, complete=True)
    report = checked(order_v2_adds_a_step, arn, ops, engine)
    assert (report.ok, report.outcome, report.operations_replayed) == (True, "frontier", 3)
    assert report.frontier is not None
    assert (report.frontier.type, report.frontier.name, report.frontier.status) == ("STEP", "notify", None)
    assert checked(order_v1, arn, ops, engine).outcome == "returned"


def test_a_renamed_step_diverges_naming_both_names(engine: Engine) -> None:
    arn, ops = recorded(engine, order_v1)
    report = checked(order_v2_renames_a_step, arn, ops, engine)
    assert (report.ok, report.outcome, report.operations_replayed) == (False, "diverged", 0)
    d = report.divergence
    assert d is not None
    assert (d.position, d.within) == ("1", ())
    assert (d.recorded.type, d.recorded.name, d.recorded.status) == ("STEP", "reserve", "SUCCEEDED")
    assert (d.code.type, d.code.name) == ("STEP", "reserve-stock")
    assert d.recorded.id == d.code.id == next(op.Id for op in ops if op.Name == "reserve")
    assert "checkpoint='reserve' current='reserve-stock'" in d.message


def test_a_wait_swapped_for_a_step_diverges_naming_both_types(engine: Engine) -> None:
    arn, ops = recorded(engine, order_v1, complete=True)
    d = checked(order_v2_swaps_the_wait, arn, ops, engine).divergence
    assert d is not None and d.position == "2"
    assert (d.recorded.type, d.recorded.subtype, d.recorded.name) == ("WAIT", "Wait", "cool-down")
    assert (d.code.type, d.code.subtype, d.code.name) == ("STEP", "Step", "cool-down")


def test_a_divergence_the_code_swallows_is_reported_all_the_same(engine: Engine) -> None:
    @durable_execution
    def swallowing(event: Any, ctx: DurableContext) -> Any:
        try:
            ctx.step(body("reserve"), name="reserve-stock")
        except NonDeterministicExecutionError:
            return "carried on"
        return "unreachable"

    arn, ops = recorded(engine, order_v1)
    report = checked(swallowing, arn, ops, engine)
    assert report.outcome == "diverged" and not report.ok


# ---------------------------------------------------------------------------- map and parallel
def item_v1(ctx: DurableContext, item: int, index: int, items: Any) -> int:
    ctx.step(body(f"double-{item}", item * 2), name="double")
    ctx.wait(Duration(60), name="cool")
    return item


def item_v2(ctx: DurableContext, item: int, index: int, items: Any) -> int:
    ctx.step(body(f"triple-{item}", item * 3), name="triple")
    ctx.wait(Duration(60), name="cool")
    return item


@durable_execution
def map_v1(event: Any, ctx: DurableContext) -> Any:
    return ctx.map([1, 2, 3], item_v1, name="items").get_results()


@durable_execution
def map_v2(event: Any, ctx: DurableContext) -> Any:
    return ctx.map([1, 2, 3], item_v2, name="items").get_results()


def test_a_changed_map_item_function_is_checked_inside_the_branches(engine: Engine) -> None:
    arn, ops = recorded(engine, map_v1)
    assert checked(map_v1, arn, ops, engine).outcome == "waiting"
    report = checked(map_v2, arn, ops, engine)
    d = report.divergence
    assert d is not None and not report.ok
    assert d.within[0] == "items" and d.within[1].startswith("map-item-")
    assert d.position.startswith("1.") and d.position.endswith(".1")
    assert (d.recorded.name, d.code.name) == ("double", "triple")


def branch(label: str, seconds: int, step_name: str | None = None) -> Callable[[DurableContext], Any]:
    def run(ctx: DurableContext) -> Any:
        ctx.step(body(label), name=step_name or label)
        ctx.wait(Duration(seconds), name=f"{label}-wait")
        return label
    return run


@durable_execution
def parallel_v1(event: Any, ctx: DurableContext) -> Any:
    return ctx.parallel([branch("b0", 10), branch("b1", 1000), branch("b2", 1000)], name="fan-out").get_results()


@durable_execution
def parallel_v2(event: Any, ctx: DurableContext) -> Any:
    branches = [branch("b0", 10), branch("b1", 1000), branch("b2", 1000, step_name="b2-renamed")]
    return ctx.parallel(branches, name="fan-out").get_results()


def test_a_frontier_in_one_branch_stops_that_branch_and_the_others_are_still_checked(engine: Engine) -> None:
    """b0's wait has elapsed (its end is recorded, the execution not invoked again): replaying it, b0
    would end its branch, a write; b1 and b2 replay up to their open waits."""
    arn = engine.start_execution(parallel_v1, {})
    engine.run_until_suspended(arn)
    engine.advance_time(20)
    assert engine.service.fire_due_timers() == 1
    ops = engine.service.all_operations(arn)
    RUNS.clear()

    started = time.monotonic()
    report = checked(parallel_v1, arn, ops, engine)
    assert time.monotonic() - started < 5
    assert (report.ok, report.outcome) == (True, "frontier")
    assert report.frontier is not None
    assert (report.frontier.type, report.frontier.name, report.frontier.status) == ("CONTEXT", "parallel-branch-0",
                                                                                    "STARTED")
    assert report.operations_replayed == 1 + 3 + 6  # the parallel, its branches, their steps and waits

    d = checked(parallel_v2, arn, ops, engine).divergence
    assert d is not None and (d.within, d.recorded.name, d.code.name) == (
        ("fan-out", "parallel-branch-2"), "b2", "b2-renamed")


# ---------------------------------------------------------------------------- steps that would run again
class Crash(BaseException):
    """The process dies inside a step body (what escapes the runtime and the engine)."""


@pytest.mark.parametrize("semantics", [StepSemantics.AT_LEAST_ONCE_PER_RETRY, StepSemantics.AT_MOST_ONCE_PER_RETRY])
def test_a_step_found_started_does_not_run_its_body(engine: Engine, tmp_path: Path,
                                                    semantics: StepSemantics) -> None:
    marker = tmp_path / "charged"
    crash = [True]

    def charge(step: StepContext) -> str:
        RUNS.append("charge")
        marker.write_text("charged")
        while crash[0] and not any(op.Name == "charge" for op in engine.service.all_operations(step.execution_arn)):
            time.sleep(0.005)  # an at-least-once START is written within QUEUED_FLUSH_SECONDS
        if crash[0]:
            raise Crash
        return "charged"

    @durable_execution
    def payment(event: Any, ctx: DurableContext) -> Any:
        ctx.step(body("reserve"), name="reserve")
        return ctx.step(charge, name="charge", config=StepConfig(step_semantics=semantics))

    arn = engine.start_execution(payment, {})
    with pytest.raises(Crash):
        engine.run_until_suspended(arn)
    ops = engine.service.all_operations(arn)
    assert next(op for op in ops if op.Name == "charge").Status == "STARTED"
    RUNS.clear()
    marker.unlink()
    crash[0] = False

    report = checked(payment, arn, ops, engine)
    assert not marker.exists()
    assert (report.ok, report.outcome) == (True, "frontier")
    assert report.frontier is not None
    assert (report.frontier.name, report.frontier.status) == ("charge", "STARTED")


def test_a_step_between_retries_does_not_run_its_body(engine: Engine) -> None:
    attempts: list[int] = []

    def flaky(step: StepContext) -> str:
        attempts.append(step.attempt)
        RUNS.append("flaky")
        if step.attempt == 1:
            raise TimeoutError("the gateway timed out")
        return "done"

    @durable_execution
    def retried(event: Any, ctx: DurableContext) -> Any:
        return ctx.step(flaky, name="flaky", config=StepConfig(
            retry_strategy=lambda error, attempt: RetryDecision.retry(Duration(30))))

    arn, ops = recorded(engine, retried)
    assert next(op for op in ops if op.Name == "flaky").Status == "PENDING"
    report = checked(retried, arn, ops, engine)
    assert (report.outcome, report.frontier and report.frontier.status) == ("waiting", "PENDING")

    engine.advance_time(60)
    engine.service.fire_due_timers()  # the retry is due: READY
    ops = engine.service.all_operations(arn)
    report = checked(retried, arn, ops, engine)
    assert (report.outcome, report.frontier and report.frontier.status) == ("frontier", "READY")
    assert attempts == [1]


# ---------------------------------------------------------------------------- how a replay ends
def test_a_failed_history_replays_when_the_handler_raises_again(engine: Engine) -> None:
    @durable_execution
    def refused(event: Any, ctx: DurableContext) -> Any:
        ctx.step(body("reserve"), name="reserve")
        ctx.step(lambda _: (_ for _ in ()).throw(PermissionError("card refused")), name="charge",
                 config=StepConfig(retry_strategy=lambda error, attempt: RetryDecision.no_retry()))

    arn, ops = recorded(engine, refused, complete=True)
    report = checked(refused, arn, ops, engine)
    assert (report.ok, report.outcome) == (True, "failed")
    assert report.error is not None and "card refused" in report.error


def test_code_that_raises_where_the_history_did_not_fails_the_check(engine: Engine) -> None:
    @durable_execution
    def broken(event: Any, ctx: DurableContext) -> Any:
        ctx.step(body("reserve"), name="reserve")
        raise KeyError("quantity")

    arn, ops = recorded(engine, order_v1)
    report = checked(broken, arn, ops, engine)
    assert (report.ok, report.outcome) == (False, "raised")
    assert report.error is not None and "quantity" in report.error


def test_an_async_handler_is_checked_the_same_way(engine: Engine) -> None:
    @durable_execution
    async def order_async(event: Any, ctx: Any) -> Any:
        await ctx.step(body("reserve"), name="reserve")
        await ctx.wait(Duration(60), name="cool-down")
        await ctx.step(body("charge"), name="charge")
        return await ctx.step(body("notify"), name="notify")

    arn, ops = recorded(engine, order_v1, complete=True)
    report = checked(order_async, arn, ops, engine)
    assert (report.outcome, report.frontier and report.frontier.name) == ("frontier", "notify")
