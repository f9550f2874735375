"""Redrive: a new execution that takes an ended one up again once the cause of its failure is fixed.

The new execution runs the same function (same handler reference) on the same input, and starts
with the original's operations that completed before its failure: the code replays them from their
recorded results (their bodies do not run again) and runs the rest, on the current code. The
original is never changed; the new execution names it (``RedriveOf``), in its record and in its
first history event. Which operations are kept (:func:`select`):

- The original's operations are ordered by when they started, as its history records it. The
  *failure point* is the earliest of: the start of the first operation (step, wait, callback,
  invoke) that FAILED, TIMED_OUT or was STOPPED; the end of the first child context that failed
  (its own code raised); the end of the execution (a STOPPED or TIMED_OUT execution, or a handler
  that raised outside any operation). With ``from_operation``, also the start of the first
  operation of that name. Nothing that started at or after the failure point is kept: a saga's
  compensations, which run after the failure, never are.
- An operation that SUCCEEDED before the failure point is kept as it was: its result, its
  attempts, its timestamps, its history events (so the timeline shows it as it happened). That
  covers completed chained invokes and answered callbacks too; a callback still open is not kept
  (the code creates a new one when it gets there).
- A child context is kept whole if it SUCCEEDED before the failure point and nothing under it was
  dropped as compensated. Otherwise, if anything under it is kept, it is re-created STARTED (its
  start event copied), so the code enters it again and replays its kept operations.
- Within a context, an operation still open at the failure point (a running step, a callback
  waiting for its answer, a wait) ends what is kept there: whatever that context started after it
  may have used it (the step that sent a callback's id) and runs again.
- A forward step that a saga compensated (a later step with SubType ``Compensation`` and the same
  name, in the rollback of a saga that the step belongs to) was undone in the real world: it is
  not kept, so the new execution runs it again, and can compensate it itself. An attempted undo
  counts, whatever its outcome: after a failed compensation the step's effect is unknown (or was
  undone by hand before the redrive). Work a saga only remembers (``Saga.remember``) is matched by
  its remembered name, not by the operations that did it.

A kept callback keeps its id in its record but is not found by it (the original's is).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from durably.core.engine.errors import InvalidParameterValueException
from durably.core.model import Operation

REDRIVABLE = ("FAILED", "TIMED_OUT", "STOPPED")
"""The execution statuses a redrive takes up (also the operation statuses that mark the failure)."""
COMPENSATION_SUBTYPE = "Compensation"
SAGA_SUBTYPE = "Saga"
"""``durably.sagas``' SubTypes of a compensation step and of a saga's context (core cannot import
them; ``tests/sagas/test_redrive_order.py`` checks that they agree)."""
MAX_NAME = 64
LISTED_NAMES = 30


@dataclass(frozen=True)
class Selection:
    """What a redrive starts with: the operations, in the original's order, and which of them
    are contexts re-created STARTED."""

    operations: list[Operation]
    restarted: frozenset[str]

    def events(self, events: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The original's events to copy: all of a kept operation's, the start of a re-created context."""
        ids = {op.Id for op in self.operations}
        copied: list[Mapping[str, Any]] = []
        started: set[str] = set()
        for event in events:
            op_id = event.get("Id")
            if op_id not in ids:
                continue
            if op_id in self.restarted:
                if op_id in started:
                    continue
                started.add(op_id)
            copied.append(event)
        return copied


def check_redrivable(arn: str, status: str, durable: bool) -> None:
    """Refuse to redrive what is not an ended durable execution."""
    if not durable:
        raise InvalidParameterValueException(
            f"{arn} is a run of a plain function, not a durable execution: there is nothing to redrive")
    if status == "RUNNING":
        raise InvalidParameterValueException(
            f"{arn} is still RUNNING: only an ended execution (FAILED, TIMED_OUT or STOPPED) can be redriven; "
            "stop it first")
    if status not in REDRIVABLE:
        raise InvalidParameterValueException(
            f"{arn} {status}: there is nothing to recover (only a FAILED, TIMED_OUT or STOPPED execution "
            "can be redriven)")


def default_name(original: str, redriven: int, taken: Callable[[str], bool]) -> str:
    """``<original>-redrive-<n>``: n counts on from the ``redriven`` redrives of it, past names ``taken``."""
    n = redriven
    while True:
        n += 1
        suffix = f"-redrive-{n}"
        name = original[:MAX_NAME - len(suffix)] + suffix
        if not taken(name):
            return name


def select(operations: Sequence[Operation], events: Sequence[Mapping[str, Any]],
           from_operation: str | None = None) -> Selection:
    """The operations a redrive of an execution keeps (see the module's docstring), from its
    ``operations`` and its history ``events`` (all of them, in order)."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for event in events:
        op_id = event.get("Id")
        if op_id is not None:
            first.setdefault(op_id, event["EventId"])
            last[op_id] = event["EventId"]
    ordered = sorted((op for op in operations if op.Type != "EXECUTION"), key=lambda op: first.get(op.Id, 0))
    cut = _failure_point(operations, first, last)
    if from_operation is not None:
        cut = min(cut, _start_of(from_operation, ordered, first))
    by_id = {op.Id: op for op in ordered}
    children: dict[str | None, list[Operation]] = defaultdict(list)
    for op in ordered:
        children[op.ParentId].append(op)
    undone = _compensated(ordered, by_id, first, last)
    kept: dict[str, Operation] = {}
    restarted: set[str] = set()

    def visit(parent_id: str | None) -> tuple[bool, bool]:
        """Keep what is kept among ``parent_id``'s children: whether any was, whether a compensated one was dropped."""
        any_kept = lost = False
        for op in children[parent_id]:
            if first.get(op.Id, cut) >= cut:
                break  # the children are in start order: the later ones started after the failure point too
            done = op.Status == "SUCCEEDED" and last.get(op.Id, cut) < cut
            if op.Type == "CONTEXT":
                inner_kept, inner_lost = visit(op.Id)
                lost = lost or inner_lost
                if done and not inner_lost:
                    kept[op.Id] = op
                elif inner_kept:
                    kept[op.Id] = op.model_copy(update={"Status": "STARTED", "EndTimestamp": None,
                                                        "ContextDetails": None})
                    restarted.add(op.Id)
                else:
                    continue
                any_kept = True
            elif done and op.Id in undone:
                lost = True
            elif done:
                kept[op.Id] = op
                any_kept = True
            else:
                break  # open at the failure point: what this context started after it may depend on it
        return any_kept, lost

    visit(None)
    return Selection([kept[op.Id] for op in operations if op.Id in kept], frozenset(restarted))


def _failure_point(operations: Sequence[Operation], first: Mapping[str, int], last: Mapping[str, int]) -> int:
    """The history position from which nothing is kept (see the module's docstring)."""
    points = [last.get(op.Id, 2**62) for op in operations if op.Type == "EXECUTION"]
    for op in operations:
        if op.Type != "EXECUTION" and op.Status in REDRIVABLE:
            position = last.get(op.Id) if op.Type == "CONTEXT" else first.get(op.Id)
            points.append(position if position is not None else 2**62)
    return min(points, default=2**62)


def _start_of(name: str, ordered: Sequence[Operation], first: Mapping[str, int]) -> int:
    """Where the first operation named ``name`` started; an error naming the operations there are if none is."""
    for op in ordered:
        if op.Name == name:
            return first.get(op.Id, 0)
    names = list(dict.fromkeys(op.Name for op in ordered if op.Name))
    listed = ", ".join(repr(n) for n in names[:LISTED_NAMES]) + (", ..." if len(names) > LISTED_NAMES else "")
    raise InvalidParameterValueException(
        f"no operation is named {name!r}; " + (f"the execution's operations are named {listed}" if names
                                               else "the execution has no named operations"))


def _ancestors(op: Operation, by_id: Mapping[str, Operation]) -> Iterator[Operation]:
    parent = by_id.get(op.ParentId) if op.ParentId else None
    while parent is not None:
        yield parent
        parent = by_id.get(parent.ParentId) if parent.ParentId else None


def _compensated(ordered: Sequence[Operation], by_id: Mapping[str, Operation], first: Mapping[str, int],
                 last: Mapping[str, int]) -> set[str]:
    """The ids of the forward steps that a saga's rollback set out to undo."""
    undos: list[tuple[str | None, str, int]] = []  # name, the saga rolled back, where the undo started
    for op in ordered:
        if op.SubType == COMPENSATION_SUBTYPE:
            saga = next((a.Id for a in _ancestors(op, by_id) if a.SubType == SAGA_SUBTYPE), None)
            if saga is not None:
                undos.append((op.Name, saga, first.get(op.Id, 0)))
    undone: set[str] = set()
    for op in ordered:
        if op.SubType == COMPENSATION_SUBTYPE or op.Id not in last:
            continue
        sagas = {a.Id for a in _ancestors(op, by_id)}
        if any(name == op.Name and saga in sagas and started > last[op.Id] for name, saga, started in undos):
            undone.add(op.Id)
    return undone
