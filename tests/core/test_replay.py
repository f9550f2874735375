"""Replay across invocations: finished work is not redone, stored errors come back, logs are not repeated."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

import pytest
from durably import (
    DurableContext,
    Duration,
    RetryPresets,
    StepConfig,
    StepContext,
    StepError,
    durable_execution,
)
from durably.testing import DurableTestRunner

from .conftest import CapturedLog, MakeRunner, recording


def test_completed_steps_are_not_run_again_on_later_invocations(make_runner: MakeRunner) -> None:
    runs = {"reserve": 0, "charge": 0, "ship": 0}
    entries: list[int] = []
    ids = itertools.count(1)

    def counted(name: str) -> Any:
        def body(_: StepContext) -> str:
            runs[name] += 1
            return f"{name}-{next(ids)}"  # not deterministic: replay must return the stored value
        return body

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        entries.append(1)
        reserved = ctx.step(counted("reserve"), name="reserve")
        ctx.wait(Duration(10), name="w1")
        charged = ctx.step(counted("charge"), name="charge")
        ctx.wait(Duration(10), name="w2")
        shipped = ctx.step(counted("ship"), name="ship")
        return [reserved, charged, shipped]

    result = make_runner(handler).run(None)
    assert result.value == ["reserve-1", "charge-2", "ship-3"]
    assert runs == {"reserve": 1, "charge": 1, "ship": 1}
    assert len(entries) == 3
    assert len(result.events("InvocationCompleted")) == 3
    assert [len(result.events("StepSucceeded", name=n)) for n in runs] == [1, 1, 1]


def test_a_stored_step_error_is_raised_again_on_replay(make_runner: MakeRunner) -> None:
    runs: list[int] = []
    caught: list[tuple[str | None, str | None, bool]] = []

    def fails(_: StepContext) -> None:
        runs.append(1)
        raise PermissionError("account frozen")

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            ctx.step(fails, name="debit", config=StepConfig(retry_strategy=RetryPresets.none()))
        except StepError as exc:
            caught.append((exc.error_type, exc.message, ctx.is_replaying()))
        ctx.wait(Duration(5), name="w1")
        ctx.wait(Duration(5), name="w2")
        return "compensated"

    result = make_runner(handler).run(None)
    assert result.value == "compensated"
    assert runs == [1]
    assert caught == [("PermissionError", "account frozen", False),
                      ("PermissionError", "account frozen", True),
                      ("PermissionError", "account frozen", True)]
    assert len(result.events("StepFailed", name="debit")) == 1


def test_an_uncaught_stored_error_fails_the_execution_with_it(make_runner: MakeRunner) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.step(lambda _: 1, name="first")
        ctx.wait(Duration(5), name="pause")
        ctx.step(lambda _: (_ for _ in ()).throw(KeyError("sku")), name="lookup",
                 config=StepConfig(retry_strategy=RetryPresets.none()))
        return "unreachable"

    result = make_runner(handler).run(None)
    assert result.status == "FAILED"
    assert result.error is not None
    assert (result.error.ErrorType, result.error.ErrorMessage) == ("durably.core.errors.StepError", "'sku'")
    assert [e["EventType"] for e in result.history][-1] == "ExecutionFailed"


def test_is_replaying_is_true_only_over_recorded_operations(make_runner: MakeRunner) -> None:
    flags: list[tuple[str, bool]] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        flags.append(("top", ctx.is_replaying()))
        ctx.step(lambda _: 1, name="one")
        flags.append(("after one", ctx.is_replaying()))
        ctx.wait(Duration(5), name="pause")
        flags.append(("after pause", ctx.is_replaying()))
        ctx.step(lambda _: 2, name="two")
        return None

    make_runner(handler).run(None)
    assert flags == [
        ("top", False), ("after one", False),  # invocation 1 runs everything new
        ("top", True), ("after one", True), ("after pause", False),  # invocation 2 replays up to the wait
    ]


def test_the_logger_does_not_repeat_replayed_lines(make_runner: MakeRunner, captured_log: CapturedLog) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.set_logger(captured_log.logger)
        ctx.logger.info("order %s received", event["order"])
        ctx.step(lambda sc: sc.logger.info("charging attempt %d", sc.attempt), name="charge")
        ctx.wait(Duration(30), name="cool-off")
        ctx.logger.warning("cool-off over")

        def pack(child: DurableContext) -> None:
            child.logger.info("packing")
            child.wait(Duration(5), name="packing-time")
            child.logger.info("packed")

        ctx.run_in_child_context(pack, name="pack")
        ctx.logger.info("done")
        return None

    result = make_runner(handler).run({"order": "A-1"})
    assert len(result.events("InvocationCompleted")) == 3
    assert captured_log.messages == [
        "order A-1 received", "charging attempt 1", "cool-off over", "packing", "packed", "done"]
    by_message = {r.getMessage(): r for r in captured_log.records}
    assert all(getattr(r, "executionArn", None) == result.arn for r in captured_log.records)
    charge = by_message["charging attempt 1"]
    assert getattr(charge, "operationName", None) == "charge"
    assert getattr(charge, "attempt", None) == 1
    assert getattr(charge, "operationId", None) == result.get_step("charge").Id
    assert getattr(by_message["packed"], "parentId", None) == result.get_context("pack").Id
    assert by_message["cool-off over"].levelno == logging.WARNING


def test_the_step_logger_logs_each_attempt_once(make_runner: MakeRunner, captured_log: CapturedLog) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.set_logger(captured_log.logger)

        def flaky(sc: StepContext) -> str:
            sc.logger.info("attempt %d", sc.attempt)
            if sc.attempt < 3:
                raise ConnectionError("try again")
            return "ok"

        return ctx.step(flaky, name="flaky", config=StepConfig(retry_strategy=RetryPresets.fixed(Duration(1))))

    assert make_runner(handler).run(None).value == "ok"
    assert captured_log.messages == ["attempt 1", "attempt 2", "attempt 3"]


def test_mode_unaware_logging_repeats_on_replay(make_runner: MakeRunner, captured_log: CapturedLog) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.configure_logger(captured_log.logger, mode_aware=False)
        ctx.logger.info("top of the handler")
        ctx.wait(Duration(5), name="pause")
        ctx.logger.info("after the wait")
        return None

    make_runner(handler).run(None)
    assert captured_log.messages == ["top of the handler", "top of the handler", "after the wait"]


def test_the_default_workflow_logger_is_replay_aware(make_runner: MakeRunner, caplog: pytest.LogCaptureFixture) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.logger.info("before the wait")
        ctx.wait(Duration(5), name="pause")
        ctx.logger.info("after the wait")
        return None

    with caplog.at_level(logging.INFO, logger="durably.workflow"):
        make_runner(handler).run(None)
    messages = [r.getMessage() for r in caplog.records if r.name == "durably.workflow"]
    assert messages == ["before the wait", "after the wait"]


def test_replay_survives_a_new_runner_on_the_same_database(tmp_path: Path) -> None:
    """A second engine on the same file (as after a restart) replays what the first recorded."""
    runs: list[str] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        first = ctx.step(recording(runs, "first", 1), name="first")
        cb = ctx.create_callback(name="resume")
        return [first, cb.result()]

    db = tmp_path / "shared.db"
    with DurableTestRunner(handler, db=db) as before:
        arn = before.run_async(None)
        assert before.resume(arn).status == "RUNNING"
        cid = before.callback_id(arn, "resume")
    with DurableTestRunner(handler, db=db) as after:
        after.register_durable_function("handler", handler)  # a handler defined in a test is not importable
        after.send_callback_success(cid, "go")
        result = after.resume(arn)
    assert result.value == [1, "go"]
    assert runs == ["first"]
