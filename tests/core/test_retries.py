"""Retry strategies: presets, configs, jitter bounds, caps, error filters, and checkpointed retries."""

from __future__ import annotations

import dataclasses
import math
import random
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from durably import (
    DurableContext,
    Duration,
    JitterStrategy,
    LinearRetryStrategyConfig,
    RetryDecision,
    RetryPresets,
    RetryStrategyConfig,
    StepConfig,
    StepContext,
    StepError,
    create_linear_retry_strategy,
    create_retry_strategy,
    durable_execution,
)
from durably.core.config import RetryStrategy

from .conftest import MakeRunner

ERROR = RuntimeError("boom")


@pytest.fixture(autouse=True)
def seeded_random() -> Iterator[None]:
    """Jitter draws from ``random``: seed it so the bounds checks are reproducible."""
    state = random.getstate()
    random.seed(20240601)
    yield
    random.setstate(state)


def delays(strategy: RetryStrategy, attempts: range, error: BaseException = ERROR) -> list[int]:
    out = []
    for n in attempts:
        decision = strategy(error, n)
        assert decision.should_retry, f"attempt {n} should be retried"
        out.append(decision.delay.seconds)
    return out


def samples(config: RetryStrategyConfig, attempt: int, count: int = 300) -> list[int]:
    strategy = create_retry_strategy(config)
    return [strategy(ERROR, attempt).delay.seconds for _ in range(count)]


# ---------------------------------------------------------------------------- configs and presets
def test_retry_strategy_config_defaults_follow_the_aws_sdk() -> None:
    config = RetryStrategyConfig()
    assert (config.max_attempts, config.initial_delay, config.max_delay, config.backoff_rate,
            config.jitter_strategy, config.retryable_errors, config.retryable_error_types) == (
        3, Duration(5), Duration(300), 2.0, JitterStrategy.FULL, None, None)
    linear = LinearRetryStrategyConfig()
    assert (linear.max_attempts, linear.initial_delay, linear.increment, linear.max_delay,
            linear.jitter_strategy) == (6, Duration(1), Duration(1), Duration(300), JitterStrategy.FULL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.max_attempts = 9  # type: ignore[misc]


def test_retry_decision_helpers() -> None:
    assert RetryDecision.retry(Duration(7)) == RetryDecision(True, Duration(7))
    assert RetryDecision.no_retry() == RetryDecision(False, Duration(0))


def test_exponential_backoff_without_jitter_is_exact_and_capped() -> None:
    strategy = create_retry_strategy(RetryStrategyConfig(
        max_attempts=7, initial_delay=Duration(2), backoff_rate=3, max_delay=Duration(50),
        jitter_strategy=JitterStrategy.NONE))
    assert delays(strategy, range(1, 7)) == [2, 6, 18, 50, 50, 50]
    assert strategy(ERROR, 7) == RetryDecision.no_retry()


def test_fractional_delays_round_up_and_are_at_least_one_second() -> None:
    strategy = create_retry_strategy(RetryStrategyConfig(
        max_attempts=5, initial_delay=Duration(1), backoff_rate=1.5, jitter_strategy=JitterStrategy.NONE))
    assert delays(strategy, range(1, 5)) == [1, 2, 3, 4]  # 1, 1.5, 2.25, 3.375 rounded up
    zero = create_retry_strategy(RetryStrategyConfig(initial_delay=Duration(0), jitter_strategy=JitterStrategy.NONE))
    assert zero(ERROR, 1) == RetryDecision.retry(Duration(1))


def test_max_attempts_counts_every_attempt_including_the_first() -> None:
    strategy = create_retry_strategy(RetryStrategyConfig(max_attempts=3, jitter_strategy=JitterStrategy.NONE))
    assert [strategy(ERROR, n).should_retry for n in (1, 2, 3, 4)] == [True, True, False, False]
    once = create_retry_strategy(RetryStrategyConfig(max_attempts=1))
    assert once(ERROR, 1) == RetryDecision.no_retry()


def test_full_jitter_is_uniform_between_one_second_and_the_delay() -> None:
    # attempt 3 of 4 s doubling: d = 16 s
    drawn = samples(RetryStrategyConfig(max_attempts=9, initial_delay=Duration(4)), attempt=3)
    assert all(1 <= d <= 16 for d in drawn)
    assert min(drawn) <= 4 and max(drawn) >= 13  # spread over the whole range, not pinned to d


def test_half_jitter_stays_between_half_the_delay_and_the_delay() -> None:
    drawn = samples(RetryStrategyConfig(max_attempts=9, initial_delay=Duration(4),
                                        jitter_strategy=JitterStrategy.HALF), attempt=4)  # d = 32 s
    assert all(16 <= d <= 32 for d in drawn)
    assert min(drawn) <= 19 and max(drawn) >= 29


def test_no_jitter_is_deterministic() -> None:
    drawn = samples(RetryStrategyConfig(max_attempts=9, initial_delay=Duration(4),
                                        jitter_strategy=JitterStrategy.NONE), attempt=4, count=20)
    assert set(drawn) == {32}


@pytest.mark.parametrize("jitter", list(JitterStrategy))
def test_max_delay_caps_the_delay_before_jitter(jitter: JitterStrategy) -> None:
    drawn = samples(RetryStrategyConfig(max_attempts=9, initial_delay=Duration(100), max_delay=Duration(10),
                                        jitter_strategy=jitter), attempt=3)
    assert all(1 <= d <= 10 for d in drawn)
    if jitter is JitterStrategy.NONE:
        assert set(drawn) == {10}
    if jitter is JitterStrategy.HALF:
        assert min(drawn) >= 5


@pytest.mark.parametrize(("strategy", "max_attempts", "expected"), [
    (RetryPresets.critical(), 10, [math.ceil(1.5 ** (n - 1)) for n in range(1, 10)]),
    (RetryPresets.linear(), 6, [1, 2, 3, 4, 5]),
    (RetryPresets.fixed(), 5, [5, 5, 5, 5]),
    (RetryPresets.fixed(Duration(7)), 5, [7, 7, 7, 7]),
], ids=["critical", "linear", "fixed-default", "fixed-7s"])
def test_presets_without_jitter(strategy: RetryStrategy, max_attempts: int, expected: list[int]) -> None:
    assert delays(strategy, range(1, max_attempts)) == expected
    assert strategy(ERROR, max_attempts) == RetryDecision.no_retry()


@pytest.mark.parametrize(("strategy", "max_attempts", "low", "cap"), [
    (RetryPresets.default(), 6, lambda d: 1.0, 60),
    (RetryPresets.resource_availability(), 5, lambda d: 1.0, 300),
    (RetryPresets.transient(), 3, lambda d: d / 2, 300),
], ids=["default", "resource_availability", "transient"])
def test_presets_with_jitter(strategy: RetryStrategy, max_attempts: int,
                               low: Callable[[float], float], cap: int) -> None:
    for n in range(1, max_attempts):
        d = min(5 * 2 ** (n - 1), cap)
        for _ in range(50):
            decision = strategy(ERROR, n)
            assert decision.should_retry
            assert low(d) <= decision.delay.seconds <= d
    assert strategy(ERROR, max_attempts) == RetryDecision.no_retry()


def test_none_preset_never_retries() -> None:
    assert RetryPresets.none()(ERROR, 1) == RetryDecision.no_retry()


def test_linear_strategy_config() -> None:
    strategy = create_linear_retry_strategy(LinearRetryStrategyConfig(
        max_attempts=6, initial_delay=Duration(2), increment=Duration(3), max_delay=Duration(10),
        jitter_strategy=JitterStrategy.NONE))
    assert delays(strategy, range(1, 6)) == [2, 5, 8, 10, 10]
    assert not strategy(ERROR, 6).should_retry


# ---------------------------------------------------------------------------- error filters
def _filtered(**kwargs: Any) -> RetryStrategy:
    return create_retry_strategy(RetryStrategyConfig(jitter_strategy=JitterStrategy.NONE, **kwargs))


def test_retryable_error_types_match_subclasses_only() -> None:
    strategy = _filtered(retryable_error_types=[OSError])
    assert strategy(ConnectionResetError("reset"), 1).should_retry
    assert strategy(OSError("disk"), 1).should_retry
    assert not strategy(ValueError("bad"), 1).should_retry


def test_retryable_error_strings_are_literal_substrings() -> None:
    strategy = _filtered(retryable_errors=["rate (limited)"])
    assert strategy(RuntimeError("we are rate (limited) now"), 1).should_retry
    assert not strategy(RuntimeError("rate limited"), 1).should_retry  # not read as a regex


def test_retryable_error_patterns_are_searched_in_the_message() -> None:
    strategy = _filtered(retryable_errors=[re.compile(r"HTTP 5\d\d")])
    assert strategy(RuntimeError("upstream said HTTP 503"), 1).should_retry
    assert not strategy(RuntimeError("upstream said HTTP 404"), 1).should_retry


def test_retryable_error_pattern_flags_are_honoured() -> None:
    strategy = _filtered(retryable_errors=[re.compile("timeout", re.IGNORECASE)])
    assert strategy(RuntimeError("Gateway TIMEOUT"), 1).should_retry


def test_types_and_patterns_together_retry_when_either_matches() -> None:
    strategy = _filtered(retryable_error_types=[TimeoutError], retryable_errors=["flaky"])
    assert strategy(TimeoutError("slow"), 1).should_retry
    assert strategy(ValueError("a flaky thing"), 1).should_retry
    assert not strategy(ValueError("solid failure"), 1).should_retry


def test_a_filter_does_not_lift_the_attempt_limit() -> None:
    strategy = _filtered(max_attempts=2, retryable_error_types=[TimeoutError])
    assert strategy(TimeoutError(), 1).should_retry
    assert not strategy(TimeoutError(), 2).should_retry


def test_empty_filters_retry_nothing() -> None:
    assert not _filtered(retryable_errors=[])(RuntimeError("x"), 1).should_retry
    assert not _filtered(retryable_error_types=[])(RuntimeError("x"), 1).should_retry


# ---------------------------------------------------------------------------- retries in an execution
def test_each_failed_attempt_is_checkpointed_with_its_retry_details(make_runner: MakeRunner) -> None:
    attempts: list[int] = []

    def flaky(step_ctx: StepContext) -> str:
        attempts.append(step_ctx.attempt)
        if step_ctx.attempt < 3:
            raise ConnectionError(f"down on attempt {step_ctx.attempt}")
        return "up"

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.step(flaky, name="call", config=StepConfig(retry_strategy=create_retry_strategy(
            RetryStrategyConfig(max_attempts=5, initial_delay=Duration(10), backoff_rate=3,
                                jitter_strategy=JitterStrategy.NONE))))

    started = time.monotonic()
    result = make_runner(handler).run(None)
    assert time.monotonic() - started < 5  # 40 s of retry delays were skipped
    assert result.value == "up"
    assert attempts == [1, 2, 3]
    failed = result.events("StepFailed", name="call")
    assert [e["StepFailedDetails"]["RetryDetails"] for e in failed] == [
        {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 10},
        {"CurrentAttempt": 2, "NextAttemptDelaySeconds": 30},
    ]
    errors = [e["StepFailedDetails"]["Error"]["Payload"] for e in failed]
    assert [(e["ErrorMessage"], e["ErrorType"]) for e in errors] == [
        ("down on attempt 1", "ConnectionError"), ("down on attempt 2", "ConnectionError")]
    assert all("in flaky" in e["StackTrace"][-1] for e in errors)
    succeeded = result.events("StepSucceeded", name="call")
    assert [e["StepSucceededDetails"]["RetryDetails"] for e in succeeded] == [{"CurrentAttempt": 3}]
    assert len(result.events("StepStarted", name="call")) == 3
    assert len(result.events("InvocationCompleted")) == 3  # every retry is a new invocation
    step = result.get_step("call")
    assert step.StepDetails is not None and step.StepDetails.Attempt == 3
    assert step.StartTimestamp is not None and step.EndTimestamp is not None
    assert step.EndTimestamp - step.StartTimestamp >= 40_000


def test_a_pending_retry_records_when_the_next_attempt_is_due(make_runner: MakeRunner) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        def fails(_: StepContext) -> None:
            raise TimeoutError("slow upstream")
        return ctx.step(fails, name="slow", config=StepConfig(retry_strategy=RetryPresets.fixed(Duration(42))))

    runner = make_runner(handler)
    arn = runner.run_async(None)
    assert runner.engine.run_until_suspended(arn)["Status"] == "RUNNING"
    result = runner.result(arn)
    step = result.get_step("slow")
    assert step.Status == "PENDING"
    assert step.StepDetails is not None and step.StepDetails.Attempt == 1
    assert step.StepDetails.Error is not None and step.StepDetails.Error.ErrorMessage == "slow upstream"
    (failed,) = result.events("StepFailed", name="slow")
    assert step.StepDetails.NextAttemptTimestamp == failed["EventTimestamp"] + 42_000


def test_exhausted_retries_raise_the_last_error(make_runner: MakeRunner) -> None:
    attempts: list[int] = []

    def always(step_ctx: StepContext) -> None:
        attempts.append(step_ctx.attempt)
        raise ValueError(f"failure {step_ctx.attempt}")

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            ctx.step(always, name="always", config=StepConfig(retry_strategy=RetryPresets.fixed(Duration(1))))
        except StepError as exc:
            return [exc.error_type, exc.message]
        return None

    result = make_runner(handler).run(None)
    assert attempts == [1, 2, 3, 4, 5]
    assert result.value == ["ValueError", "failure 5"]
    details = [e["StepFailedDetails"]["RetryDetails"] for e in result.events("StepFailed", name="always")]
    assert details[:-1] == [{"CurrentAttempt": n, "NextAttemptDelaySeconds": 1} for n in range(1, 5)]
    assert details[-1] == {"CurrentAttempt": 5}
    assert result.get_step("always").Status == "FAILED"


def test_without_a_strategy_a_step_makes_six_attempts_with_capped_backoff(make_runner: MakeRunner) -> None:
    attempts: list[int] = []

    def always(step_ctx: StepContext) -> None:
        attempts.append(step_ctx.attempt)
        raise RuntimeError("still broken")

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.step(always, name="default-retry")

    result = make_runner(handler).run(None)
    assert result.status == "FAILED"
    assert attempts == [1, 2, 3, 4, 5, 6]
    retry = [e["StepFailedDetails"]["RetryDetails"] for e in result.events("StepFailed", name="default-retry")]
    for n, details in enumerate(retry[:-1], start=1):
        assert details["CurrentAttempt"] == n
        assert 1 <= details["NextAttemptDelaySeconds"] <= min(5 * 2 ** (n - 1), 60)
    assert retry[-1] == {"CurrentAttempt": 6}


def test_an_error_outside_the_retryable_types_fails_at_once(make_runner: MakeRunner) -> None:
    attempts: list[int] = []

    def wrong_input(step_ctx: StepContext) -> None:
        attempts.append(step_ctx.attempt)
        raise ValueError("bad input")

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.step(wrong_input, name="validate", config=StepConfig(retry_strategy=create_retry_strategy(
            RetryStrategyConfig(max_attempts=5, retryable_error_types=[ConnectionError]))))

    result = make_runner(handler).run(None)
    assert result.status == "FAILED"
    assert attempts == [1]
    (failed,) = result.events("StepFailed", name="validate")
    assert failed["StepFailedDetails"]["RetryDetails"] == {"CurrentAttempt": 1}


def test_a_custom_strategy_sees_each_error_and_the_attempts_made(make_runner: MakeRunner) -> None:
    asked: list[tuple[str, int]] = []

    def strategy(error: BaseException, attempts_made: int) -> RetryDecision:
        asked.append((str(error), attempts_made))
        return RetryDecision.retry(Duration(attempts_made * 7)) if attempts_made < 3 else RetryDecision.no_retry()

    def always(step_ctx: StepContext) -> None:
        raise KeyError(f"k{step_ctx.attempt}")

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.step(always, name="custom", config=StepConfig(retry_strategy=strategy))

    result = make_runner(handler).run(None)
    assert asked == [("'k1'", 1), ("'k2'", 2), ("'k3'", 3)]
    delays_recorded = [e["StepFailedDetails"]["RetryDetails"].get("NextAttemptDelaySeconds")
                       for e in result.events("StepFailed", name="custom")]
    assert delays_recorded == [7, 14, None]
