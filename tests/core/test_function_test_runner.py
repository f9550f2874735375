"""durably.testing's AWS-shaped runner: its surface against AWS's, and each behaviour on its own."""

from __future__ import annotations

import dataclasses
import inspect
import json
import threading
import time
from typing import Any

import pytest
from aws_durable_execution_sdk_python.lambda_service import InvocationStatus as AwsInvocationStatus
from aws_durable_execution_sdk_python_testing import runner as aws_runner
from durably import (
    CallbackConfig,
    DurableContext,
    Duration,
    ErrorObject,
    InvalidParameterValueException,
    InvocationStatus,
    durable_execution,
    durable_with_child_context,
)
from durably import testing as durably_testing
from durably.testing import (
    DurableChildContextTestRunner,
    DurableFunctionsTestError,
    DurableFunctionTestRunner,
    StepOperation,
)

WRAPPERS = ["Operation", "ExecutionOperation", "ContextOperation", "StepOperation", "WaitOperation",
            "CallbackOperation", "InvokeOperation", "DurableFunctionTestResult"]
RUNNER_METHODS = ["register_durable_function", "register_function", "run", "run_async", "wait_for_result",
                  "wait_for_callback", "send_callback_success", "send_callback_failure",
                  "send_callback_heartbeat", "get_execution_history", "close"]


@pytest.mark.parametrize("name", WRAPPERS)
def test_result_and_operation_fields_are_aws_s(name: str) -> None:
    ours = [f.name for f in dataclasses.fields(getattr(durably_testing, name))]
    theirs = [f.name for f in dataclasses.fields(getattr(aws_runner, name))]
    assert sorted(ours) == sorted(theirs)


@pytest.mark.parametrize("method", [*RUNNER_METHODS, "__init__"])
def test_runner_arguments_are_aws_s(method: str) -> None:
    ours = list(inspect.signature(getattr(DurableFunctionTestRunner, method)).parameters)
    theirs = list(inspect.signature(getattr(aws_runner.DurableFunctionTestRunner, method)).parameters)
    assert ours == theirs


@durable_execution
def two_steps(event: Any, context: DurableContext) -> Any:
    first = context.step(lambda _: {"event": event}, name="first")
    context.wait(Duration.from_days(3), name="long")
    return context.step(lambda _: first, name="second")


def test_status_compares_both_ways_and_the_result_is_json_text() -> None:
    with DurableFunctionTestRunner(two_steps) as runner:
        result = runner.run(input="plain text")  # not JSON: sent as a JSON string, as AWS's runner does
    assert result.status is InvocationStatus.SUCCEEDED and result.status == "SUCCEEDED"
    assert result.status.value == AwsInvocationStatus.SUCCEEDED.value
    assert result.execution_status == "SUCCEEDED"
    assert result.result == '{"event":"plain text"}' and result.error is None
    assert [op.name for op in result.get_all_operations()] == ["first", "long", "second"]
    first = result.get_step("first")
    assert isinstance(first, StepOperation) and first.parent_id is None and first.end_timestamp is not None


def test_json_input_is_kept_and_names_are_the_callers() -> None:
    with DurableFunctionTestRunner(two_steps, region="eu-west-1") as runner:
        arn = runner.run_async(input='{"a": 1}', function_name="orders", execution_name="run-1", tenant_id="t-9")
        stored = runner.engine.store.read(lambda tx: tx.execution(arn))
        assert stored is not None and stored.tenant_id == "t-9"
        assert arn.startswith("arn:aws:lambda:eu-west-1:") and ":function:orders:" in arn and "/run-1/" in arn
        assert json.loads(runner.wait_for_result(arn).result or "") == {"event": {"a": 1}}
        started = runner.get_execution_history(arn, include_execution_data=True)["Events"][0]
        assert started["ExecutionStartedDetails"]["Input"]["Payload"] == '{"a": 1}'
        bare = runner.get_execution_history(arn)["Events"][0]
        assert "Payload" not in bare["ExecutionStartedDetails"].get("Input", {})


def test_two_runs_in_one_runner_are_two_executions() -> None:
    with DurableFunctionTestRunner(two_steps) as runner:
        assert runner.run(input='{"n": 1}').result != runner.run(input='{"n": 2}').result


def test_lookups_by_name_fail_clearly() -> None:
    with DurableFunctionTestRunner(two_steps) as runner:
        result = runner.run()
    with pytest.raises(DurableFunctionsTestError, match=r"'missing' not found; named: \['first', 'long'"):
        result.get_step("missing")


@durable_execution
def asks(_event: Any, context: DurableContext) -> str:
    callback = context.create_callback(name="answer", config=CallbackConfig(timeout=Duration.from_hours(1)))
    return str(callback.result())


def test_a_callback_answered_from_another_thread_while_run_blocks() -> None:
    with DurableFunctionTestRunner(asks) as runner:
        def answer() -> None:
            runner.send_callback_success(runner.wait_for_callback(arn_of(runner), name="answer"), b"from a thread")

        thread = threading.Thread(target=answer)
        thread.start()
        result = runner.run(timeout=10)
        thread.join()
    assert result.status is InvocationStatus.SUCCEEDED and json.loads(result.result or "") == "from a thread"
    assert result.get_callback("answer").result == "from a thread"


def arn_of(runner: DurableFunctionTestRunner) -> str:
    """The ARN of the runner's only execution, once it is started."""
    while True:
        executions = runner.engine.list_executions()["DurableExecutions"]
        if executions:
            return str(executions[0]["DurableExecutionArn"])
        time.sleep(0.01)


def test_wait_for_callback_refuses_a_completed_callback_and_times_out() -> None:
    with DurableFunctionTestRunner(asks, poll_interval=0.05) as runner:
        arn = runner.run_async()
        runner.send_callback_heartbeat(runner.wait_for_callback(arn, name="answer"))
        runner.send_callback_success(runner.wait_for_callback(arn), "yes")
        with pytest.raises(DurableFunctionsTestError, match="answer has already completed"):
            runner.wait_for_callback(arn, name="answer")
        with pytest.raises(TimeoutError, match=r"did not become available within 0\.2s"):
            runner.wait_for_callback(arn, timeout=0.2)
        assert runner.wait_for_result(arn).status is InvocationStatus.SUCCEEDED


def test_wait_for_result_times_out_on_an_unanswered_callback() -> None:
    with DurableFunctionTestRunner(asks) as runner:
        arn = runner.run_async()
        with pytest.raises(TimeoutError, match="did not complete within timeout"):
            runner.wait_for_result(arn, timeout=0.2)
        with pytest.raises(TimeoutError):
            runner.run(execution_timeout=1)


@durable_execution
def pay(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    return {"paid": context.step(lambda _: event["amount"], name="charge")}


@durable_execution
def checkout(_event: Any, context: DurableContext) -> Any:
    rate = context.invoke("rates", {"currency": "EUR"}, name="rate")
    return context.invoke("pay", {"amount": 10 * rate}, name="payment")


def test_chained_invokes_of_registered_functions() -> None:
    with DurableFunctionTestRunner(checkout) as runner:
        assert runner.register_durable_function("pay", pay) is runner
        runner.register_function("rates", lambda payload: 2 if payload["currency"] == "EUR" else 1)
        result = runner.run()
    assert result.status is InvocationStatus.SUCCEEDED and json.loads(result.result or "") == {"paid": 20}
    assert result.get_invoke("rate").result == "2"
    assert json.loads(result.get_invoke("payment").result or "") == {"paid": 20}


@durable_with_child_context
def add(context: DurableContext, a: int, b: int) -> int:
    return int(context.step(lambda _: a + b, name="add"))


def test_child_context_runner() -> None:
    with DurableChildContextTestRunner(add, 2, 3) as runner:
        result = runner.run()
    assert result.status is InvocationStatus.SUCCEEDED and result.result == "5"
    assert result.get_step("add").result == "5"


def test_error_objects_read_as_aws_s() -> None:
    error = ErrorObject(ErrorMessage="m", ErrorType="T", ErrorData="d", StackTrace=["x"])
    assert (error.message, error.type, error.data, error.stack_trace) == ("m", "T", "d", ["x"])
    assert ErrorObject.from_message("only") == ErrorObject(ErrorMessage="only")


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(InvalidParameterValueException, match="@durable_execution"):
        DurableFunctionTestRunner(lambda event, context: None)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterValueException, match="positive"):
        DurableFunctionTestRunner(two_steps, poll_interval=0)
    with DurableFunctionTestRunner(two_steps) as runner, \
            pytest.raises(InvalidParameterValueException, match="cannot be encoded as JSON"):
        runner.run(input=object())
