"""``BatchResult``: the outcome of a map or parallel, item by item in input order.

The map/parallel operation itself succeeds even when items failed; call
:meth:`BatchResult.throw_if_error` to turn a failed item into an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from durably.core.errors import ChildContextError
from durably.core.model import ErrorObject

T = TypeVar("T")


class BatchItemStatus(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STARTED = "STARTED"


class CompletionReason(StrEnum):
    ALL_COMPLETED = "ALL_COMPLETED"
    MIN_SUCCESSFUL_REACHED = "MIN_SUCCESSFUL_REACHED"
    FAILURE_TOLERANCE_EXCEEDED = "FAILURE_TOLERANCE_EXCEEDED"


@dataclass(frozen=True)
class BatchItem(Generic[T]):
    index: int
    status: BatchItemStatus
    result: T | None = None
    error: ErrorObject | None = None

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "status": self.status.value, "result": self.result,
                "error": self.error.to_wire() if self.error else None}


@dataclass(frozen=True)
class BatchResult(Generic[T]):
    all: list[BatchItem[T]] = field(default_factory=list)
    completion_reason: CompletionReason = CompletionReason.ALL_COMPLETED

    def succeeded(self) -> list[BatchItem[T]]:
        return [i for i in self.all if i.status is BatchItemStatus.SUCCEEDED]

    def failed(self) -> list[BatchItem[T]]:
        return [i for i in self.all if i.status is BatchItemStatus.FAILED]

    def started(self) -> list[BatchItem[T]]:
        return [i for i in self.all if i.status is BatchItemStatus.STARTED]

    def get_results(self) -> list[T]:
        """Results of the successful items, in input order."""
        return [i.result for i in self.succeeded()]  # type: ignore[misc]

    def get_errors(self) -> list[ErrorObject]:
        return [i.error or ErrorObject() for i in self.failed()]

    @property
    def status(self) -> BatchItemStatus:
        return BatchItemStatus.FAILED if self.has_failure else BatchItemStatus.SUCCEEDED

    @property
    def has_failure(self) -> bool:
        return any(i.status is BatchItemStatus.FAILED for i in self.all)

    @property
    def success_count(self) -> int:
        return len(self.succeeded())

    @property
    def failure_count(self) -> int:
        return len(self.failed())

    @property
    def started_count(self) -> int:
        return len(self.started())

    @property
    def total_count(self) -> int:
        return len(self.all)

    def throw_if_error(self) -> None:
        """Raise :class:`ChildContextError` for the first failed item, if any."""
        for item in self.failed():
            e = item.error or ErrorObject()
            raise ChildContextError(e.ErrorMessage, e.ErrorType, e.ErrorData, e.StackTrace)

    def to_json(self) -> dict[str, Any]:
        return {"all": [i.to_json() for i in self.all], "completionReason": self.completion_reason.value}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchResult[Any]:
        return cls(
            all=[BatchItem(index=i["index"], status=BatchItemStatus(i["status"]), result=i.get("result"),
                           error=ErrorObject.model_validate(i["error"]) if i.get("error") else None)
                 for i in data.get("all", [])],
            completion_reason=CompletionReason(data.get("completionReason", "ALL_COMPLETED")),
        )


__all__ = ["BatchItem", "BatchItemStatus", "BatchResult", "CompletionReason"]
