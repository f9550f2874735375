"""Errors of failed operations: the same on the first run and on replay, recorded with their stack
trace, and cut to the size limits."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from durably.core import (
    CallbackSubmitterError,
    ChildContextError,
    DurableContext,
    DurableOperationError,
    Duration,
    ErrorObject,
    RecordedError,
    RetryPresets,
    RetryStrategyConfig,
    StepConfig,
    StepContext,
    StepError,
    WaitForCallbackConfig,
    WaitForConditionConfig,
    WaitForConditionError,
    WaitStrategyConfig,
    create_retry_strategy,
    create_wait_strategy,
    durable_execution,
)
from durably.core.engine.documents import lines
from durably.core.engine.stores.base import ExecutionQuery, StoreTx
from durably.core.limits import (
    MAX_ERROR_MESSAGE,
    MAX_STACK_TRACE_ENTRIES,
    MAX_STACK_TRACE_ENTRY,
    truncated,
    truncated_trace,
    utf8_size,
)
from durably.core.operation.wait_for_condition import WaitForConditionCheckContext

from .conftest import MakeRunner

NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())
RECORDS: list[tuple[bool, tuple[Any, ...]]] = []
"""(replaying, what the handler saw of the error) for each invocation that caught it."""


@pytest.fixture(autouse=True)
def _clear_records() -> None:
    RECORDS.clear()


def _record(exc: DurableOperationError, ctx: DurableContext) -> None:
    causes: list[tuple[Any, ...]] = []
    cause = exc.__cause__
    while cause is not None:
        causes.append((type(cause), str(cause), getattr(cause, "error_type", None),
                       getattr(cause, "message", None), getattr(cause, "stack_trace", None)))
        cause = cause.__cause__
    seen = (type(exc), str(exc), exc.error_type, exc.message, exc.data, exc.stack_trace, tuple(causes))
    RECORDS.append((ctx.is_replaying(), seen))


def _lookup(_: StepContext) -> None:
    raise KeyError("sku-1")


def _reserve(_: DurableContext) -> None:
    raise ValueError("warehouse closed")


def _submit(_callback_id: str, _ctx: Any) -> None:
    raise ConnectionError("mail server down")


def _check(_state: int, _ctx: WaitForConditionCheckContext) -> int:
    raise TimeoutError("probe failed")


OPERATIONS: dict[str, tuple[Callable[[DurableContext], Any], type[DurableOperationError]]] = {
    "step": (lambda ctx: ctx.step(_lookup, name="lookup", config=NO_RETRY), StepError),
    "child context": (lambda ctx: ctx.run_in_child_context(_reserve, name="reserve"), ChildContextError),
    "wait_for_callback submitter": (lambda ctx: ctx.wait_for_callback(
        _submit, name="approval", config=WaitForCallbackConfig(retry_strategy=RetryPresets.none())),
        CallbackSubmitterError),
    "wait_for_condition check": (lambda ctx: ctx.wait_for_condition(_check, WaitForConditionConfig(
        wait_strategy=create_wait_strategy(WaitStrategyConfig(lambda _: True)), initial_state=0), name="poll"),
        WaitForConditionError),
    "wait_for_condition gives up": (lambda ctx: ctx.wait_for_condition(lambda state, _: state, WaitForConditionConfig(
        wait_strategy=create_wait_strategy(WaitStrategyConfig(lambda _: True, max_attempts=1)), initial_state=0),
        name="poll"), WaitForConditionError),
}


@pytest.mark.parametrize("kind", list(OPERATIONS))
def test_a_failed_operation_raises_the_same_error_on_the_first_run_and_on_replay(
        make_runner: MakeRunner, kind: str) -> None:
    operation, error_class = OPERATIONS[kind]

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            operation(ctx)
        except error_class as exc:
            _record(exc, ctx)
        ctx.wait(Duration(1), name="pause")  # the next invocation replays the failure
        return "done"

    result = make_runner(handler).run(None)
    assert result.value == "done"
    assert len(result.events("InvocationCompleted")) == 2
    (first_replaying, first), (replaying, replayed) = RECORDS
    assert (first_replaying, replaying) == (False, True)
    assert replayed == first
    innermost = first[-1][-1]
    assert innermost[0] is RecordedError


def test_the_cause_is_the_recorded_failure(make_runner: MakeRunner) -> None:
    caught: list[StepError] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            ctx.step(_lookup, name="lookup", config=NO_RETRY)
        except StepError as exc:
            caught.append(exc)

    make_runner(handler).run(None)
    (error,) = caught
    cause = error.__cause__
    assert isinstance(cause, RecordedError) and cause.__cause__ is None
    assert (cause.error_type, cause.message, cause.stack_trace) == ("KeyError", "'sku-1'", error.stack_trace)
    lines = str(cause).splitlines()
    assert lines[:2] == ["KeyError: 'sku-1'", "Recorded stack trace:"]
    assert f'File "{__file__}"' in lines[2] and lines[2].endswith("in _lookup")
    assert ErrorObject.from_exception(cause).ErrorType == "KeyError"  # recorded again as the original


def test_a_raw_exception_is_recorded_with_its_stack_trace(make_runner: MakeRunner) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.step(_lookup, name="lookup", config=NO_RETRY)

    result = make_runner(handler).run(None)
    raise_line = _lookup.__code__.co_firstlineno + 1
    frame = f'  File "{__file__}", line {raise_line}, in _lookup\n    raise KeyError("sku-1")\n'
    step = result.get_step("lookup")
    assert step.StepDetails is not None and step.StepDetails.Error is not None
    assert step.StepDetails.Error.StackTrace == [frame]  # the runtime's frames that called it are left out
    (failed,) = result.events("StepFailed", name="lookup")
    assert failed["StepFailedDetails"]["Error"]["Payload"]["StackTrace"] == [frame]
    assert result.error is not None
    assert (result.error.ErrorType, result.error.StackTrace) == ("durably.core.errors.StepError", [frame])


def test_a_failing_handler_records_its_stack_trace(make_runner: MakeRunner) -> None:
    @durable_execution
    def handler(event: dict[str, str], ctx: DurableContext) -> Any:
        return event["order"]

    result = make_runner(handler).run({})
    assert result.error is not None and result.error.StackTrace is not None
    (frame,) = result.error.StackTrace
    assert f'File "{__file__}"' in frame and "in handler" in frame and 'return event["order"]' in frame


def test_a_huge_error_message_is_stored_truncated(make_runner: MakeRunner) -> None:
    def huge(_: StepContext) -> None:
        raise ValueError("x" * 3_000_000)

    retry_once = StepConfig(retry_strategy=create_retry_strategy(RetryStrategyConfig(max_attempts=2)))

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            ctx.step(huge, name="huge", config=retry_once)
        except StepError as exc:
            _record(exc, ctx)
        ctx.wait(Duration(1), name="pause")
        return "done"

    runner = make_runner(handler)
    result = runner.run(None)
    assert result.value == "done"
    (_, first), (_, replayed) = RECORDS
    assert replayed == first
    message = first[3]
    assert message.startswith("xxx") and message.endswith("… [truncated from 3,000,000 bytes]")
    assert utf8_size(message) <= MAX_ERROR_MESSAGE
    assert [len(e["StepFailedDetails"]["Error"]["Payload"]["ErrorMessage"]) for e in result.events("StepFailed")] \
        == [len(message)] * 2
    def stored(tx: StoreTx) -> tuple[list[int], str | None]:
        (summary,) = tx.list_executions(ExecutionQuery())
        row = tx.execution(summary.arn)
        assert row is not None
        docs = [doc for r in tx.journal(row.key) for doc in lines(r.ops) + lines(r.events)]
        return [len(doc) for doc in docs], row.error
    sizes, error = runner.engine.store.read(stored)
    assert max(sizes) < 2 * MAX_ERROR_MESSAGE
    assert error is None  # the handler caught it


def test_truncation_keeps_utf8_whole_and_is_stable() -> None:
    text = "é" * 100
    cut = truncated(text, 60)
    assert utf8_size(cut) <= 60 and cut.startswith("é") and cut.endswith("… [truncated from 200 bytes]")
    assert truncated(cut, 60) is cut
    assert truncated(text, 200) is text


def test_a_long_stack_trace_keeps_its_innermost_entries() -> None:
    entries = [f"frame {i}\n" for i in range(1000)] + ["y" * 5000]
    kept = truncated_trace(entries)
    assert len(kept) == MAX_STACK_TRACE_ENTRIES
    assert kept[0] == f"… [{1001 - MAX_STACK_TRACE_ENTRIES + 1:,} outer entries left out]\n"
    assert kept[1] == f"frame {1000 - MAX_STACK_TRACE_ENTRIES + 2}\n"
    assert kept[-1].endswith("… [truncated from 5,000 bytes]") and utf8_size(kept[-1]) <= MAX_STACK_TRACE_ENTRY
    assert truncated_trace(kept) == kept


def test_an_error_within_the_limits_is_kept_as_it_is() -> None:
    error = ErrorObject(ErrorType="E", ErrorMessage="m", ErrorData=json.dumps({"a": 1}), StackTrace=["f\n"])
    assert error.bounded() is error


def test_error_object_dict_helpers_match_aws() -> None:
    from aws_durable_execution_sdk_python.lambda_service import ErrorObject as AwsErrorObject

    wire = {"ErrorMessage": "no", "ErrorType": "Approval.Rejected", "ErrorData": '{"who":"bob"}',
            "StackTrace": ["  File x"]}
    ours, theirs = ErrorObject.from_dict({**wire, "Other": 1}), AwsErrorObject.from_dict({**wire, "Other": 1})
    assert ours.to_dict() == theirs.to_dict() == wire
    assert (ours.message, ours.type, ours.data, ours.stack_trace) == \
        (theirs.message, theirs.type, theirs.data, theirs.stack_trace)
    assert ErrorObject.from_message("late").to_dict() == AwsErrorObject.from_message("late").to_dict() == \
        {"ErrorMessage": "late"}
    assert ErrorObject.from_dict({}).to_dict() == {}
