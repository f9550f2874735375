"""Errors of failed operations: recorded with their stack trace."""

from __future__ import annotations

from typing import Any

from durably.core import DurableContext, RetryPresets, StepConfig, StepContext, durable_execution

from .conftest import MakeRunner

NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())


def _lookup(_: StepContext) -> None:
    raise KeyError("sku-1")


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
