"""The handlers' log records are kept with their executions, once each, across replays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from durably import DurableContext, Duration, durable_execution
from durably.core.engine.clock import SkippingClock
from durably.core.engine.engine import Engine
from durably.core.logger import WORKFLOW_LOGGER


@durable_execution
def chatty(event: Any, ctx: DurableContext) -> Any:
    ctx.logger.info("starting %s", event["order"])

    def charge(step: Any) -> int:
        step.logger.debug("charging")
        return 1

    ctx.step(charge, name="charge")
    ctx.wait(Duration.from_seconds(5), name="pause")  # the next invocation replays the lines above
    try:
        raise ValueError("card declined")
    except ValueError:
        ctx.logger.exception("after the pause")
    return "done"


def test_each_record_is_kept_once_across_invocations_with_its_fields(engine: Engine) -> None:
    arn = engine.start_execution(chatty, {"order": "A-1"})
    assert engine.run_until_complete(arn, skip_time=True)["Status"] == "SUCCEEDED"
    logs = engine.service.get_logs(arn)
    assert [(r["Level"], r["Message"].splitlines()[0]) for r in logs] == [
        ("INFO", "starting A-1"), ("DEBUG", "charging"), ("ERROR", "after the pause")]
    assert logs[1]["operationName"] == "charge" and logs[1]["attempt"] == 1
    assert "ValueError: card declined" in logs[2]["Message"]
    assert engine.service.get_logs(arn, after=logs[0]["Id"]) == logs[1:]


def test_records_are_kept_whatever_the_stdlib_levels(engine: Engine) -> None:
    previous = WORKFLOW_LOGGER.level
    WORKFLOW_LOGGER.setLevel("CRITICAL")
    try:
        arn = engine.start_execution(chatty, {"order": "A-2"})
        engine.run_until_complete(arn, skip_time=True)
    finally:
        WORKFLOW_LOGGER.setLevel(previous)
    assert len(engine.service.get_logs(arn)) == 3


def test_another_engine_on_the_same_database_keeps_no_copy(engine: Engine, db_path: Path) -> None:
    other = Engine(db_path, clock=SkippingClock())
    try:
        arn = engine.start_execution(chatty, {"order": "A-3"})
        engine.run_until_complete(arn, skip_time=True)
        assert len(other.service.get_logs(arn)) == 3
    finally:
        other.close()
        other.store.close()


def test_logs_go_with_their_execution_when_it_is_purged(engine: Engine) -> None:
    arn = engine.start_execution(chatty, {"order": "A-4"})
    engine.run_until_complete(arn, skip_time=True)
    engine.advance_time(31 * 86400)
    assert engine.service.purge_expired() >= 1
    assert engine.store.read(lambda tx: tx.execution(arn)) is None
    engine.logs.flush()  # a late record of a purged execution is not kept either
    assert engine.store.read(lambda tx: tx.find_executions(arn, 1)) == []


def _broken(_: Any) -> Any:
    return len(None)  # type: ignore[arg-type]


def _flaky(_: Any) -> Any:
    raise ConnectionError("refused")


@durable_execution
def buggy(event: Any, ctx: DurableContext) -> Any:
    return ctx.step(_broken if event["bug"] else _flaky, name="compute")


def test_a_bug_retried_by_the_default_strategy_is_called_one_once_per_attempt(engine: Engine) -> None:
    arn = engine.start_execution(buggy, {"bug": True})
    assert engine.run_until_complete(arn, skip_time=True)["Status"] == "FAILED"
    said = [r for r in engine.service.get_logs(arn) if r["Level"] == "WARNING"]
    assert [r["attempt"] for r in said] == [1, 2, 3, 4, 5]  # the sixth attempt fails for good
    assert said[0]["Message"].startswith("step 'compute'") and "with TypeError" in said[0]["Message"]
    assert "a bug in the code" in said[0]["Message"] and "(attempt 2 in" in said[0]["Message"]
    flaky = engine.start_execution(buggy, {"bug": False})
    engine.run_until_complete(flaky, skip_time=True)
    assert engine.service.get_logs(flaky) == []  # an ordinary retry is in the history, and said from there
