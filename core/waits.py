"""Wait strategies for ``wait_for_condition``, as in the AWS SDK.

A strategy is ``(state, attempt) -> WaitForConditionDecision``: stop polling, or poll again after
a delay. :func:`create_wait_strategy` polls while ``should_continue_polling(state)`` holds, with
exponential backoff, and gives up after ``max_attempts``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from durably.core.config import Duration, JitterStrategy
from durably.core.errors import WaitForConditionError
from durably.core.retries import jittered_backoff
from durably.core.serdes import SerDes

T = TypeVar("T")


@dataclass(frozen=True)
class WaitForConditionDecision:
    should_continue: bool
    delay: Duration = Duration(0)

    @classmethod
    def continue_waiting(cls, delay: Duration) -> WaitForConditionDecision:
        return cls(True, delay)

    @classmethod
    def stop_polling(cls) -> WaitForConditionDecision:
        return cls(False)


WaitStrategy = Callable[[Any, int], WaitForConditionDecision]


@dataclass(frozen=True)
class WaitStrategyConfig(Generic[T]):
    should_continue_polling: Callable[[T], bool]
    max_attempts: int = 60
    initial_delay: Duration = Duration(5)
    max_delay: Duration = Duration(300)
    backoff_rate: float = 1.5
    jitter_strategy: JitterStrategy = JitterStrategy.FULL


@dataclass(frozen=True)
class WaitForConditionConfig(Generic[T]):
    wait_strategy: WaitStrategy
    initial_state: T
    serdes: SerDes[Any] | None = None


def create_wait_strategy(config: WaitStrategyConfig[T]) -> WaitStrategy:
    def decide(state: T, attempt: int) -> WaitForConditionDecision:
        if not config.should_continue_polling(state):
            return WaitForConditionDecision.stop_polling()
        if attempt >= config.max_attempts:
            raise WaitForConditionError(
                f"the condition was still not met after {attempt} attempts (max_attempts={config.max_attempts})")
        return WaitForConditionDecision.continue_waiting(jittered_backoff(
            config.initial_delay, config.backoff_rate, config.max_delay, config.jitter_strategy, attempt))
    return decide
