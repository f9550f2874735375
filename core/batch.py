"""``BatchResult``: the outcome of a map or parallel, item by item in input order.

The map/parallel operation itself succeeds even when items failed; call
:meth:`BatchResult.throw_if_error` to turn a failed item into an exception. Every started item
is in the result: one that had not finished when the batch completed is STARTED; items never
started (the batch completed before their turn) are left out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

from durably.core.config import CompletionConfig
from durably.core.errors import BatchCompletionError, ChildContextError, error_type_name
from durably.core.model import ErrorObject

T = TypeVar("T")


class BatchItemStatus(Enum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STARTED = "STARTED"


class CompletionReason(Enum):
    ALL_COMPLETED = "ALL_COMPLETED"
    MIN_SUCCESSFUL_REACHED = "MIN_SUCCESSFUL_REACHED"
    FAILURE_TOLERANCE_EXCEEDED = "FAILURE_TOLERANCE_EXCEEDED"
    CUSTOM_COMPLETION_SUCCEEDED = "CUSTOM_COMPLETION_SUCCEEDED"
    CUSTOM_COMPLETION_FAILED = "CUSTOM_COMPLETION_FAILED"


class CompletionPolicy:
    """The completion rules of a CompletionConfig over ``total`` items."""

    def __init__(self, config: CompletionConfig, total: int) -> None:
        self.config = config
        self.total = total

    def tolerance_exceeded(self, failures: int) -> bool:
        c = self.config
        if c.min_successful is None and c.tolerated_failure_count is None and c.tolerated_failure_percentage is None:
            return failures > 0
        if c.tolerated_failure_count is not None and failures > c.tolerated_failure_count:
            return True
        return (c.tolerated_failure_percentage is not None and self.total > 0
                and 100 * failures / self.total > c.tolerated_failure_percentage)

    def reason_for(self, successes: int, failures: int) -> CompletionReason | None:
        """Why a batch with these counts is complete; None while it is not."""
        if self.tolerance_exceeded(failures):
            return CompletionReason.FAILURE_TOLERANCE_EXCEEDED
        if successes + failures >= self.total:
            return CompletionReason.ALL_COMPLETED
        if self.config.min_successful is not None and successes >= self.config.min_successful:
            return CompletionReason.MIN_SUCCESSFUL_REACHED
        return None


@dataclass(frozen=True)
class BatchItem(Generic[T]):
    """One item of a batch; ``error`` is the failure that escaped the item (its original type)."""

    index: int
    status: BatchItemStatus
    result: T | None = None
    error: ErrorObject | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "status": self.status.value, "result": self.result,
                "error": self.error.to_dict() if self.error else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchItem[Any]:
        return cls(index=data["index"], status=BatchItemStatus(data["status"]), result=data.get("result"),
                   error=ErrorObject.from_dict(data["error"]) if data.get("error") else None)


@dataclass(frozen=True)
class BatchResult(Generic[T]):
    all: list[BatchItem[T]]
    completion_reason: CompletionReason

    @classmethod
    def from_dict(cls, data: dict[str, Any], completion_config: CompletionConfig | None = None) -> BatchResult[Any]:
        """The result :meth:`to_dict` wrote; without a ``completionReason``, it is inferred from the items."""
        items: list[BatchItem[Any]] = [BatchItem.from_dict(item) for item in data["all"]]
        reason = data.get("completionReason")
        if reason is None:
            return cls.from_items(items, completion_config)
        return cls(items, CompletionReason(reason))

    @classmethod
    def from_items(cls, items: list[BatchItem[T]], completion_config: CompletionConfig | None = None) -> BatchResult[T]:
        """A result of ``items`` whose completion reason is inferred from their statuses (over ``len(items)``)."""
        counts = Counter(item.status for item in items)
        policy = CompletionPolicy(completion_config or CompletionConfig(), len(items))
        reason = policy.reason_for(counts[BatchItemStatus.SUCCEEDED], counts[BatchItemStatus.FAILED])
        return cls(items, reason or CompletionReason.ALL_COMPLETED)

    def to_dict(self) -> dict[str, Any]:
        return {"all": [item.to_dict() for item in self.all], "completionReason": self.completion_reason.value}

    def succeeded(self) -> list[BatchItem[T]]:
        return self._with(BatchItemStatus.SUCCEEDED)

    def failed(self) -> list[BatchItem[T]]:
        return self._with(BatchItemStatus.FAILED)

    def started(self) -> list[BatchItem[T]]:
        """The items that had started but not finished when the batch completed."""
        return self._with(BatchItemStatus.STARTED)

    def _with(self, status: BatchItemStatus) -> list[BatchItem[T]]:
        return [item for item in self.all if item.status is status]

    def get_results(self) -> list[T]:
        """Results of the successful items, in input order (None is a result too)."""
        return [item.result for item in self.succeeded()]  # type: ignore[misc]

    def get_errors(self) -> list[ErrorObject | None]:
        """The error of each failed item, in input order (None where an item has none)."""
        return [item.error for item in self.failed()]

    @property
    def status(self) -> BatchItemStatus:
        if self.completion_reason is CompletionReason.CUSTOM_COMPLETION_FAILED:
            return BatchItemStatus.FAILED
        if self.completion_reason is CompletionReason.CUSTOM_COMPLETION_SUCCEEDED:
            return BatchItemStatus.SUCCEEDED
        return BatchItemStatus.FAILED if self.has_failure else BatchItemStatus.SUCCEEDED

    @property
    def has_failure(self) -> bool:
        return any(item.status is BatchItemStatus.FAILED for item in self.all)

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
        """Raise :class:`ChildContextError` for the first failed item (caused by its recorded error),
        or :class:`BatchCompletionError` when a custom completion reported failure."""
        first = next(iter(self.failed()), None)
        if first is not None:
            if first.error is None:
                raise ChildContextError(f"Batch item {first.index} failed without an ErrorObject.",
                                        error_type_name(ChildContextError))
            raise first.error.to_error(ChildContextError)
        if self.completion_reason is CompletionReason.CUSTOM_COMPLETION_FAILED:
            raise BatchCompletionError(f"Batch completed as failed by should_complete ({self.completion_reason.value})",
                                       error_type_name(BatchCompletionError))


__all__ = ["BatchItem", "BatchItemStatus", "BatchResult", "CompletionReason"]
