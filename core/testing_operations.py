"""Operations as AWS's test runner shows them: snake-case, typed per operation, children nested.

``create_operation(op, all_ops)`` turns one of the engine's operations into a
:class:`StepOperation`, :class:`WaitOperation`, :class:`ContextOperation`, :class:`CallbackOperation`,
:class:`InvokeOperation` or :class:`ExecutionOperation`, with its children (looked up in ``all_ops``)
in ``child_operations``. ``result`` is the stored text, as serialised (durably's default codec:
plain JSON); ``error`` an :class:`ErrorObject` (``.message``, ``.type``, ``.data``, ``.stack_trace``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from durably.core.model import ErrorObject, OperationStatus, OperationType
from durably.core.model import Operation as WireOperation

__all__ = [
    "CallbackOperation",
    "ContextOperation",
    "DurableFunctionsTestError",
    "ExecutionOperation",
    "InvokeOperation",
    "Operation",
    "StepOperation",
    "WaitOperation",
    "create_operation",
    "find_by_name",
]


class DurableFunctionsTestError(Exception):
    """A test asked for something the execution does not have (an operation name, a callback)."""


def _time(epoch_ms: int | None) -> dt.datetime | None:
    return None if epoch_ms is None else dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC)


@dataclass(frozen=True)
class Operation:
    operation_id: str
    operation_type: OperationType
    status: OperationStatus
    parent_id: str | None = field(default=None, kw_only=True)
    name: str | None = field(default=None, kw_only=True)
    sub_type: str | None = field(default=None, kw_only=True)
    start_timestamp: dt.datetime | None = field(default=None, kw_only=True)
    end_timestamp: dt.datetime | None = field(default=None, kw_only=True)


Op = TypeVar("Op", bound=Operation)


def find_by_name(operations: list[Operation], name: str, kind: type[Op], where: str) -> Op:
    """The first of ``operations`` called ``name``; DurableFunctionsTestError naming the others if none.

    ``kind`` types the answer without checking it, as AWS's runner does (``get_step`` of a
    wait_for_callback's context answers the context).
    """
    for op in operations:
        if op.name == name:
            return cast(Op, op)
    known = sorted({op.name for op in operations if op.name})
    raise DurableFunctionsTestError(f"{where} operation with name {name!r} not found; named: {known}")


@dataclass(frozen=True)
class ExecutionOperation(Operation):
    input_payload: str | None = None


@dataclass(frozen=True)
class ContextOperation(Operation):
    """A child context (also map, parallel, their branches, wait_for_callback): its children nested."""

    child_operations: list[Operation] = field(default_factory=list)
    result: str | None = None
    error: ErrorObject | None = None

    def get_operation_by_name(self, name: str) -> Operation:
        return find_by_name(self.child_operations, name, Operation, "child")

    def get_step(self, name: str) -> StepOperation:
        return find_by_name(self.child_operations, name, StepOperation, "child")

    def get_wait(self, name: str) -> WaitOperation:
        return find_by_name(self.child_operations, name, WaitOperation, "child")

    def get_context(self, name: str) -> ContextOperation:
        return find_by_name(self.child_operations, name, ContextOperation, "child")

    def get_callback(self, name: str) -> CallbackOperation:
        return find_by_name(self.child_operations, name, CallbackOperation, "child")

    def get_invoke(self, name: str) -> InvokeOperation:
        return find_by_name(self.child_operations, name, InvokeOperation, "child")

    def get_execution(self, name: str) -> ExecutionOperation:
        return find_by_name(self.child_operations, name, ExecutionOperation, "child")


@dataclass(frozen=True)
class StepOperation(ContextOperation):
    attempt: int = 0
    next_attempt_timestamp: dt.datetime | None = None


@dataclass(frozen=True)
class WaitOperation(Operation):
    scheduled_end_timestamp: dt.datetime | None = None


@dataclass(frozen=True)
class CallbackOperation(ContextOperation):
    callback_id: str | None = None


@dataclass(frozen=True)
class InvokeOperation(Operation):
    result: str | None = None
    error: ErrorObject | None = None


def create_operation(op: WireOperation, all_operations: list[WireOperation]) -> Operation:
    """The typed view of ``op``, its children taken from ``all_operations``."""
    common: dict[str, Any] = {
        "operation_id": op.Id, "operation_type": OperationType(op.Type), "status": OperationStatus(op.Status),
        "parent_id": op.ParentId, "name": op.Name, "sub_type": op.SubType,
        "start_timestamp": _time(op.StartTimestamp), "end_timestamp": _time(op.EndTimestamp),
    }
    if op.Type == "WAIT":
        return WaitOperation(**common, scheduled_end_timestamp=_time(
            op.WaitDetails.ScheduledEndTimestamp if op.WaitDetails else None))
    if op.Type == "EXECUTION":
        return ExecutionOperation(**common, input_payload=op.ExecutionDetails.InputPayload
                                  if op.ExecutionDetails else None)
    if op.Type == "CHAINED_INVOKE":
        invoke = op.ChainedInvokeDetails
        return InvokeOperation(**common, result=invoke.Result if invoke else None,
                               error=invoke.Error if invoke else None)
    children = [create_operation(child, all_operations) for child in all_operations if child.ParentId == op.Id]
    if op.Type == "STEP":
        step = op.StepDetails
        return StepOperation(**common, child_operations=children, result=step.Result if step else None,
                             error=step.Error if step else None, attempt=step.Attempt if step else 0,
                             next_attempt_timestamp=_time(step.NextAttemptTimestamp if step else None))
    if op.Type == "CALLBACK":
        callback = op.CallbackDetails
        return CallbackOperation(**common, child_operations=children,
                                 result=callback.Result if callback else None,
                                 error=callback.Error if callback else None,
                                 callback_id=callback.CallbackId if callback else None)
    context = op.ContextDetails
    return ContextOperation(**common, child_operations=children, result=context.Result if context else None,
                            error=context.Error if context else None)
