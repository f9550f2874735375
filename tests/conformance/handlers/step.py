"""Suite 1 (step): handlers written from the requirements' prose."""

from __future__ import annotations

import json
from typing import Any

from durably import (
    DurableContext,
    Duration,
    JitterStrategy,
    RetryDecision,
    RetryStrategyConfig,
    SerDes,
    SerDesContext,
    StepConfig,
    StepContext,
    StepError,
    StepSemantics,
    create_retry_strategy,
    durable_execution,
    durable_step,
)
from durably import RetryPresets as Presets

from .registry import crash_process, requirement

NO_RETRY = StepConfig(retry_strategy=Presets.none())


class TransientError(Exception):
    """A failure worth retrying."""


def fixed_retry(max_attempts: int, seconds: int = 1, backoff_rate: float = 1.0) -> StepConfig:
    return StepConfig(retry_strategy=create_retry_strategy(RetryStrategyConfig(
        max_attempts=max_attempts, initial_delay=Duration(seconds), backoff_rate=backoff_rate,
        jitter_strategy=JitterStrategy.NONE)))


@durable_step
def greet(step_context: StepContext, name: str) -> str:
    return f"Hello, {name}!"


@requirement("1-1")
@durable_execution
def step_basic(event: Any, context: DurableContext) -> Any:
    return context.step(greet(event))


@requirement("1-2")
@durable_execution
def step_with_name(event: Any, context: DurableContext) -> Any:
    return context.step(lambda _: f"Hello, {event}!", name="custom_step_name")


@durable_step
def step_one(step_context: StepContext) -> str:
    return "first"


@durable_step
def step_two(step_context: StepContext, previous: str) -> str:
    return f"{previous}_second"


@requirement("1-3")
@durable_execution
def sequential_steps(event: Any, context: DurableContext) -> Any:
    result1 = context.step(step_one())
    return context.step(step_two(result1))


@durable_step
def build_response(step_context: StepContext, event: dict[str, Any]) -> dict[str, Any]:
    return {"user": {"name": event["name"], "tags": list(event["tags"])}, "count": len(event["tags"])}


@requirement("1-4")
@durable_execution
def complex_result(event: Any, context: DurableContext) -> Any:
    return context.step(build_response(event))


@requirement("1-5")
@durable_execution
def null_result(event: Any, context: DurableContext) -> Any:
    def do_nothing(_: StepContext) -> None:
        return None
    return context.step(do_nothing)


class UppercaseSerDes(SerDes[Any]):
    """Uppercases every string value when serialising; reads JSON back unchanged."""

    def serialize(self, value: Any, serdes_context: SerDesContext) -> str:
        return json.dumps(self._upper(value))

    def deserialize(self, data: str, serdes_context: SerDesContext) -> Any:
        return json.loads(data)

    def _upper(self, value: Any) -> Any:
        if isinstance(value, str):
            return value.upper()
        if isinstance(value, list):
            return [self._upper(v) for v in value]
        if isinstance(value, dict):
            return {k: self._upper(v) for k, v in value.items()}
        return value


@requirement("1-6")
@durable_execution
def custom_step_serdes(event: Any, context: DurableContext) -> Any:
    def return_input(_: StepContext) -> Any:
        return event
    return context.step(return_input, config=StepConfig(serdes=UppercaseSerDes()))


@durable_step
def greet_with_logs(step_context: StepContext, name: str) -> str:
    step_context.logger.info(f"Greeting step started for: {name}")
    greeting = f"Hello, {name}!"
    step_context.logger.info(f"Greeting step completed with: {greeting}")
    return greeting


@requirement("1-7")
@durable_execution
def step_context_logger(event: Any, context: DurableContext) -> Any:
    return context.step(greet_with_logs(event))


@requirement("1-8")
@durable_execution
def step_and_wait(event: Any, context: DurableContext) -> Any:
    result = context.step(lambda _: "computed", name="compute")
    context.wait(Duration.from_seconds(2))
    return result


@requirement("1-9")
@durable_execution
def replay_skips_succeeded_step(event: Any, context: DurableContext) -> Any:
    def func(step_context: StepContext) -> str:
        step_context.logger.info("step executed")
        return "cached_value"
    result = context.step(func)
    context.wait(Duration.from_seconds(1))
    return result


@requirement("1-10")
@durable_execution
def replay_rethrows_failed_step(event: Any, context: DurableContext) -> Any:
    def func(step_context: StepContext) -> str:
        step_context.logger.info("step executed")
        raise ValueError("permanent failure")
    caught = None
    try:
        context.step(func, config=NO_RETRY)
    except StepError as exc:
        caught = exc.message
    context.wait(Duration.from_seconds(1))
    return caught


@requirement("1-11")
@durable_execution
def retry_then_succeed(event: Any, context: DurableContext) -> Any:
    def unreliable_func(step_context: StepContext) -> str:
        if step_context.attempt == 1:
            raise RuntimeError("first attempt fails")
        return "Operation succeeded"
    return context.step(unreliable_func, config=fixed_retry(3))


@requirement("1-12")
@durable_execution
def retry_exhaustion(event: Any, context: DurableContext) -> Any:
    def always_fail(step_context: StepContext) -> str:
        raise RuntimeError(f"attempt {step_context.attempt} fails")
    return context.step(always_fail, config=fixed_retry(4))


@requirement("1-13")
@durable_execution
def default_retry_strategy(event: Any, context: DurableContext) -> Any:
    def unreliable_func(step_context: StepContext) -> str:
        if step_context.attempt <= 2:
            raise RuntimeError(f"attempt {step_context.attempt} fails")
        return "third time lucky"
    return context.step(unreliable_func)


@requirement("1-14")
@durable_execution
def custom_retry_backoff(event: Any, context: DurableContext) -> Any:
    def func(step_context: StepContext) -> str:
        if step_context.attempt <= 2:
            raise RuntimeError(f"attempt {step_context.attempt} fails")
        return "succeeded after backoff"
    return context.step(func, config=fixed_retry(5, seconds=2, backoff_rate=3))


def retry_on_transient(error: BaseException, attempts_made: int) -> RetryDecision:
    if isinstance(error, TransientError) and attempts_made < 3:
        return RetryDecision.retry(Duration.from_seconds(1))
    return RetryDecision.no_retry()


def no_retry_on_transient_error(error: BaseException, attempts_made: int) -> RetryDecision:
    if isinstance(error, TransientError):
        return RetryDecision.no_retry()
    return RetryDecision.retry(Duration.from_seconds(1))


@requirement("1-15")
@durable_execution
def retry_specific_exception(event: Any, context: DurableContext) -> Any:
    def func(step_context: StepContext) -> str:
        if step_context.attempt == 1:
            raise TransientError("temporarily unavailable")
        return "recovered from transient error"
    return context.step(func, config=StepConfig(retry_strategy=retry_on_transient))


@requirement("1-16")
@durable_execution
def non_retryable_exception(event: Any, context: DurableContext) -> Any:
    def func(step_context: StepContext) -> str:
        raise TransientError("not retried by this strategy")
    return context.step(func, config=StepConfig(retry_strategy=no_retry_on_transient_error))


@requirement("1-17", crash=True)
@durable_execution
def at_most_once_no_retry(event: Any, context: DurableContext) -> Any:
    def at_most_once_flaky_step(step_context: StepContext) -> str:
        step_context.logger.info(f"at-most-once step running for {event}")
        crash_process()
        return "unreachable"
    return context.step(at_most_once_flaky_step, config=StepConfig(
        retry_strategy=Presets.none(), step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY))


@requirement("1-18", crash=True)
@durable_execution
def at_most_once_with_retry(event: Any, context: DurableContext) -> Any:
    def flaky_step(step_context: StepContext) -> str:
        step_context.logger.info(f"at-most-once step attempt {step_context.attempt} for {event}")
        if step_context.attempt == 1:
            crash_process()
        return "succeeded on second attempt"
    config = fixed_retry(3)
    return context.step(flaky_step, config=StepConfig(
        retry_strategy=config.retry_strategy, step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY))


@requirement("1-19")
@durable_execution
def step_fails_permanently(event: Any, context: DurableContext) -> Any:
    def failing_func(_: StepContext) -> str:
        raise RuntimeError("this step always fails")
    return context.step(failing_func, config=NO_RETRY)


@requirement("1-20")
@durable_execution
def error_caught(event: Any, context: DurableContext) -> Any:
    def failing_func(_: StepContext) -> str:
        raise RuntimeError("this step fails")
    try:
        value = context.step(failing_func, config=NO_RETRY)
    except StepError:
        value = "fallback_result"
    return context.step(lambda _: value, name="use_fallback")
