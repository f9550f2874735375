"""What map and parallel share: a CONTEXT whose branches run concurrently, and a BatchResult.

Replay: a completed batch returns its stored BatchResult without running any branch. A batch
whose result was too large to store (ReplayChildren) runs again, but only the branches that had
finished; each returns its own stored result, so nothing runs twice and nothing new is written.
The rest of the result comes from the recorded decision (completion reason, which items were
started and unfinished), so the replayed BatchResult equals the first one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from durably.core.batch import BatchItem, BatchItemStatus, BatchResult, CompletionPolicy, CompletionReason
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
_STARTED = Outcome("STARTED")


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


def item_name(name: str | None, prefix: str, index: int) -> str:
    """A branch's name: the one it was given (even ""), else ``<prefix><index>`` (as AWS names them)."""
    return name if name is not None else f"{prefix}{index}"


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


def run_batch(core: ContextCore, spec: BatchSpec, branches: Sequence[Branch], name: str | None) -> OpGen:
    validate(spec, len(branches))
    op_id = core.next_id()
    op = core.existing(op_id, CONTEXT, spec.kind, name)
    sctx = SerDesContext(op_id, core.arn)
    record: _Record | None = None
    if op is not None:
        details = op.ContextDetails
        if op.Status == "SUCCEEDED" and not (details and details.ReplayChildren):
            return _decode(spec, details.Result if details else None, sctx)
        if op.Status == "FAILED":
            error = (details.Error if details else None) or ErrorObject()
            raise ChildContextError(error.ErrorMessage, error.ErrorType, error.ErrorData, error.StackTrace)
        if op.Status == "SUCCEEDED":
            record = _Record.of(details.Result if details else None, len(branches))
    else:
        core.replaying = False
        core.state.queue(core.update(op_id, CONTEXT, "START", spec.kind, name))

    batch_core = core.child(op_id)
    indexes = list(range(len(branches))) if record is None else sorted(record.completed)
    policy = CompletionPolicy(spec.completion, len(branches))
    request = Concurrently([_branch_factory(batch_core, spec, op_id, i, branches[i]) for i in indexes],
                           spec.max_concurrency, lambda _s, _f: False)
    if record is None:
        request.complete = lambda successes, failures: policy.reason_for(successes, failures) is not None
    batch_core.orphaned = request.orphaned
    outcomes = dict(zip(indexes, (yield request), strict=True))

    if record is not None:
        # A result too large to store: the recorded decision, with the finished items replayed.
        return BatchResult(_items([outcomes.get(i, _STARTED) for i in range(record.total)]), record.reason)
    ordered = [outcomes[i] for i in indexes]
    reason = policy.reason_for(*_counts(ordered))
    if reason is None:
        raise _suspension(ordered)
    result = BatchResult(_items(ordered), reason)
    payload = spec.serdes.serialize(result, sctx) if spec.serdes else dumps(result.to_dict())
    if payload is not None and utf8_size(payload) > REPLAY_CHILDREN_THRESHOLD:
        core.state.write(core.update(op_id, CONTEXT, "SUCCEED", spec.kind, name,
                                     Payload=dumps(_envelope(spec, result)), ContextOptions={"ReplayChildren": True}))
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


def _counts(outcomes: Sequence[Outcome | None]) -> tuple[int, int]:
    """The numbers of succeeded and of failed branches."""
    statuses = [o.status for o in outcomes if o is not None]
    return statuses.count("SUCCEEDED"), statuses.count("FAILED")


def _items(outcomes: Sequence[Outcome | None]) -> list[BatchItem[Any]]:
    """The batch items of the branch outcomes, by index; a branch never started has none."""
    items: list[BatchItem[Any]] = []
    for index, outcome in enumerate(outcomes):
        if outcome is None:
            continue
        if outcome.status == "SUCCEEDED":
            items.append(BatchItem(index, BatchItemStatus.SUCCEEDED, outcome.value))
        elif outcome.status == "FAILED":
            assert outcome.error is not None
            items.append(BatchItem(index, BatchItemStatus.FAILED, error=ErrorObject.from_failure(outcome.error)))
        else:
            items.append(BatchItem(index, BatchItemStatus.STARTED))
    return items


def _envelope(spec: BatchSpec, result: BatchResult[Any]) -> dict[str, Any]:
    """What a result too large to store is checkpointed as (AWS's shape): the completion decision
    and the counts; the shorter of the started (unfinished) and completed index lists."""
    started = [i.index for i in result.started()]
    completed = [i.index for i in result.all if i.status is not BatchItemStatus.STARTED]
    envelope: dict[str, Any] = {
        "type": f"{spec.kind}Result", "totalCount": result.total_count,
        "completionReason": result.completion_reason.value,
        **({"startedIndexes": started} if len(started) <= len(completed) else {"completedIndexes": completed}),
        "startedCount": result.started_count, "successCount": result.success_count,
        "failureCount": result.failure_count, "status": result.status.value,
    }
    if spec.summary_generator is not None:
        envelope["summary"] = spec.summary_generator(result)
    return envelope


@dataclass(frozen=True)
class _Record:
    """The completion decision of an envelope: the started items are ``range(total)``."""

    total: int
    completed: frozenset[int]
    reason: CompletionReason

    @classmethod
    def of(cls, payload: str | None, count: int) -> _Record:
        data = json.loads(payload or "{}")
        total = data.get("totalCount", count)
        if "completedIndexes" in data:  # exact in AWS's envelopes and in durably's older ones (both lists)
            completed = frozenset(data["completedIndexes"])
        else:
            completed = frozenset(range(total)) - frozenset(data.get("startedIndexes", []))
        return cls(total, completed, CompletionReason(data.get("completionReason", "ALL_COMPLETED")))


def _decode(spec: BatchSpec, payload: str | None, sctx: SerDesContext) -> Any:
    if spec.serdes is not None:
        return None if payload is None else spec.serdes.deserialize(payload, sctx)
    if not payload:
        return BatchResult([], CompletionReason.ALL_COMPLETED)
    return BatchResult.from_dict(json.loads(payload), spec.completion)
