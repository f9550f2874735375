"""``async def`` handlers (AsyncDurableContext) and ``async def`` steps in either kind of handler."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from durably import (
    AsyncDurableContext,
    ChildContextError,
    DurableContext,
    Duration,
    RetryPresets,
    StepConfig,
    StepContext,
    StepError,
    WaitForCallbackContext,
    durable_execution,
    durable_step,
    durable_with_child_context,
)

from .conftest import MakeRunner


@durable_step
async def quote(step_ctx: StepContext, sku: str, quantity: int) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"sku": sku, "total": 19 * quantity, "attempt": step_ctx.attempt}


@durable_with_child_context
async def packing(ctx: AsyncDurableContext, boxes: int) -> str:
    label: str = await ctx.step(lambda _: f"{boxes} boxes", name="label")
    await ctx.wait(Duration(3), name="packing-time")
    return label


def test_async_handler_replays_across_invocations(make_runner: MakeRunner) -> None:
    runs = {"fetch": 0, "plain": 0}
    contexts: list[str] = []

    async def fetch(_: StepContext) -> int:
        runs["fetch"] += 1
        await asyncio.sleep(0.001)
        return 41

    def plain(_: StepContext) -> str:
        runs["plain"] += 1
        return "plain"

    @durable_execution
    async def handler(event: Any, ctx: AsyncDurableContext) -> Any:
        contexts.append(type(ctx).__name__)
        fetched = await ctx.step(fetch, name="fetch")
        simple = await ctx.step(plain, name="plain")
        await ctx.wait(Duration(30), name="pause")
        packed = await ctx.run_in_child_context(packing(2))
        cb = await ctx.create_callback(name="confirm")
        return {"fetched": fetched, "simple": simple, "packed": packed, "confirmed": cb.result()}

    runner = make_runner(handler)
    arn = runner.run_async(None)
    assert runner.resume(arn).status == "RUNNING"
    runner.send_callback_success(runner.callback_id(arn, "confirm"), "yes")
    result = runner.resume(arn)
    assert result.value == {"fetched": 41, "simple": "plain", "packed": "2 boxes", "confirmed": "yes"}
    assert runs == {"fetch": 1, "plain": 1}
    assert contexts == ["AsyncDurableContext"] * 4  # pause, packing-time, confirm, end
    assert result.get_context("packing").Status == "SUCCEEDED"
    assert result.get_step("label").ParentId == result.get_context("packing").Id


def test_plain_steps_of_an_async_handler_run_in_a_worker_thread(make_runner: MakeRunner) -> None:
    main = threading.get_ident()
    seen: dict[str, bool] = {}

    def where(_: StepContext) -> bool:
        return threading.get_ident() == main

    async def where_async(_: StepContext) -> bool:
        return threading.get_ident() == main

    @durable_execution
    async def handler(event: Any, ctx: AsyncDurableContext) -> Any:
        seen["plain on main thread"] = await ctx.step(where, name="plain")
        seen["async on main thread"] = await ctx.step(where_async, name="async")
        return None

    assert make_runner(handler).run(None).status == "SUCCEEDED"
    assert seen == {"plain on main thread": False, "async on main thread": True}


def test_async_steps_in_a_sync_handler_run_on_an_event_loop(make_runner: MakeRunner) -> None:
    loops: list[bool] = []

    async def needs_loop(_: StepContext) -> str:
        loops.append(asyncio.get_running_loop().is_running())
        await asyncio.sleep(0.001)
        return "awaited"

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        first = ctx.step(needs_loop, name="first")
        second = ctx.step(quote("A", 2))
        ctx.wait(Duration(1), name="pause")
        return [first, second]

    result = make_runner(handler).run(None)
    assert result.value == ["awaited", {"sku": "A", "total": 38, "attempt": 1}]
    assert loops == [True]
    assert result.get_step("quote").Status == "SUCCEEDED"


def test_async_steps_are_retried_and_fail_like_plain_ones(make_runner: MakeRunner) -> None:
    attempts: list[int] = []

    async def flaky(step_ctx: StepContext) -> str:
        attempts.append(step_ctx.attempt)
        await asyncio.sleep(0)
        if step_ctx.attempt < 2:
            raise ConnectionError("try again")
        raise ValueError("bad data")

    @durable_execution
    async def handler(event: Any, ctx: AsyncDurableContext) -> Any:
        try:
            await ctx.step(flaky, name="flaky", config=StepConfig(retry_strategy=RetryPresets.fixed(Duration(2))))
        except StepError as exc:
            return [exc.error_type, exc.message]
        return None

    result = make_runner(handler).run(None)
    assert attempts == [1, 2, 3, 4, 5]
    assert result.value == ["ValueError", "bad data"]
    assert len(result.events("StepFailed", name="flaky")) == 5


def test_async_child_context_failure(make_runner: MakeRunner) -> None:
    async def broken(ctx: AsyncDurableContext) -> None:
        await ctx.step(lambda _: "fine", name="fine")
        raise RuntimeError("child broke")

    @durable_execution
    async def handler(event: Any, ctx: AsyncDurableContext) -> Any:
        try:
            await ctx.run_in_child_context(broken, name="broken")
        except ChildContextError as exc:
            return [exc.error_type, exc.message]
        return None

    result = make_runner(handler).run(None)
    assert result.value == ["RuntimeError", "child broke"]
    assert result.get_context("broken").Status == "FAILED"


def test_a_plain_child_function_in_an_async_handler_gets_a_sync_context(make_runner: MakeRunner) -> None:
    kinds: list[str] = []

    def plain_child(ctx: DurableContext) -> int:
        kinds.append(type(ctx).__name__)
        return ctx.step(lambda _: 5, name="five")

    @durable_execution
    async def handler(event: Any, ctx: AsyncDurableContext) -> Any:
        return await ctx.run_in_child_context(plain_child, name="plain-child")

    assert make_runner(handler).run(None).value == 5
    assert kinds == ["DurableContext"]


def test_async_wait_for_callback_with_an_async_submitter(make_runner: MakeRunner) -> None:
    submitted: list[str] = []

    async def submit(callback_id: str, wctx: WaitForCallbackContext) -> None:
        await asyncio.sleep(0)
        submitted.append(callback_id)

    @durable_execution
    async def handler(event: Any, ctx: AsyncDurableContext) -> Any:
        answer = await ctx.wait_for_callback(submit, name="ask")
        await ctx.wait(Duration(1), name="after")
        return answer

    runner = make_runner(handler)
    arn = runner.run_async(None)
    runner.resume(arn)
    cid = runner.callback_id(arn, "ask")
    runner.send_callback_success(cid, "granted")
    assert runner.resume(arn).value == "granted"
    assert submitted == [cid]


def test_async_invoke(make_runner: MakeRunner) -> None:
    @durable_execution
    async def child(event: Any, ctx: AsyncDurableContext) -> Any:
        return await ctx.step(lambda _: event["n"] + 1, name="increment")

    @durable_execution
    async def parent(event: Any, ctx: AsyncDurableContext) -> Any:
        return await ctx.invoke("increment", {"n": 1}, name="call")

    runner = make_runner(parent)
    runner.register_durable_function("increment", child)
    result = runner.run(None)
    assert result.value == 2
    assert result.get_invoke("call").Status == "SUCCEEDED"


def test_an_async_handler_that_raises_fails_the_execution(make_runner: MakeRunner) -> None:
    @durable_execution
    async def handler(event: Any, ctx: AsyncDurableContext) -> Any:
        await ctx.step(lambda _: 1, name="first")
        raise PermissionError("not allowed")

    result = make_runner(handler).run(None)
    assert result.status == "FAILED"
    assert result.error is not None
    assert (result.error.ErrorType, result.error.ErrorMessage) == ("PermissionError", "not allowed")
