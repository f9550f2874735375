"""Frozen configuration of a saga: how compensations retry, which errors roll back, escalation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from durably.core import Duration, JitterStrategy, RetryDecision, RetryStrategyConfig, create_retry_strategy

RetryStrategy = Callable[[BaseException, int], RetryDecision]


def patient_retry() -> RetryStrategy:
    """Compensations must eventually succeed: 20 attempts, 2 s doubling to a 10 min cap (about two hours in all)."""
    return create_retry_strategy(RetryStrategyConfig(
        max_attempts=20, initial_delay=Duration(2), backoff_rate=2.0, max_delay=Duration.from_minutes(10),
        jitter_strategy=JitterStrategy.HALF))


@dataclass(frozen=True)
class EscalationRequest:
    """What a person is asked when a compensation keeps failing."""

    saga: str
    step: str
    error: dict[str, Any]
    """The compensation's last error (ErrorType, ErrorMessage, ...)."""
    round: int
    """1 for the first escalation of this compensation, 2 after a *retry* answer that failed again, ..."""
    note: str | None = None
    """Why it is asked again (an answer that could not be understood)."""


@dataclass(frozen=True)
class Escalation:
    """Ask a person through a durable callback when a compensation runs out of retries.

    The answer is JSON: ``{"decision": "retry"}`` runs the compensation again, ``{"decision":
    "resolved", "note": "refunded by hand"}`` counts it as done, ``{"decision": "abort"}`` ends the
    saga as compensation-failed. ``notify(callback_id, request)`` tells the person (it runs once,
    as a step; the default logs a warning with the commands that answer). No answer within
    ``timeout`` ends the saga as compensation-failed.
    """

    timeout: Duration = field(default_factory=lambda: Duration.from_days(7))
    notify: Callable[[str, EscalationRequest], None] | None = None


@dataclass(frozen=True)
class SagaConfig:
    """How a saga behaves when something fails.

    ``compensation_retry``: the retry strategy of every compensation (far longer than a forward
    step's default). ``propagate``: error types that leave the saga without rolling back (the
    handler deals with them). ``retry_forward``: error types for which a forward step is retried
    under ``forward_retry`` instead of its own strategy, so they end in a rollback only once those
    retries run out (a dependency that is down for a while). ``escalation``: ask a person when a
    compensation keeps failing; None ends the saga as compensation-failed at once.
    """

    compensation_retry: RetryStrategy = field(default_factory=patient_retry)
    propagate: tuple[type[BaseException], ...] = ()
    retry_forward: tuple[type[BaseException], ...] = ()
    forward_retry: RetryStrategy = field(default_factory=patient_retry)
    escalation: Escalation | None = None
