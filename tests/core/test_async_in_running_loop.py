"""Handlers driven from code that already runs an event loop (a notebook, an async test or app)."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from durably import AsyncDurableContext, DurableContext, Duration, StepContext, durable_execution

from .conftest import MakeRunner

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


@durable_execution
async def order(event: Any, ctx: AsyncDurableContext) -> Any:
    async def price(_: StepContext) -> int:
        await asyncio.sleep(0)
        return 19 * int(event["qty"])

    total = await ctx.step(price, name="price")
    await ctx.wait(Duration(30), name="pause")
    label = await ctx.step(lambda _: f"{total} for {request_id.get()}", name="label")
    return {"total": total, "label": label}


def test_async_handler_runs_inside_a_running_loop(make_runner: MakeRunner) -> None:
    runner = make_runner(order)

    async def main() -> Any:
        request_id.set("req-7")  # the caller's context reaches the handler
        return runner.run({"qty": 2})

    result = asyncio.run(main())
    assert result.status == "SUCCEEDED", result.error
    assert result.value == {"total": 38, "label": "38 for req-7"}
    assert result.get_wait("pause").Status == "SUCCEEDED"


def test_a_suspension_inside_a_running_loop_ends_the_invocation_pending(make_runner: MakeRunner) -> None:
    @durable_execution
    async def approval(event: Any, ctx: AsyncDurableContext) -> Any:
        cb = await ctx.create_callback(name="approve")
        return cb.result()

    runner = make_runner(approval)

    async def main() -> Any:
        arn = runner.run_async({})
        first = runner.resume(arn)
        runner.send_callback_success(runner.callback_id(arn, "approve"), "yes")
        return first, runner.resume(arn)

    first, second = asyncio.run(main())
    assert first.status == "RUNNING"
    assert first.get_callback("approve").Status == "STARTED"
    assert second.status == "SUCCEEDED" and second.result == '"yes"'


def test_async_step_of_a_plain_handler_runs_inside_a_running_loop(make_runner: MakeRunner) -> None:
    async def fetch(_: StepContext) -> int:
        await asyncio.sleep(0)
        return 41

    @durable_execution
    def plain(event: Any, ctx: DurableContext) -> Any:
        return ctx.step(fetch, name="fetch")

    runner = make_runner(plain)

    async def main() -> Any:
        return runner.run({})

    result = asyncio.run(main())
    assert result.status == "SUCCEEDED", result.error
    assert result.value == 41
