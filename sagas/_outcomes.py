"""How a saga ends when it does not complete: typed errors that keep the original failure.

Each carries, in ``data`` (JSON, so it survives in the history and reads the same on replay),
the saga's name, the original error, and what was compensated; the attributes give the same
as Python values. Raised out of the saga block, each ends the execution FAILED with an
``ErrorType`` that names the outcome, unless the handler catches it.
"""

from __future__ import annotations

import json
from typing import Any

from durably.core import DurableOperationError, ErrorObject


class SagaError(DurableOperationError):
    """Base of the outcomes of a saga that did not complete."""

    outcome = "failed"

    def __init__(self, message: str | None = None, error_type: str | None = None, data: str | None = None,
                 stack_trace: list[str] | None = None) -> None:
        super().__init__(message, error_type, data, stack_trace)
        self.details: dict[str, Any] = json.loads(data) if data else {}

    @classmethod
    def build(cls, saga: str, summary: str, original: ErrorObject, **details: Any) -> SagaError:
        data = {"outcome": cls.outcome, "saga": saga, "error": original.to_wire(), **details}
        return cls(f"saga {saga!r} {summary}", original.ErrorType, json.dumps(data))

    @property
    def saga(self) -> str:
        return str(self.details.get("saga", ""))

    @property
    def original(self) -> ErrorObject:
        """The error that made the saga fail (never lost)."""
        return ErrorObject.model_validate(self.details.get("error") or {})

    @property
    def compensated(self) -> list[dict[str, Any]]:
        """Each compensation that ran to its end: ``{"step", "attempts", "resolution"}``, in the order run."""
        return list(self.details.get("compensated", []))


class SagaRolledBack(SagaError):
    """A step failed before the pivot and every completed step was compensated."""

    outcome = "rolled_back"


class SagaForwardRecoveryFailed(SagaError):
    """A step failed after the pivot (no rollback any more) and its forward retries ran out."""

    outcome = "forward_recovery_failed"


class SagaCompensationFailed(SagaError):
    """A compensation ran out of retries (and its escalation, if any, was aborted or timed out).

    ``failed`` names it; ``not_compensated`` lists the steps whose compensation never ran.
    """

    outcome = "compensation_failed"

    @property
    def failed(self) -> str:
        return str(self.details.get("failed", ""))

    @property
    def not_compensated(self) -> list[str]:
        return list(self.details.get("not_compensated", []))


for _cls in (SagaError, SagaRolledBack, SagaForwardRecoveryFailed, SagaCompensationFailed):
    _cls.__module__ = "durably.sagas"  # the ErrorType recorded in history: durably.sagas.SagaRolledBack
