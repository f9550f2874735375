"""AWS-style tests: written as the tests of AWS's SDK examples are, with only durably imports.

Each test is what an AWS user has after replacing ``aws_durable_execution_sdk_python*`` imports:
``DurableFunctionTestRunner`` from ``durably.testing``, ``InvocationStatus`` from ``durably.core.execution``
and ``OperationType`` / ``ErrorObject`` from ``durably.core.model``; the handlers are written with durably.
"""

import json
from typing import Any

from durably.core.config import Duration, MapConfig, StepConfig
from durably.core.context import DurableContext
from durably.core.execution import InvocationStatus, durable_execution, durable_with_child_context
from durably.core.model import ErrorObject, OperationType
from durably.core.retries import RetryPresets
from durably.testing import DurableFunctionTestResult, DurableFunctionTestRunner


def deserialize_operation_payload(payload: str | None) -> Any:
    return None if payload is None else json.loads(payload)


@durable_execution
def hello_world(_event: Any, context: DurableContext) -> str:
    greeting = context.step(lambda _: "Hello", name="greet")
    context.wait(Duration.from_hours(2), name="nap")
    return f"{greeting} World!"


def test_hello_world() -> None:
    with DurableFunctionTestRunner(handler=hello_world) as runner:
        result: DurableFunctionTestResult = runner.run(input="test", timeout=10)

    assert result.status is InvocationStatus.SUCCEEDED
    assert deserialize_operation_payload(result.result) == "Hello World!"
    step = result.get_step("greet")
    assert step.operation_type == OperationType.STEP and step.result == '"Hello"' and step.attempt == 1
    wait = result.get_wait("nap")
    assert wait.scheduled_end_timestamp is not None and wait.start_timestamp is not None
    assert (wait.scheduled_end_timestamp - wait.start_timestamp).total_seconds() == 7200  # skipped, not slept


@durable_execution
def approval(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    price = context.step(lambda _: 19 * event["quantity"], name="price")
    decision = context.wait_for_callback(lambda callback_id, _ctx: None, name="approval")
    return {"price": price, "decision": json.loads(decision)}


def test_callback_success() -> None:
    with DurableFunctionTestRunner(handler=approval) as runner:
        execution_arn = runner.run_async(input={"quantity": 2}, timeout=30)
        callback_id = runner.wait_for_callback(execution_arn=execution_arn)
        runner.send_callback_success(callback_id=callback_id, result=json.dumps({"ok": True}).encode())
        result = runner.wait_for_result(execution_arn=execution_arn)

    assert result.status is InvocationStatus.SUCCEEDED
    assert deserialize_operation_payload(result.result) == {"price": 38, "decision": {"ok": True}}
    context_ops = [op for op in result.operations if op.operation_type.value == "CONTEXT"]
    assert len(context_ops) == 1
    callback = result.get_context("approval").get_callback("approval create callback id")
    assert callback.callback_id == callback_id and callback.result == '{"ok": true}'


def test_callback_failure() -> None:
    with DurableFunctionTestRunner(handler=approval) as runner:
        execution_arn = runner.run_async(input={"quantity": 1}, timeout=30)
        callback_id = runner.wait_for_callback(execution_arn=execution_arn)
        runner.send_callback_failure(callback_id=callback_id, error=ErrorObject.from_message("External API failure"))
        result = runner.wait_for_result(execution_arn=execution_arn)

    assert result.status is InvocationStatus.FAILED
    error = result.error
    assert error is not None
    assert "External API failure" in (error.message or "")


@durable_execution
def flaky(_event: Any, context: DurableContext) -> str:
    def charge(_: Any) -> str:
        raise ConnectionError("card service unavailable")

    return context.step(charge, name="charge", config=StepConfig(retry_strategy=RetryPresets.transient()))


def test_failing_step() -> None:
    with DurableFunctionTestRunner(handler=flaky) as runner:
        result = runner.run(input="test", timeout=30)

    assert result.status is InvocationStatus.FAILED
    assert result.error is not None and "card service unavailable" in (result.error.message or "")
    step_ops = [op for op in result.operations if op.operation_type == OperationType.STEP]
    assert len(step_ops) == 1
    charge = result.get_step("charge")
    assert charge.status == "FAILED" and charge.attempt == 3  # RetryPresets.transient(): 3 attempts
    assert charge.error is not None and charge.error.type == "ConnectionError"


@durable_with_child_context
def shipping(context: DurableContext, order_id: str) -> str:
    label = context.step(lambda _: f"label-{order_id}", name="label")
    context.wait(Duration.from_minutes(5), name="pickup")
    return label


@durable_execution
def fulfil(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    label = context.run_in_child_context(shipping(event["order"]), name="shipping")
    squares = context.map([1, 2, 3, 4, 5], lambda ctx, item, index, items: ctx.step(
        lambda _: item * item, name=f"square_{index}"), name="squares", config=MapConfig(max_concurrency=2))
    return {"label": label, "squares": squares.get_results()}


def test_child_context_and_map() -> None:
    with DurableFunctionTestRunner(handler=fulfil) as runner:
        result = runner.run(input=json.dumps({"order": "A-1"}), timeout=30)

    assert result.status is InvocationStatus.SUCCEEDED
    assert deserialize_operation_payload(result.result) == {"label": "label-A-1", "squares": [1, 4, 9, 16, 25]}
    shipping_ctx = result.get_context("shipping")
    assert shipping_ctx.sub_type == "RunInChildContext"
    assert deserialize_operation_payload(shipping_ctx.result) == "label-A-1"
    assert shipping_ctx.get_step("label").result == '"label-A-1"'
    assert shipping_ctx.get_wait("pickup").status == "SUCCEEDED"
    squares = result.get_context("squares")
    assert squares.sub_type == "Map" and len(squares.child_operations) == 5
    step_ops = [op for op in result.get_all_operations() if op.operation_type == OperationType.STEP]
    assert {op.name for op in step_ops} == {"label"} | {f"square_{i}" for i in range(5)}
    assert squares.get_context("map-item-2").get_step("square_2").result == "9"
