"""``context.invoke``: registered durable functions, plain functions, unknown names, serdes."""

from __future__ import annotations

from typing import Any

import pytest
from durably import (
    DurableContext,
    Duration,
    InvokeConfig,
    InvokeError,
    SerDes,
    SerDesContext,
    SerDesError,
    ValidationError,
    durable_execution,
)
from durably.testing import DurableTestRunner

from .conftest import MakeRunner


class Counters:
    def __init__(self) -> None:
        self.child_steps = 0
        self.plain_calls: list[Any] = []


def child_handler(counters: Counters) -> Any:
    @durable_execution
    def child(event: Any, ctx: DurableContext) -> Any:
        def times_ten(_: Any) -> int:
            counters.child_steps += 1
            return int(event["n"]) * 10

        value = ctx.step(times_ten, name="times-ten")
        ctx.wait(Duration(5), name="child-pause")
        if event.get("fail"):
            raise LookupError(f"no stock for {event['n']}")
        return {"value": value}

    return child


def test_invoke_runs_a_registered_durable_function_as_its_own_execution(make_runner: MakeRunner) -> None:
    counters = Counters()
    entries: list[bool] = []

    @durable_execution
    def parent(event: Any, ctx: DurableContext) -> Any:
        entries.append(ctx.is_replaying())
        result = ctx.invoke("stock", {"n": 4}, name="check-stock")
        ctx.wait(Duration(1), name="after")  # one more invocation that replays the invoke
        return result

    runner = make_runner(parent)
    runner.register_durable_function("stock", child_handler(counters))
    result = runner.run(None)
    assert result.value == {"value": 40}
    assert entries == [False, True, True]  # suspended on the invoke, then on the wait, then done
    assert counters.child_steps == 1
    invoke = result.get_invoke("check-stock")
    assert (invoke.Status, invoke.SubType) == ("SUCCEEDED", "ChainedInvoke")
    assert invoke.ChainedInvokeDetails is not None and invoke.ChainedInvokeDetails.Result == '{"value":40}'
    (started,) = result.events("ChainedInvokeStarted", name="check-stock")
    details = started["ChainedInvokeStartedDetails"]
    assert details["FunctionName"] == "stock"
    assert details["Input"] == {"Payload": '{"n":4}', "Truncated": False}
    child_arn = details["DurableExecutionArn"]
    assert ":function:stock:" in child_arn
    child = runner.result(child_arn)
    assert child.status == "SUCCEEDED" and child.value == {"value": 40}
    assert child.get_step("times-ten").Status == "SUCCEEDED"
    assert runner.engine.get_execution(child_arn)["InputPayload"] == '{"n":4}'
    assert len(runner.engine.list_executions(function_name="stock")["DurableExecutions"]) == 1
    assert len(result.events("ChainedInvokeSucceeded", name="check-stock")) == 1


def test_invoke_reports_a_failed_durable_function_as_invoke_error(make_runner: MakeRunner) -> None:
    @durable_execution
    def parent(event: Any, ctx: DurableContext) -> Any:
        try:
            ctx.invoke("stock", {"n": 9, "fail": True}, name="check-stock")
        except InvokeError as exc:
            return [exc.error_type, exc.message]
        return "no error"

    runner = make_runner(parent)
    runner.register_durable_function("stock", child_handler(Counters()))
    result = runner.run(None)
    assert result.value == ["LookupError", "no stock for 9"]
    assert result.get_invoke("check-stock").Status == "FAILED"
    (failed,) = result.events("ChainedInvokeFailed", name="check-stock")
    assert failed["ChainedInvokeFailedDetails"]["Error"]["Payload"]["ErrorMessage"] == "no stock for 9"


def test_invoke_calls_a_registered_plain_function_once(make_runner: MakeRunner) -> None:
    counters = Counters()

    def double(payload: Any) -> Any:
        counters.plain_calls.append(payload)
        return {"doubled": payload["n"] * 2}

    @durable_execution
    def parent(event: Any, ctx: DurableContext) -> Any:
        value = ctx.invoke("double", {"n": 21}, name="double-it")
        ctx.wait(Duration(1), name="after")
        return value

    runner = make_runner(parent)
    runner.register_function("double", double)
    result = runner.run(None)
    assert result.value == {"doubled": 42}
    assert counters.plain_calls == [{"n": 21}]
    assert result.get_invoke("double-it").Status == "SUCCEEDED"


def test_a_plain_function_that_raises_is_an_invoke_error(make_runner: MakeRunner) -> None:
    def broken(payload: Any) -> Any:
        raise ZeroDivisionError("division by zero")

    @durable_execution
    def parent(event: Any, ctx: DurableContext) -> Any:
        try:
            return ctx.invoke("broken", None, name="call-broken")
        except InvokeError as exc:
            return [exc.error_type, exc.message]

    runner = make_runner(parent)
    runner.register_function("broken", broken)
    assert runner.run(None).value == ["ZeroDivisionError", "division by zero"]


def test_invoking_an_unknown_function_fails_at_once(make_runner: MakeRunner) -> None:
    @durable_execution
    def parent(event: Any, ctx: DurableContext) -> Any:
        try:
            ctx.invoke("nobody-home", {"x": 1}, name="call-missing")
        except InvokeError as exc:
            return [exc.error_type, exc.message]
        return "no error"

    result = make_runner(parent).run(None)
    assert result.status == "SUCCEEDED"
    error_type, message = result.value
    assert error_type == "ResourceNotFoundException"
    assert "nobody-home" in message
    assert len(result.events("InvocationCompleted")) == 1  # nothing to wait for
    assert result.get_invoke("call-missing").Status == "FAILED"
    assert len(result.events("ChainedInvokeFailed", name="call-missing")) == 1


def test_an_uncaught_invoke_error_fails_the_execution(make_runner: MakeRunner) -> None:
    @durable_execution
    def parent(event: Any, ctx: DurableContext) -> Any:
        return ctx.invoke("nobody-home", None, name="call-missing")

    result = make_runner(parent).run(None)
    assert result.status == "FAILED"
    assert result.error is not None and result.error.ErrorType == "durably.core.errors.InvokeError"


class Prefixed(SerDes[Any]):
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def serialize(self, value: Any, serdes_context: SerDesContext) -> str:
        return f'"{self.prefix}{value}"'

    def deserialize(self, data: str, serdes_context: SerDesContext) -> Any:
        return f"{self.prefix}{data}"


def test_invoke_uses_the_configured_payload_and_result_serdes(make_runner: MakeRunner) -> None:
    @durable_execution
    def parent(event: Any, ctx: DurableContext) -> Any:
        return ctx.invoke("echo", "hello", name="call-echo",
                          config=InvokeConfig(serdes_payload=Prefixed("in:"), serdes_result=Prefixed("out:")))

    runner = make_runner(parent)
    runner.register_function("echo", lambda payload: payload)
    result = runner.run(None)
    assert result.value == 'out:"in:hello"'
    (started,) = result.events("ChainedInvokeStarted", name="call-echo")
    assert started["ChainedInvokeStartedDetails"]["Input"]["Payload"] == '"in:hello"'


def test_a_qualified_name_resolves_to_the_registered_function(make_runner: MakeRunner) -> None:
    @durable_execution
    def parent(event: Any, ctx: DurableContext) -> Any:
        return ctx.invoke("echo:live", {"q": 1}, name="qualified")

    runner = make_runner(parent)
    runner.register_function("echo", lambda payload: payload)
    assert runner.run(None).value == {"q": 1}


@pytest.mark.parametrize(("function_name", "payload", "error"), [
    ("", 1, ValidationError),
    ("echo", object(), SerDesError),
], ids=["no-name", "unserialisable-payload"])
def test_invalid_invokes_raise_before_checkpointing(make_runner: MakeRunner, function_name: str, payload: Any,
                                                    error: type[Exception]) -> None:
    raised: list[Exception] = []

    @durable_execution
    def parent(event: Any, ctx: DurableContext) -> Any:
        try:
            ctx.invoke(function_name, payload, name="bad")
        except error as exc:
            raised.append(exc)
        return "ok"

    runner: DurableTestRunner = make_runner(parent)
    runner.register_function("echo", lambda p: p)
    result = runner.run(None)
    assert result.value == "ok"
    assert len(raised) == 1
    assert result.operations == []
