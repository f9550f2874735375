"""Retry strategies for steps: the AWS SDK's configs and presets, timed with tenacity's waits;
and :func:`with_retry`, which retries a block of durable code with them.

A strategy is a function ``(error, attempts_made) -> RetryDecision``. ``attempts_made`` counts
attempts that finished, so ``max_attempts`` counts every attempt including the first.
Delays are whole seconds, at least one, after jitter.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import tenacity
from durably.core.config import ChildConfig, Duration, JitterStrategy, RetryStrategy
from durably.core.errors import ValidationError

if TYPE_CHECKING:
    from durably.core.context import AsyncDurableContext, DurableContext

T = TypeVar("T")

__all__ = [
    "LinearRetryStrategyConfig",
    "RetryDecision",
    "RetryPresets",
    "RetryStrategyConfig",
    "WithRetryConfig",
    "create_linear_retry_strategy",
    "create_retry_strategy",
    "with_retry",
]


@dataclass(frozen=True)
class RetryDecision:
    should_retry: bool
    delay: Duration = field(default_factory=Duration)

    @classmethod
    def retry(cls, delay: Duration) -> RetryDecision:
        return cls(True, delay)

    @classmethod
    def no_retry(cls) -> RetryDecision:
        return cls(False, Duration(0))


@dataclass(frozen=True)
class RetryStrategyConfig:
    max_attempts: int = 3
    initial_delay: Duration = Duration(5)
    max_delay: Duration = Duration(300)
    backoff_rate: float = 2.0
    jitter_strategy: JitterStrategy = JitterStrategy.FULL
    retryable_errors: Sequence[str | re.Pattern[str]] | None = None
    retryable_error_types: Sequence[type[BaseException]] | None = None


@dataclass(frozen=True)
class LinearRetryStrategyConfig:
    max_attempts: int = 6
    initial_delay: Duration = Duration(1)
    increment: Duration = Duration(1)
    max_delay: Duration = Duration(300)
    jitter_strategy: JitterStrategy = JitterStrategy.FULL
    retryable_errors: Sequence[str | re.Pattern[str]] | None = None
    retryable_error_types: Sequence[type[BaseException]] | None = None


def _jittered(base: tenacity.wait.wait_base, jitter: JitterStrategy) -> tenacity.wait.wait_base:
    """Apply jitter to a deterministic tenacity wait: FULL = U(0, d), HALF = d/2 + U(0, d/2)."""
    if jitter is JitterStrategy.NONE:
        return base

    class _Jitter(tenacity.wait.wait_base):
        def __call__(self, retry_state: tenacity.RetryCallState) -> float:
            d = base(retry_state)
            if jitter is JitterStrategy.FULL:
                return tenacity.wait_random(0, d)(retry_state)
            return d / 2 + tenacity.wait_random(0, d / 2)(retry_state)

    return _Jitter()


def _matches(regex: re.Pattern[str]) -> Callable[[BaseException], bool]:
    return lambda error: regex.search(str(error)) is not None


def _error_filter(
    patterns: Sequence[str | re.Pattern[str]] | None, types: Sequence[type[BaseException]] | None
) -> tenacity.retry_base:
    if patterns is None and types is None:
        return tenacity.retry_always
    conditions: list[tenacity.retry_base] = []
    if types:
        conditions.append(tenacity.retry_if_exception_type(tuple(types)))
    for pattern in patterns or ():
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        conditions.append(tenacity.retry_if_exception(_matches(regex)))
    return tenacity.retry_any(*conditions) if conditions else tenacity.retry_never


def jittered_backoff(initial: Duration, rate: float, cap: Duration, jitter: JitterStrategy,
                     attempt: int) -> Duration:
    """The delay after ``attempt`` finished attempts: ``min(initial * rate**(attempt-1), cap)``, jittered,
    rounded up to whole seconds, at least one."""
    wait = _jittered(tenacity.wait_exponential(multiplier=initial.seconds, exp_base=rate, max=cap.seconds, min=0),
                     jitter)
    state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    return Duration(max(1, math.ceil(wait(state))))


def _strategy(
    max_attempts: int, wait: tenacity.wait.wait_base, retry: tenacity.retry_base
) -> RetryStrategy:
    stop = tenacity.stop_after_attempt(max_attempts)

    def decide(error: BaseException, attempts_made: int) -> RetryDecision:
        state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = attempts_made
        outcome: tenacity.Future = tenacity.Future(attempts_made)
        outcome.set_exception(error)
        state.outcome = outcome
        if stop(state) or not retry(state):
            return RetryDecision.no_retry()
        return RetryDecision.retry(Duration(max(1, math.ceil(wait(state)))))

    return decide


def create_retry_strategy(config: RetryStrategyConfig | None = None) -> RetryStrategy:
    """Exponential backoff: ``min(initial * rate**(n-1), max)`` seconds before attempt n+1."""
    c = config or RetryStrategyConfig()
    wait = tenacity.wait_exponential(
        multiplier=c.initial_delay.seconds, exp_base=c.backoff_rate, max=c.max_delay.seconds, min=0
    )
    return _strategy(c.max_attempts, _jittered(wait, c.jitter_strategy),
                     _error_filter(c.retryable_errors, c.retryable_error_types))


def create_linear_retry_strategy(config: LinearRetryStrategyConfig | None = None) -> RetryStrategy:
    """Linear backoff: ``min(initial + increment*(n-1), max)`` seconds before attempt n+1."""
    c = config or LinearRetryStrategyConfig()
    wait = tenacity.wait_incrementing(
        start=c.initial_delay.seconds, increment=c.increment.seconds, max=c.max_delay.seconds
    )
    return _strategy(c.max_attempts, _jittered(wait, c.jitter_strategy),
                     _error_filter(c.retryable_errors, c.retryable_error_types))


class RetryPresets:
    """Named strategies, as in the AWS SDK."""

    @staticmethod
    def none() -> RetryStrategy:
        return create_retry_strategy(RetryStrategyConfig(max_attempts=1))

    @staticmethod
    def default() -> RetryStrategy:
        """6 attempts, 5 s doubling to a 60 s cap, full jitter (used when a step sets nothing)."""
        return create_retry_strategy(RetryStrategyConfig(max_attempts=6, max_delay=Duration(60)))

    @staticmethod
    def transient() -> RetryStrategy:
        return create_retry_strategy(RetryStrategyConfig(jitter_strategy=JitterStrategy.HALF))

    @staticmethod
    def resource_availability() -> RetryStrategy:
        return create_retry_strategy(RetryStrategyConfig(max_attempts=5))

    @staticmethod
    def critical() -> RetryStrategy:
        return create_retry_strategy(RetryStrategyConfig(
            max_attempts=10, initial_delay=Duration(1), backoff_rate=1.5, max_delay=Duration(60),
            jitter_strategy=JitterStrategy.NONE))

    @staticmethod
    def linear() -> RetryStrategy:
        return create_linear_retry_strategy(LinearRetryStrategyConfig(jitter_strategy=JitterStrategy.NONE))

    @staticmethod
    def fixed(interval: Duration | None = None) -> RetryStrategy:
        seconds = (interval or Duration(5)).seconds
        return create_linear_retry_strategy(LinearRetryStrategyConfig(
            max_attempts=5, initial_delay=Duration(seconds), increment=Duration(0),
            max_delay=Duration(seconds), jitter_strategy=JitterStrategy.NONE))


@dataclass(frozen=True)
class WithRetryConfig(Generic[T]):
    """How :func:`with_retry` retries.

    ``retry_strategy`` decides after each failure (``create_retry_strategy()`` when None).
    With ``wrap_with_run_in_child_context`` (the default) the attempts run in one child context
    (configured by ``child_context_config``) and a final failure raises ``ChildContextError``;
    without it they run in the caller's context and the last error propagates unchanged.
    """

    retry_strategy: Callable[[Exception, int], RetryDecision] | None = None
    wrap_with_run_in_child_context: bool = True
    child_context_config: ChildConfig[T] | None = None


def with_retry(context: DurableContext | AsyncDurableContext, func: Callable[..., Any],
               config: WithRetryConfig[T], name: str | None = None) -> Any:
    """Run ``func(context, attempt)`` (attempt 1, 2, ...) until it returns or the strategy stops.

    Every attempt's operations are durable: on replay the attempts that failed replay from
    their records (their backoff waits are not waited again) and the run continues where it
    stopped. Without ``name`` the child context is named like ``func`` (as
    ``run_in_child_context(func)``) and the backoff waits have no name. With an
    :class:`AsyncDurableContext`, ``func`` is ``async def`` and the result is awaited.
    """
    if not isinstance(config, WithRetryConfig):
        raise ValidationError(f"with_retry needs a WithRetryConfig, got {type(config).__qualname__}")
    if not callable(func):
        raise ValidationError(f"with_retry needs a function (context, attempt), got {type(func).__qualname__}")
    strategy = config.retry_strategy or create_retry_strategy()

    def backoff(error: Exception, attempt: int) -> RetryDecision:
        decision = strategy(error, attempt)
        if not decision.should_retry:
            raise error
        return decision

    def backoff_name(attempt: int) -> str | None:
        return f"{name}-backoff-{attempt}" if name else None

    from durably.core.context import AsyncDurableContext  # the context's operations import this module

    if isinstance(context, AsyncDurableContext):
        if not inspect.iscoroutinefunction(func):
            raise ValidationError("with_retry on an AsyncDurableContext needs an async def function")

        @functools.wraps(func)  # the context is named (and its result read back) like ``func``
        async def run_async(ctx: AsyncDurableContext) -> Any:
            attempt = 0
            while True:
                attempt += 1
                try:
                    return await func(ctx, attempt)
                except Exception as error:
                    await ctx.wait(backoff(error, attempt).delay, name=backoff_name(attempt))

        if config.wrap_with_run_in_child_context:
            return context.run_in_child_context(run_async, name=name, config=config.child_context_config)
        return run_async(context)

    @functools.wraps(func)
    def run(ctx: DurableContext) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                return func(ctx, attempt)
            except Exception as error:
                ctx.wait(backoff(error, attempt).delay, name=backoff_name(attempt))

    if config.wrap_with_run_in_child_context:
        return context.run_in_child_context(run, name=name, config=config.child_context_config)
    return run(context)
