"""What map and parallel share: a CONTEXT whose branches run concurrently, and a BatchResult.

Replay: a completed batch returns its stored BatchResult without running any branch. A batch
whose result was too large to store (ReplayChildren) runs again, but only the branches that had
finished; each returns its own stored result, so nothing runs twice and nothing new is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from durably.core.batch import BatchItem, BatchItemStatus, BatchResult, CompletionReason
from durably.core.concurrency import Concurrently, Outcome
from durably.core.config import CompletionConfig, NestingType
from durably.core.context_core import ContextCore, OpGen, UserCall
from durably.core.errors import (
    ChildContextError,
    SuspendExecution,
    TimedSuspendExecution,
    ValidationError,
)
from durably.core.identity import operation_id
from durably.core.limits import REPLAY_CHILDREN_THRESHOLD, utf8_size
from durably.core.model import ErrorObject, OperationType
from durably.core.operation import child
from durably.core.serdes import SerDes, SerDesContext, dumps

CONTEXT = OperationType.CONTEXT


@dataclass(frozen=True)
class Branch:
    name: str | None
    func: Callable[..., Any]
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class BatchSpec:
    kind: str
    """"Map" or "Parallel": the SubType of the batch; items get "MapIteration" / "ParallelBranch"."""
    item_sub_type: str
    max_concurrency: int | None
    completion: CompletionConfig
    serdes: SerDes[Any] | None
    item_serdes: SerDes[Any] | None
    summary_generator: Callable[[Any], str] | None
    nesting: NestingType


def validate(spec: BatchSpec, count: int) -> None:
    """Refuse a bad configuration before anything is checkpointed."""
    c = spec.completion
    if spec.max_concurrency is not None and spec.max_concurrency < 1:
        raise ValidationError(f"max_concurrency must be at least 1, not {spec.max_concurrency}")
    if c.min_successful is not None and not 1 <= c.min_successful <= max(count, 1):
        raise ValidationError(f"min_successful must be between 1 and {count}, not {c.min_successful}")
    if c.tolerated_failure_count is not None and c.tolerated_failure_count < 0:
        raise ValidationError("tolerated_failure_count cannot be negative")
    if c.tolerated_failure_percentage is not None and not 0 <= c.tolerated_failure_percentage <= 100:
        raise ValidationError("tolerated_failure_percentage must be between 0 and 100")


class Policy:
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

    def reason(self, outcomes: Sequence[Outcome | None]) -> CompletionReason | None:
        successes = sum(1 for o in outcomes if o is not None and o.status == "SUCCEEDED")
        failures = sum(1 for o in outcomes if o is not None and o.status == "FAILED")
        return self.reason_for(successes, failures)

    def reason_for(self, successes: int, failures: int) -> CompletionReason | None:
        if self.tolerance_exceeded(failures):
            return CompletionReason.FAILURE_TOLERANCE_EXCEEDED
        if successes + failures == self.total:
            return CompletionReason.ALL_COMPLETED
        if self.config.min_successful is not None and successes >= self.config.min_successful:
            return CompletionReason.MIN_SUCCESSFUL_REACHED
        return None


def run_batch(core: ContextCore, spec: BatchSpec, branches: Sequence[Branch], name: str | None) -> OpGen:
    validate(spec, len(branches))
    op_id = core.next_id()
    op = core.existing(op_id, CONTEXT, spec.kind, name)
    sctx = SerDesContext(op_id, core.arn)
    only: set[int] | None = None
    stored: dict[str, Any] = {}
    if op is not None:
        details = op.ContextDetails
        if op.Status == "SUCCEEDED" and not (details and details.ReplayChildren):
            return _decode(spec, details.Result if details else None, sctx)
        if op.Status == "FAILED":
            error = (details.Error if details else None) or ErrorObject()
            raise ChildContextError(error.ErrorMessage, error.ErrorType, error.ErrorData, error.StackTrace)
        if op.Status == "SUCCEEDED":
            stored = json.loads((details.Result if details else None) or "{}") if _is_envelope(details) else {}
            only = set(stored.get("completedIndexes", []))
    else:
        core.replaying = False
        core.state.queue(core.update(op_id, CONTEXT, "START", spec.kind, name))

    batch_core = core.child(op_id)
    request = Concurrently([], spec.max_concurrency, lambda _s, _f: False)
    batch_core.orphaned = request.orphaned
    indexes = [i for i in range(len(branches)) if only is None or i in only]
    request.branches = [_branch_factory(batch_core, spec, op_id, i, branches[i]) for i in indexes]
    policy = Policy(spec.completion, len(indexes))
    request.complete = lambda successes, failures: policy.reason_for(successes, failures) is not None
    outcomes = yield request

    reason = policy.reason(outcomes)
    if reason is None:
        raise _suspension(outcomes)
    result = _batch_result(indexes, outcomes, reason)
    if only is not None:
        return BatchResult(result.all, CompletionReason(stored.get("completionReason") or reason))
    payload = spec.serdes.serialize(result, sctx) if spec.serdes else dumps(result.to_json())
    if payload is not None and utf8_size(payload) > REPLAY_CHILDREN_THRESHOLD:
        envelope = _envelope(spec, result, len(branches))
        core.state.write(core.update(op_id, CONTEXT, "SUCCEED", spec.kind, name, Payload=dumps(envelope),
                                     ContextOptions={"ReplayChildren": True}))
    else:
        core.state.write(core.update(op_id, CONTEXT, "SUCCEED", spec.kind, name, Payload=payload))
    return _decode(spec, payload, sctx)


def _branch_factory(batch_core: ContextCore, spec: BatchSpec, batch_id: str, index: int,
                    branch: Branch) -> Callable[[], OpGen]:
    branch_id = operation_id(batch_id, index)
    if spec.nesting is NestingType.FLAT:
        def flat() -> OpGen:
            return (yield UserCall(branch.func, branch.args, child=batch_core.child(branch_id, checkpointed=False)))
        return flat
    return lambda: child.run_in_child_context(
        batch_core, branch.func, branch.name, sub_type=spec.item_sub_type,
        serdes=spec.item_serdes or spec.serdes,
        op_id=branch_id, args=branch.args)


def _suspension(outcomes: Sequence[Outcome | None]) -> SuspendExecution:
    waiting = [o.error for o in outcomes if o is not None and o.status == "SUSPENDED"]
    timed = [e.scheduled_timestamp for e in waiting if isinstance(e, TimedSuspendExecution)]
    if waiting and len(timed) == len(waiting):
        return TimedSuspendExecution("every running branch of the batch is waiting", min(timed))
    return SuspendExecution("the batch's branches are waiting for outside events")


def _batch_result(indexes: list[int], outcomes: Sequence[Outcome | None],
                  reason: CompletionReason) -> BatchResult[Any]:
    items: list[BatchItem[Any]] = []
    for index, outcome in zip(indexes, outcomes, strict=True):
        if outcome is None:
            continue
        if outcome.status == "SUCCEEDED":
            items.append(BatchItem(index, BatchItemStatus.SUCCEEDED, outcome.value))
        elif outcome.status == "FAILED":
            assert outcome.error is not None
            items.append(BatchItem(index, BatchItemStatus.FAILED, error=ErrorObject.from_exception(outcome.error)))
        else:
            items.append(BatchItem(index, BatchItemStatus.STARTED))
    return BatchResult(items, reason)


def _envelope(spec: BatchSpec, result: BatchResult[Any], total: int) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "type": f"{spec.kind}Result", "totalCount": total, "completionReason": result.completion_reason.value,
        "startedIndexes": [i.index for i in result.all],
        "completedIndexes": [i.index for i in result.all if i.status is not BatchItemStatus.STARTED],
        "startedCount": result.started_count, "successCount": result.success_count,
        "failureCount": result.failure_count, "status": result.status.value,
    }
    if spec.summary_generator is not None:
        envelope["summary"] = spec.summary_generator(result)
    return envelope


def _is_envelope(details: Any) -> bool:
    return bool(details and details.ReplayChildren and details.Result)


def _decode(spec: BatchSpec, payload: str | None, sctx: SerDesContext) -> Any:
    if spec.serdes is not None:
        return None if payload is None else spec.serdes.deserialize(payload, sctx)
    return BatchResult.from_json(json.loads(payload)) if payload else BatchResult()
