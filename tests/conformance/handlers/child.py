"""Suite 3 (run_in_child_context): handlers written from the requirements' prose."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from durably import (
    ChildConfig,
    ChildContextError,
    DurableContext,
    Duration,
    JitterStrategy,
    RetryStrategyConfig,
    SerDes,
    SerDesContext,
    StepConfig,
    StepContext,
    create_retry_strategy,
    durable_execution,
)
from durably import RetryPresets as Presets

from .registry import STATE_ENV, crash_process, requirement

NO_RETRY = StepConfig(retry_strategy=Presets.none())


def retry(max_attempts: int) -> StepConfig:
    return StepConfig(retry_strategy=create_retry_strategy(RetryStrategyConfig(
        max_attempts=max_attempts, initial_delay=Duration(1), jitter_strategy=JitterStrategy.NONE)))


def echo_step(context: DurableContext, value: Any, name: str | None = None) -> Any:
    return context.step(lambda _: value, name=name)


@requirement("3-1")
@durable_execution
def child_basic(event: Any, context: DurableContext) -> Any:
    def child_operation(child: DurableContext) -> Any:
        return echo_step(child, event)
    return context.run_in_child_context(child_operation)


@requirement("3-2")
@durable_execution
def child_with_name(event: Any, context: DurableContext) -> Any:
    return context.run_in_child_context(lambda child: echo_step(child, event["value"]), name=event["name"])


@requirement("3-3")
@durable_execution
def child_sequential_steps(event: Any, context: DurableContext) -> Any:
    def body(child: DurableContext) -> Any:
        first = echo_step(child, event, "first")
        return echo_step(child, first, "second")
    return context.run_in_child_context(body, name="sequential")


@requirement("3-4")
@durable_execution
def child_error(event: Any, context: DurableContext) -> Any:
    def body(child: DurableContext) -> Any:
        def fail(_: StepContext) -> Any:
            raise RuntimeError("inner step failed")
        return child.step(fail, config=NO_RETRY)
    return context.run_in_child_context(body, name="failing-child")


@requirement("3-5")
@durable_execution
def child_error_caught(event: Any, context: DurableContext) -> Any:
    def body(child: DurableContext) -> Any:
        def fail(_: StepContext) -> Any:
            raise RuntimeError("inner step failed")
        return child.step(fail, config=NO_RETRY)
    try:
        return context.run_in_child_context(body)
    except ChildContextError:
        return echo_step(context, event, "recovery")


@requirement("3-6")
@durable_execution
def nested_children(event: Any, context: DurableContext) -> Any:
    def inner(child: DurableContext) -> Any:
        return echo_step(child, event, "inner-step")

    def outer(child: DurableContext) -> Any:
        echo_step(child, event, "outer-step")
        return child.run_in_child_context(inner, name="inner")
    return context.run_in_child_context(outer, name="outer")


@requirement("3-7")
@durable_execution
def child_step_retry(event: Any, context: DurableContext) -> Any:
    def body(child: DurableContext) -> Any:
        def flaky(step_context: StepContext) -> Any:
            if step_context.attempt == 1:
                raise RuntimeError("first attempt fails")
            return event
        return child.step(flaky, config=retry(3))
    return context.run_in_child_context(body, name="retrying-child")


@requirement("3-8")
@durable_execution
def child_step_retry_exhausted(event: Any, context: DurableContext) -> Any:
    def body(child: DurableContext) -> Any:
        def always_fail(step_context: StepContext) -> Any:
            raise RuntimeError(f"attempt {step_context.attempt} fails")
        return child.step(always_fail, config=retry(2))
    return context.run_in_child_context(body, name="exhausted-child")


@requirement("3-9")
@durable_execution
def child_replay_cached(event: Any, context: DurableContext) -> Any:
    result = context.run_in_child_context(lambda child: echo_step(child, event))
    context.wait(Duration.from_seconds(1))
    return result


@requirement("3-10")
@durable_execution
def child_step_and_wait(event: Any, context: DurableContext) -> Any:
    def body(child: DurableContext) -> Any:
        value = echo_step(child, event)
        child.wait(Duration.from_seconds(1))
        return value
    return context.run_in_child_context(body, name="step-and-wait")


LARGE_RESULT_BYTES = 300 * 1024


@requirement("3-11")
@durable_execution
def child_replay_children(event: Any, context: DurableContext) -> Any:
    context.configure_logger(mode_aware=False)

    def body(child: DurableContext) -> Any:
        child.logger.info(f"building a large result for {event}")
        seed = echo_step(child, "x")
        return seed * LARGE_RESULT_BYTES
    large = context.run_in_child_context(body, name="large-result")
    context.wait(Duration.from_seconds(1))
    return len(large)


@requirement("3-12", crash=True)
@durable_execution
def child_interrupted(event: Any, context: DurableContext) -> Any:
    counter = Path(os.environ.get(STATE_ENV, ".")) / f"attempts-{context.execution_context.durable_execution_arn[-32:]}"

    def body(child: DurableContext) -> Any:
        def work(_: StepContext) -> Any:
            attempts = int(counter.read_text()) + 1 if counter.exists() else 1
            counter.write_text(str(attempts))
            if attempts == 1:
                time.sleep(0.2)  # the START is on record by now (it is written within tens of ms)
                crash_process()
            return event
        return child.step(work)
    return context.run_in_child_context(body)


@requirement("3-13")
@durable_execution
def child_with_only_wait(event: Any, context: DurableContext) -> Any:
    def body(child: DurableContext) -> Any:
        child.wait(Duration.from_seconds(1))
        return event
    value = context.run_in_child_context(body, name="waiting-child")
    return echo_step(context, value, "after-child")


class UppercaseRawSerDes(SerDes[str]):
    """Stores the result uppercased, as raw text (not JSON)."""

    def serialize(self, value: str, serdes_context: SerDesContext) -> str:
        return value.upper()

    def deserialize(self, data: str, serdes_context: SerDesContext) -> str:
        return data


@requirement("3-14")
@durable_execution
def child_custom_serdes(event: Any, context: DurableContext) -> Any:
    return context.run_in_child_context(lambda child: echo_step(child, event), name="uppercase-child",
                                        config=ChildConfig(serdes=UppercaseRawSerDes()))


@requirement("3-15")
@durable_execution
def child_error_without_step(event: Any, context: DurableContext) -> Any:
    def body(child: DurableContext) -> Any:
        raise ValueError("thrown directly in the child body")
    return context.run_in_child_context(body, name="throwing-child")


@requirement("3-16")
@durable_execution
def child_returns_null(event: Any, context: DurableContext) -> Any:
    return context.run_in_child_context(lambda child: None, name="null-child")


@requirement("3-17")
@durable_execution
def child_logger_only(event: Any, context: DurableContext) -> Any:
    context.configure_logger(mode_aware=False)

    def body(child: DurableContext) -> Any:
        child.logger.info(f"child body running for {event}")
        return event
    result = context.run_in_child_context(body, name="logging-child")
    context.wait(Duration.from_seconds(1))
    return result


@requirement("3-18")
@durable_execution
def child_then_outer_operations(event: Any, context: DurableContext) -> Any:
    def body(child: DurableContext) -> Any:
        value = echo_step(child, event, "inner-step")
        child.wait(Duration.from_seconds(1))
        return value
    value = context.run_in_child_context(body, name="inner-work")
    result = echo_step(context, value, "outer-step")
    context.wait(Duration.from_seconds(1))
    return result
