"""with_retry / WithRetryConfig: a block of durable code retried with backoff waits, as AWS's SDK."""

from __future__ import annotations

import dataclasses
from typing import Any

import aws_durable_execution_sdk_python.retries as aws_retries
import pytest
from durably import (
    AsyncDurableContext,
    ChildContextError,
    DurableContext,
    Duration,
    JitterStrategy,
    RetryStrategyConfig,
    ValidationError,
    WithRetryConfig,
    create_retry_strategy,
    durable_execution,
    with_retry,
)

from .conftest import MakeRunner, recording

EVERY_SECOND = create_retry_strategy(RetryStrategyConfig(max_attempts=3, initial_delay=Duration(1),
                                                         backoff_rate=1, jitter_strategy=JitterStrategy.NONE))


def test_with_retry_config_matches_aws_fields_and_defaults() -> None:
    ours = [(f.name, f.default) for f in dataclasses.fields(WithRetryConfig)]
    theirs = [(f.name, f.default) for f in dataclasses.fields(aws_retries.WithRetryConfig)]
    assert ours == theirs
    with pytest.raises(dataclasses.FrozenInstanceError):
        WithRetryConfig().wrap_with_run_in_child_context = False  # type: ignore[misc]


def test_a_block_is_retried_after_backoff_waits_and_replays_across_invocations(make_runner: MakeRunner) -> None:
    runs: list[str] = []

    def block(ctx: DurableContext, attempt: int) -> str:
        ctx.step(recording(runs, f"reserve {attempt}", attempt), name=f"reserve {attempt}")
        if attempt < 3:
            raise ConnectionError(f"attempt {attempt} lost the connection")
        return f"done on attempt {attempt}"

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return with_retry(ctx, block, WithRetryConfig(retry_strategy=EVERY_SECOND), name="book")

    result = make_runner(handler).run(None)
    assert result.value == "done on attempt 3"
    assert runs == ["reserve 1", "reserve 2", "reserve 3"]  # each attempt's step ran once, over 3 invocations
    context = result.get_context("book")
    assert (context.SubType, context.Status) == ("RunInChildContext", "SUCCEEDED")
    waits = [result.get_wait("book-backoff-1"), result.get_wait("book-backoff-2")]
    assert all(w.ParentId == context.Id and w.Status == "SUCCEEDED" for w in waits)
    assert len(result.events("InvocationCompleted")) == 3


def test_a_block_that_keeps_failing_raises_child_context_error_after_the_default_three_attempts(
        make_runner: MakeRunner) -> None:
    attempts: list[int] = []

    def block(ctx: DurableContext, attempt: int) -> None:
        attempts.append(attempt)
        raise KeyError("missing")

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            with_retry(ctx, block, WithRetryConfig(), name="book")
        except ChildContextError as exc:
            return {"type": exc.error_type, "cause": type(exc.__cause__).__name__}
        return "no error"

    result = make_runner(handler).run(None)
    assert result.value == {"type": "KeyError", "cause": "RecordedError"}
    assert attempts[-1] == 3 and sorted(set(attempts)) == [1, 2, 3]  # create_retry_strategy(): 3 attempts
    assert result.get_context("book").Status == "FAILED"


def test_without_a_child_context_the_last_error_propagates_unchanged(make_runner: MakeRunner) -> None:
    def block(ctx: DurableContext, attempt: int) -> None:
        raise ValueError(f"bad {attempt}")

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            with_retry(ctx, block, WithRetryConfig(retry_strategy=EVERY_SECOND,
                                                   wrap_with_run_in_child_context=False), name="book")
        except ValueError as exc:
            return str(exc)
        return "no error"

    result = make_runner(handler).run(None)
    assert result.value == "bad 3"
    assert [op.Type for op in result.operations] == ["WAIT", "WAIT"]  # no CONTEXT: the caller's own waits
    assert result.get_wait("book-backoff-2").ParentId is None


def test_without_a_name_the_context_is_named_like_the_block_and_the_waits_are_unnamed(make_runner: MakeRunner) -> None:
    def block(ctx: DurableContext, attempt: int) -> int:
        if attempt == 1:
            raise ValueError("first")
        return attempt

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return with_retry(ctx, block, WithRetryConfig(retry_strategy=EVERY_SECOND))

    result = make_runner(handler).run(None)
    assert result.value == 2
    assert [(op.Type, op.Name) for op in result.operations] == [("CONTEXT", "block"), ("WAIT", None)]


def test_with_retry_on_an_async_context(make_runner: MakeRunner) -> None:
    async def block(ctx: AsyncDurableContext, attempt: int) -> int:
        value: int = await ctx.step(lambda _: attempt, name=f"try {attempt}")
        if value < 2:
            raise ValueError("once more")
        return value

    @durable_execution
    async def handler(event: Any, ctx: AsyncDurableContext) -> Any:
        return await with_retry(ctx, block, WithRetryConfig(retry_strategy=EVERY_SECOND), name="async")

    result = make_runner(handler).run(None)
    assert result.value == 2
    assert result.get_wait("async-backoff-1").Status == "SUCCEEDED"


def test_bad_arguments_are_refused_before_anything_runs(make_runner: MakeRunner) -> None:
    def block(ctx: Any, attempt: int) -> None: ...

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        errors = []
        for func, config in ((block, None), ("block", WithRetryConfig())):
            try:
                with_retry(ctx, func, config)  # type: ignore[arg-type]
            except ValidationError as exc:
                errors.append(str(exc))
        return errors

    @durable_execution
    async def async_handler(event: Any, ctx: AsyncDurableContext) -> Any:
        try:
            await with_retry(ctx, block, WithRetryConfig())
        except ValidationError as exc:
            return str(exc)
        return "accepted"

    result = make_runner(handler).run(None)
    assert result.value == ["with_retry needs a WithRetryConfig, got NoneType",
                            "with_retry needs a function (context, attempt), got str"]
    assert result.operations == []
    assert make_runner(async_handler).run(None).value == \
        "with_retry on an AsyncDurableContext needs an async def function"

