"""``context.step``: results, serdes, naming, semantics per attempt, failures and the payload limit."""

from __future__ import annotations

import time
from typing import Any

import pytest
from durably import (
    CheckpointError,
    DurableContext,
    Duration,
    RecordedError,
    RetryPresets,
    SerDes,
    SerDesContext,
    StepConfig,
    StepContext,
    StepError,
    StepSemantics,
    durable_execution,
    durable_step,
)
from durably.core.engine.engine import Engine
from durably.core.identity import operation_id
from durably.core.limits import MAX_OPERATION_PAYLOAD
from pydantic import BaseModel

from .conftest import MakeRunner, recording

NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())


class Order(BaseModel):
    order_id: str
    amount: int


def make_order(_: StepContext) -> Order:
    return Order(order_id="A-1", amount=42)


class ReversingSerDes(SerDes[str]):
    """Stores text reversed with a marker, to tell its output from the default codec's."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, SerDesContext]] = []

    def serialize(self, value: str, serdes_context: SerDesContext) -> str:
        self.calls.append(("serialize", serdes_context))
        return "rev:" + value[::-1]

    def deserialize(self, data: str, serdes_context: SerDesContext) -> str:
        self.calls.append(("deserialize", serdes_context))
        assert data.startswith("rev:")
        return data[4:][::-1]


def test_step_result_is_checkpointed_as_compact_json(make_runner: MakeRunner) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.step(lambda _: {"sum": event["a"] + event["b"], "items": [1, 2]}, name="add")

    result = make_runner(handler).run({"a": 1, "b": 2})
    assert result.status == "SUCCEEDED"
    assert result.value == {"sum": 3, "items": [1, 2]}
    step = result.get_step("add")
    assert step.Status == "SUCCEEDED"
    assert step.SubType == "Step"
    assert step.StepDetails is not None
    assert step.StepDetails.Result == '{"sum":3,"items":[1,2]}'
    assert step.StepDetails.Attempt == 1
    assert [e["EventType"] for e in result.events(name="add")] == ["StepStarted", "StepSucceeded"]
    succeeded = result.events("StepSucceeded", name="add")[0]["StepSucceededDetails"]
    assert succeeded["Result"]["Payload"] == '{"sum":3,"items":[1,2]}'
    assert succeeded["RetryDetails"] == {"CurrentAttempt": 1}


def test_pydantic_model_round_trips_on_first_run_and_on_replay(make_runner: MakeRunner) -> None:
    runs: list[int] = []
    seen: list[tuple[type, Any]] = []

    def order(step_ctx: StepContext) -> Order:
        runs.append(step_ctx.attempt)
        return make_order(step_ctx)

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        value = ctx.step(order, name="order")
        seen.append((type(value), value))
        ctx.wait(Duration(10), name="pause")  # forces a second invocation that replays "order"
        return value.model_dump()

    result = make_runner(handler).run(None)
    assert result.status == "SUCCEEDED"
    assert runs == [1]
    assert seen == [(Order, Order(order_id="A-1", amount=42))] * 2
    assert result.value == {"order_id": "A-1", "amount": 42}
    step = result.get_step("order")
    assert step.StepDetails is not None and step.StepDetails.Result == '{"order_id":"A-1","amount":42}'


def test_unannotated_model_comes_back_as_plain_json(make_runner: MakeRunner) -> None:
    seen: list[Any] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        seen.append(ctx.step(lambda _: Order(order_id="B", amount=1), name="untyped"))
        return None

    assert make_runner(handler).run(None).status == "SUCCEEDED"
    assert seen == [{"order_id": "B", "amount": 1}]


def test_custom_serdes_per_step_is_used_to_store_and_to_replay(make_runner: MakeRunner) -> None:
    serdes = ReversingSerDes()
    seen: list[Any] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        custom = ctx.step(lambda _: "hello", name="custom", config=StepConfig(serdes=serdes))
        plain = ctx.step(lambda _: "hello", name="plain")
        seen.append((custom, plain))
        ctx.wait(Duration(1), name="pause")
        return custom

    runner = make_runner(handler)
    result = runner.run(None)
    assert result.status == "SUCCEEDED"
    assert seen == [("hello", "hello")] * 2
    custom, plain = result.get_step("custom"), result.get_step("plain")
    assert custom.StepDetails is not None and custom.StepDetails.Result == "rev:olleh"
    assert plain.StepDetails is not None and plain.StepDetails.Result == '"hello"'
    # serialised once; deserialised on the first run (round trip) and on replay
    assert [kind for kind, _ in serdes.calls] == ["serialize", "deserialize", "deserialize"]
    for _, sctx in serdes.calls:
        assert sctx.operation_id == custom.Id
        assert sctx.durable_execution_arn == result.arn


@pytest.mark.parametrize(("value", "type_name"), [(object(), "object"), (float("nan"), "float")])
def test_unserialisable_result_fails_the_step_naming_it_without_retry(
        make_runner: MakeRunner, value: Any, type_name: str) -> None:
    runs: list[int] = []
    caught: list[StepError] = []

    def weird(step_ctx: StepContext) -> Any:
        runs.append(step_ctx.attempt)
        return value

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            ctx.step(weird, name="weird")  # default retry strategy: would retry an ordinary error
        except StepError as exc:
            caught.append(exc)
            return "caught"
        return "no error"

    result = make_runner(handler).run(None)
    assert result.value == "caught"
    assert runs == [1]
    (error,) = caught
    assert error.error_type == "durably.core.errors.SerDesError"
    assert error.message is not None
    assert "'weird'" in error.message and type_name in error.message
    step = result.get_step("weird")
    assert step.Status == "FAILED"
    assert step.StepDetails is not None and step.StepDetails.Attempt == 1
    assert step.StepDetails.Error is not None
    assert step.StepDetails.Error.ErrorType == "durably.core.errors.SerDesError"


def test_failed_step_raises_step_error_with_the_original_fields(make_runner: MakeRunner) -> None:
    caught: list[StepError] = []

    def decline(_: StepContext) -> None:
        raise ValueError("card declined")

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            ctx.step(decline, name="charge", config=NO_RETRY)
        except StepError as exc:
            caught.append(exc)
            raise

    result = make_runner(handler).run(None)
    assert result.status == "FAILED"
    (error,) = caught
    assert (error.error_type, error.message) == ("ValueError", "card declined")
    assert isinstance(error.__cause__, RecordedError)
    assert (error.__cause__.error_type, error.__cause__.message) == ("ValueError", "card declined")
    assert result.error is not None
    assert result.error.ErrorType == "durably.core.errors.StepError"
    assert result.error.ErrorMessage == "card declined"
    failed = result.events("StepFailed", name="charge")
    assert len(failed) == 1
    recorded = failed[0]["StepFailedDetails"]["Error"]["Payload"]
    assert (recorded["ErrorMessage"], recorded["ErrorType"]) == ("card declined", "ValueError")
    assert recorded["StackTrace"] == error.stack_trace and "in decline" in recorded["StackTrace"][-1]
    assert failed[0]["StepFailedDetails"]["RetryDetails"] == {"CurrentAttempt": 1}


def test_step_names_default_to_the_function_name(make_runner: MakeRunner) -> None:
    def reserve_stock(_: StepContext) -> str:
        return "reserved"

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.step(reserve_stock)
        ctx.step(reserve_stock, name="explicit")
        ctx.step(lambda _: "anonymous")
        return None

    result = make_runner(handler).run(None)
    assert [op.Name for op in result.operations] == ["reserve_stock", "explicit", None]
    assert [op.Id for op in result.operations] == [operation_id(None, n) for n in (1, 2, 3)]


@durable_step
def charge(step_ctx: StepContext, amount: int, *, currency: str = "EUR") -> str:
    return f"{amount} {currency} (attempt {step_ctx.attempt})"


def test_durable_step_binds_arguments_and_names_the_step(make_runner: MakeRunner) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return [ctx.step(charge(5, currency="USD")), ctx.step(charge(7), name="renamed")]

    result = make_runner(handler).run(None)
    assert result.value == ["5 USD (attempt 1)", "7 EUR (attempt 1)"]
    assert result.get_step("charge").Status == "SUCCEEDED"
    assert result.get_step("renamed").Status == "SUCCEEDED"


def _history_types(ctx: DurableContext, runner_engine: Engine, name: str) -> list[str]:
    arn = ctx.execution_context.durable_execution_arn
    return [e["EventType"] for e in runner_engine.get_history(arn) if e.get("Name") == name]


def test_at_most_once_start_is_durable_before_the_body_runs(make_runner: MakeRunner) -> None:
    observed: dict[str, list[str]] = {}

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        def pay(_: StepContext) -> str:
            observed["inside"] = _history_types(ctx, runner.engine, "pay")
            return "paid"

        return ctx.step(pay, name="pay", config=StepConfig(step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY))

    runner = make_runner(handler)
    assert runner.run(None).value == "paid"
    assert observed["inside"] == ["StepStarted"]


def test_at_least_once_start_is_recorded_while_a_long_body_runs(make_runner: MakeRunner) -> None:
    observed: dict[str, list[str]] = {}

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        def slow(_: StepContext) -> str:
            deadline = time.monotonic() + 0.2
            while time.monotonic() < deadline:
                observed["inside"] = _history_types(ctx, runner.engine, "slow")
                if observed["inside"]:
                    break
                time.sleep(0.005)
            return "done"

        return ctx.step(slow, name="slow")

    runner = make_runner(handler)
    assert runner.run(None).value == "done"
    assert observed["inside"] == ["StepStarted"]


def _crashing_body(runs: list[int]) -> Any:
    """A step body whose first call dies mid-attempt (the invocation fails, as if the process died)."""

    def body(step_ctx: StepContext) -> str:
        runs.append(step_ctx.attempt)
        if len(runs) == 1:
            raise CheckpointError("simulated crash in the middle of the attempt")
        return "done"

    return body


def test_at_most_once_interrupted_attempt_is_not_run_again(make_runner: MakeRunner) -> None:
    runs: list[int] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.step(_crashing_body(runs), name="transfer", config=StepConfig(
            step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY, retry_strategy=RetryPresets.none()))

    result = make_runner(handler).run(None)
    assert runs == [1]
    assert result.status == "FAILED"
    assert result.error is not None and result.error.ErrorMessage is not None
    assert "'transfer'" in result.error.ErrorMessage and "interrupted during attempt 1" in result.error.ErrorMessage
    failed = result.events("StepFailed", name="transfer")
    assert len(failed) == 1
    assert failed[0]["StepFailedDetails"]["Error"]["Payload"]["ErrorType"] == \
        "durably.core.errors.StepInterruptedError"
    crashed = [e for e in result.events("InvocationCompleted") if "Error" in e["InvocationCompletedDetails"]]
    assert len(crashed) == 1


def test_at_most_once_interrupted_attempt_counts_as_a_failed_attempt(make_runner: MakeRunner) -> None:
    runs: list[int] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.step(_crashing_body(runs), name="transfer", config=StepConfig(
            step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY, retry_strategy=RetryPresets.fixed(Duration(3))))

    result = make_runner(handler).run(None)
    assert result.value == "done"
    assert runs == [1, 2]  # the interrupted attempt 1 is not repeated; attempt 2 runs after the delay
    failed = result.events("StepFailed", name="transfer")
    assert [e["StepFailedDetails"]["RetryDetails"] for e in failed] == [
        {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 3}]
    step = result.get_step("transfer")
    assert step.StepDetails is not None and step.StepDetails.Attempt == 2


def test_at_least_once_body_runs_again_after_a_crash(make_runner: MakeRunner) -> None:
    runs: list[int] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        def body(step_ctx: StepContext) -> str:
            runs.append(step_ctx.attempt)
            if len(runs) == 1:
                deadline = time.monotonic() + 0.2  # let the START reach the engine, then die
                while not _history_types(ctx, runner.engine, "ship") and time.monotonic() < deadline:
                    time.sleep(0.005)
                raise CheckpointError("simulated crash in the middle of the attempt")
            return "shipped"

        return ctx.step(body, name="ship", config=StepConfig(retry_strategy=RetryPresets.none()))

    runner = make_runner(handler)
    result = runner.run(None)
    assert result.value == "shipped"
    assert runs == [1, 1]  # the same attempt ran twice
    types = [e["EventType"] for e in result.history]
    assert types.index("StepStarted") < types.index("InvocationCompleted")
    assert [e["EventType"] for e in result.events(name="ship")] == ["StepStarted", "StepSucceeded"]
    assert result.events("StepSucceeded", name="ship")[0]["StepSucceededDetails"]["RetryDetails"] == {
        "CurrentAttempt": 1}


def test_result_under_the_limit_is_stored_and_over_it_fails_naming_step_size_and_limit(
        make_runner: MakeRunner) -> None:
    runs: list[str] = []
    caught: dict[str, StepError] = {}
    big = "a" * MAX_OPERATION_PAYLOAD  # 2 more bytes once quoted as JSON
    accented = "é" * 600_000  # 600,002 characters, 1,200,002 bytes of UTF-8

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        sizes = {"medium": len(ctx.step(lambda _: "m" * 300_000, name="medium"))}  # above 256 KiB: fine
        for name, value in (("big", big), ("accented", accented)):
            try:
                ctx.step(recording(runs, name, value), name=name)
            except StepError as exc:
                caught[name] = exc
        return sizes

    result = make_runner(handler).run(None)
    assert result.value == {"medium": 300_000}
    assert runs == ["big", "accented"]  # the default retry strategy was not consulted
    for name, size in (("big", MAX_OPERATION_PAYLOAD + 2), ("accented", 1_200_002)):
        message = caught[name].message or ""
        assert f"'{name}'" in message
        assert f"{size} bytes" in message
        assert f"{MAX_OPERATION_PAYLOAD}-byte limit" in message
        step = result.get_step(name)
        assert step.Status == "FAILED"
        assert step.StepDetails is not None and step.StepDetails.Attempt == 1
