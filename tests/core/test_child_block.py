"""``in_child_context``: a child context around a block, and the identity a step sees."""

from __future__ import annotations

from typing import Any

from durably import AsyncDurableContext, DurableContext, Duration, StepContext, durable_execution

from .conftest import MakeRunner, recording


def test_a_block_is_a_child_context_that_replays_without_rerunning_its_steps(make_runner: MakeRunner) -> None:
    runs: list[str] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        with ctx.in_child_context("order", sub_type="Saga") as order:
            first = order.step(recording(runs, "reserve", 1), name="reserve")
            order.wait(Duration(5), name="pause")
            second = order.step(recording(runs, "charge", 2), name="charge")
        return first + second + ctx.step(recording(runs, "after", 10), name="after")

    result = make_runner(handler).run()
    assert result.status == "SUCCEEDED" and result.value == 13
    assert runs == ["reserve", "charge", "after"]  # two invocations; the block ran twice, its bodies once
    block = result.get_context("order")
    assert (block.SubType, block.Status) == ("Saga", "SUCCEEDED")
    assert result.get_step("reserve").ParentId == block.Id and result.get_step("charge").ParentId == block.Id
    assert result.get_step("after").ParentId is None


def test_an_error_in_a_block_fails_the_context_and_propagates_unchanged(make_runner: MakeRunner) -> None:
    seen: list[tuple[str, str]] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            with ctx.in_child_context("block") as block:
                block.step(lambda _: 1, name="ok")
                raise LookupError("nothing here")
        except LookupError as exc:
            seen.append((type(exc).__name__, str(exc)))
        ctx.wait(Duration(1), name="then")  # the next invocation replays the failed block
        return "handled"

    result = make_runner(handler).run()
    assert result.status == "SUCCEEDED"
    assert seen == [("LookupError", "nothing here")] * 2
    failed = result.get_context("block")
    assert failed.Status == "FAILED" and failed.ContextDetails and failed.ContextDetails.Error
    assert failed.ContextDetails.Error.ErrorType == "LookupError"


def test_an_async_block(make_runner: MakeRunner) -> None:
    @durable_execution
    async def handler(event: Any, ctx: AsyncDurableContext) -> Any:
        async with ctx.in_child_context("async-block", sub_type="Saga") as block:
            value = await block.step(lambda _: 21, name="inside")
            await block.wait(Duration(2), name="pause")
        return value * 2

    result = make_runner(handler).run()
    assert result.status == "SUCCEEDED" and result.value == 42
    assert result.get_step("inside").ParentId == result.get_context("async-block").Id


def test_the_idempotency_key_is_stable_across_attempts_and_replays_and_unique_per_step(
        make_runner: MakeRunner) -> None:
    keys: list[tuple[str, int, str]] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        def charge(step: StepContext) -> str:
            keys.append(("charge", step.attempt, step.idempotency_key))
            if step.attempt == 1:
                raise TimeoutError("gateway")
            return step.idempotency_key

        def other(step: StepContext) -> str:
            keys.append(("other", step.attempt, step.idempotency_key))
            assert step.operation_id and step.execution_arn == ctx.execution_context.durable_execution_arn
            return step.idempotency_key

        return [ctx.step(charge, name="charge"), ctx.step(other, name="other")]

    runner = make_runner(handler)
    first = runner.run()
    again = runner.run()
    assert first.status == again.status == "SUCCEEDED"
    charge_keys = {key for name, _, key in keys if name == "charge"}
    assert len(charge_keys) == 2  # one per execution, the same on both attempts of each
    assert [attempt for name, attempt, _ in keys if name == "charge"] == [1, 2, 1, 2]
    assert first.value[0] != first.value[1] and first.value != again.value
    assert all(len(key) == 32 for _, _, key in keys)
