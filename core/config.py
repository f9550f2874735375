"""Configuration classes, field for field as the AWS durable execution SDK names them.

All are frozen dataclasses; delays are :class:`Duration` objects, never bare numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from durably.core.errors import ValidationError

if TYPE_CHECKING:
    from durably.core.retries import RetryDecision
    from durably.core.serdes import SerDes

T = TypeVar("T")
P = TypeVar("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Duration:
    """A whole number of seconds (fractions are truncated, as in the AWS SDK)."""

    seconds: int = 0

    def __post_init__(self) -> None:
        if self.seconds < 0:
            raise ValidationError(f"Duration cannot be negative: {self.seconds}s")
        if not isinstance(self.seconds, int) or isinstance(self.seconds, bool):
            object.__setattr__(self, "seconds", int(self.seconds))

    @classmethod
    def from_seconds(cls, value: float) -> Duration:
        return cls(int(value))

    @classmethod
    def from_minutes(cls, value: float) -> Duration:
        return cls(int(value * 60))

    @classmethod
    def from_hours(cls, value: float) -> Duration:
        return cls(int(value * 3600))

    @classmethod
    def from_days(cls, value: float) -> Duration:
        return cls(int(value * 86400))

    def to_seconds(self) -> int:
        return self.seconds


class StepSemantics(Enum):
    """What happens when a process dies in the middle of a step attempt."""

    AT_MOST_ONCE_PER_RETRY = "AT_MOST_ONCE_PER_RETRY"
    """START is made durable before the body runs; an interrupted attempt counts as failed."""
    AT_LEAST_ONCE_PER_RETRY = "AT_LEAST_ONCE_PER_RETRY"
    """The body may run again after a crash (the default; one commit per step)."""


class JitterStrategy(Enum):
    NONE = "NONE"
    FULL = "FULL"
    HALF = "HALF"


class NestingType(Enum):
    NESTED = "NESTED"
    FLAT = "FLAT"


RetryStrategy = Callable[[BaseException, int], "RetryDecision"]


@dataclass(frozen=True)
class StepConfig:
    retry_strategy: RetryStrategy | None = None
    step_semantics: StepSemantics = StepSemantics.AT_LEAST_ONCE_PER_RETRY
    serdes: SerDes[Any] | None = None
    sub_type: str | None = None


@dataclass(frozen=True)
class ChildConfig(Generic[T]):
    serdes: SerDes[Any] | None = None
    sub_type: str | None = None
    summary_generator: Callable[[T], str] | None = None
    is_virtual: bool = False


@dataclass(frozen=True)
class CallbackConfig:
    """``timeout`` / ``heartbeat_timeout`` of zero mean none."""

    timeout: Duration = Duration(0)
    heartbeat_timeout: Duration = Duration(0)
    serdes: SerDes[Any] | None = None
    sub_type: str | None = None


@dataclass(frozen=True)
class WaitForCallbackConfig(CallbackConfig):
    retry_strategy: RetryStrategy | None = None


@dataclass(frozen=True)
class InvokeConfig(Generic[P, R]):
    serdes_payload: SerDes[P] | None = None
    serdes_result: SerDes[R] | None = None
    tenant_id: str | None = None


@dataclass(frozen=True)
class CompletionConfig:
    """When a map or parallel is complete. With no field set, the first failure ends it."""

    min_successful: int | None = None
    tolerated_failure_count: int | None = None
    tolerated_failure_percentage: float | None = None

    @classmethod
    def all_successful(cls) -> CompletionConfig:
        return cls(tolerated_failure_count=0, tolerated_failure_percentage=0)

    @classmethod
    def all_completed(cls) -> CompletionConfig:
        return cls(tolerated_failure_percentage=100)

    @classmethod
    def first_successful(cls) -> CompletionConfig:
        return cls(min_successful=1)


@dataclass(frozen=True)
class MapConfig:
    max_concurrency: int | None = None
    completion_config: CompletionConfig = CompletionConfig()
    serdes: SerDes[Any] | None = None
    item_serdes: SerDes[Any] | None = None
    summary_generator: Callable[[Any], str] | None = None
    nesting_type: NestingType = NestingType.NESTED
    item_namer: Callable[[Any, int], str] | None = None


@dataclass(frozen=True)
class ParallelConfig:
    max_concurrency: int | None = None
    completion_config: CompletionConfig = CompletionConfig.all_successful()
    serdes: SerDes[Any] | None = None
    item_serdes: SerDes[Any] | None = None
    summary_generator: Callable[[Any], str] | None = None
    nesting_type: NestingType = NestingType.NESTED
