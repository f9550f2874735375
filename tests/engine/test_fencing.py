"""A failed or refused checkpoint halts the invocation for good, and no queued START is ever dropped.

Once a checkpoint of an invocation fails, that invocation runs no further user code, even when
the handler catches ``Exception`` around the operation whose checkpoint failed; the engine
invokes the handler again and the execution completes from its recorded history.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from durably.core import CheckpointError, CheckpointFailedError, DurableContext, StepContext, durable_execution
from durably.core.engine.engine import Engine
from durably.core.model import CheckpointResponse, OperationUpdate

RUNS: list[str] = []
ENGINES: dict[str, Any] = {}


def _steal_token(arn: str) -> None:
    """What a takeover does to this invocation: its checkpoint token is no longer the current one."""
    store = ENGINES["engine"].store
    row = store.read(lambda tx: tx.execution(arn))
    assert row is not None
    key = row.key
    store.transact(lambda tx: tx.update_execution(key, token="taken-over"))


@durable_execution
def catches_everything(event: Any, ctx: DurableContext) -> Any:
    seen: list[str] = []

    def first(step: StepContext) -> str:
        RUNS.append(f"first:{step.attempt}")
        if len(RUNS) == 1:
            _steal_token(str(ENGINES["arn"]))
        return "one"

    def second(_: StepContext) -> str:
        RUNS.append("second")
        return "two"

    try:
        seen.append(ctx.step(first, name="first"))
    except Exception as exc:  # a handler that swallows everything must still stop here
        seen.append(f"caught {type(exc).__name__}")
    try:
        seen.append(ctx.step(second, name="second"))
    except Exception as exc:
        seen.append(f"caught {type(exc).__name__}")
    return seen


@pytest.fixture
def fenced_engine(tmp_path: Path) -> Any:
    engine = Engine(tmp_path / "fence.db", synchronous="OFF")
    ENGINES["engine"] = engine
    RUNS.clear()
    yield engine
    engine.close()


def test_a_refused_checkpoint_stops_the_invocation_even_under_except_exception(fenced_engine: Engine) -> None:
    engine = fenced_engine
    arn = engine.start_execution(catches_everything, None)
    ENGINES["arn"] = arn
    claim = engine.service.claim(engine.lease_ms, arn=arn)
    assert claim is not None
    engine._invoke(claim)  # the fenced invocation: ends with an invocation error, no further body runs
    assert RUNS == ["first:1"], "the second step's body ran after the first step's checkpoint was refused"
    history = engine.get_history(arn)
    ended = [e for e in history if e["EventType"] == "InvocationCompleted"]
    assert "Invalid checkpoint token" in ended[-1]["InvocationCompletedDetails"]["Error"]["Payload"]["ErrorMessage"]

    # the token of the fenced invocation is gone; the next invocation replays and completes
    row = engine.store.read(lambda tx: tx.execution(arn))
    assert row is not None
    key = row.key
    engine.store.transact(lambda tx: tx.update_execution(key, lease_owner=None, ready=True))
    done = engine.run_until_complete(arn, timeout=30)
    assert done["Status"] == "SUCCEEDED", done
    assert done["Result"] == '["one","two"]'
    assert RUNS == ["first:1", "first:1", "second"]


def _returns(value: str) -> Any:
    return lambda _: value


def test_every_operation_after_a_failed_checkpoint_raises_the_same_error(fenced_engine: Engine) -> None:
    """The failure is sticky: later operations fail too, with a BaseException that names the cause."""
    seen: list[BaseException] = []

    @durable_execution
    def probes(event: Any, ctx: DurableContext) -> Any:
        for name in ("a", "b", "c"):
            try:
                ctx.step(_returns(name), name=name)
            except BaseException as exc:  # what a handler would see
                seen.append(exc)
        return "unreachable"

    engine = fenced_engine
    calls = {"n": 0}
    real = engine.backend.checkpoint

    def failing_once(arn: str, token: str, updates: list[OperationUpdate]) -> CheckpointResponse:
        calls["n"] += 1
        if calls["n"] == 1:
            raise CheckpointError("ServiceException: database or disk is full")
        return real(arn, token, updates)

    engine.backend.checkpoint = failing_once  # type: ignore[method-assign]
    arn = engine.start_execution(probes, None)
    claim = engine.service.claim(engine.lease_ms, arn=arn)
    assert claim is not None
    engine._invoke(claim)
    assert [type(e) for e in seen] == [CheckpointFailedError] * 3
    assert not any(isinstance(e, Exception) for e in seen)
    assert all("database or disk is full" in str(e) for e in seen)
    assert all(isinstance(e.__cause__, CheckpointError) for e in seen)
    assert calls["n"] == 1, "operations after the failed checkpoint still wrote"


@durable_execution
def slow_step(event: Any, ctx: DurableContext) -> Any:
    def body(_: StepContext) -> str:
        RUNS.append("body")
        time.sleep(0.3)  # long enough for the background flusher to write the START alone
        return "done"

    return ctx.step(body, name="slow")


def test_a_failed_background_flush_is_not_dropped(fenced_engine: Engine) -> None:
    """The flusher's START fails: the SUCCEED is not written without it (no StepSucceeded without StepStarted)."""
    engine = fenced_engine
    real = engine.backend.checkpoint
    failed: list[list[str]] = []

    def flaky(arn: str, token: str, updates: list[OperationUpdate]) -> CheckpointResponse:
        if not failed and [u.Action for u in updates] == ["START"]:
            failed.append([u.Action for u in updates])
            raise CheckpointError("ServiceException: database is locked")
        return real(arn, token, updates)

    engine.backend.checkpoint = flaky  # type: ignore[method-assign]
    arn = engine.start_execution(slow_step, None)
    done = engine.run_until_complete(arn, timeout=30)
    assert failed == [["START"]], "the background flusher never wrote the START alone"
    assert done["Status"] == "SUCCEEDED", done
    events = engine.get_history(arn)
    for event in events:
        if event["EventType"] == "StepSucceeded":
            started = [e for e in events if e["EventType"] == "StepStarted" and e["Id"] == event["Id"]
                       and e["EventId"] < event["EventId"]]
            assert started, f"StepSucceeded without StepStarted: {[e['EventType'] for e in events]}"
    assert RUNS == ["body", "body"]  # at least once: the first attempt's result was not recorded
