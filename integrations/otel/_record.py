"""Reading an execution's durable record: the operations an invocation knows, their parents, their
results and errors. The agents' shapes are read as data (tracing does not need langchain-core);
tests check the names match durably.agents."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from durably.core import ErrorObject, Operation
from durably.sagas import COMPENSATION_SUBTYPE, ROLLBACK_SUBTYPE, SAGA_SUBTYPE, SagaError

AGENT_SUBTYPE = "Agent"
TOOL_CALL_SUBTYPES = frozenset({"ToolCall", "ParallelBranch"})
"""The contexts of an agent's tool calls: a turn's only call, or one of several run in parallel."""
MODEL_STEP = "model"
SAGA_ERROR_PREFIX = f"{SagaError.__module__}."
LC_AI_MESSAGE = "AIMessage"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "STOPPED"})


class Record:
    """The operations of one execution that this invocation has seen, by id, kept up to date."""

    def __init__(self, operations: Iterable[Operation] = ()) -> None:
        self.ops: dict[str, Operation] = {op.Id: op for op in operations}

    def add(self, op: Operation) -> None:
        self.ops[op.Id] = op

    def parent(self, op: Operation) -> Operation | None:
        return self.ops.get(op.ParentId) if op.ParentId else None

    def ancestors(self, op: Operation) -> Iterator[Operation]:
        parent = self.parent(op)
        while parent is not None:
            yield parent
            parent = self.parent(parent)

    def nearest(self, op: Operation, sub_type: str) -> Operation | None:
        """The closest enclosing context of ``sub_type``."""
        return next((a for a in self.ancestors(op) if a.SubType == sub_type), None)


def error_of(op: Operation) -> ErrorObject | None:
    for details in (op.StepDetails, op.ContextDetails, op.CallbackDetails, op.ChainedInvokeDetails):
        error = getattr(details, "Error", None)
        if isinstance(error, ErrorObject):
            return error
    return None


def result_of(op: Operation) -> str | None:
    for details in (op.StepDetails, op.ContextDetails, op.CallbackDetails, op.ChainedInvokeDetails):
        result = getattr(details, "Result", None)
        if result is not None:
            return str(result)
    return None


def json_of(text: str | None) -> Any:
    """``text`` parsed as JSON, or None when it is absent or not JSON."""
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def ai_message(op: Operation) -> dict[str, Any] | None:
    """The kwargs of the AIMessage an agent's model step recorded (langchain-core's serialised form)."""
    if op.Type != "STEP" or op.Name != MODEL_STEP:
        return None
    data = json_of(result_of(op))
    if not isinstance(data, dict) or not isinstance(data.get("id"), list) or data["id"][-1:] != [LC_AI_MESSAGE]:
        return None
    kwargs = data.get("kwargs")
    return kwargs if isinstance(kwargs, dict) else None


def tool_call(op: Operation, record: Record) -> tuple[str, str, dict[str, Any]] | None:
    """(tool, call id, what the call recorded) for the context of an agent's tool call, else None."""
    if op.Type != "CONTEXT" or op.SubType not in TOOL_CALL_SUBTYPES or not op.Name:
        return None
    if record.nearest(op, AGENT_SUBTYPE) is None:
        return None
    recorded = json_of(result_of(op))
    if isinstance(recorded, dict) and isinstance(recorded.get("tool"), str) and "call_id" in recorded:
        return recorded["tool"], str(recorded["call_id"]), recorded
    tool, _, call_id = op.Name.rpartition(" ")  # "<tool> <call id>", when it ended without a record
    return (tool, call_id, {}) if tool else None


def undone_step(op: Operation, record: Record) -> Operation | None:
    """The forward step a saga compensation undoes: the saga's step of the same name, paired latest
    first with the compensations of that name (a saga undoes in reverse order)."""
    if op.SubType != COMPENSATION_SUBTYPE:
        return None
    rollback = record.nearest(op, ROLLBACK_SUBTYPE)
    saga = record.parent(rollback) if rollback is not None else None
    if rollback is None or saga is None:
        return None

    def in_saga(candidate: Operation, inside: Operation) -> bool:
        return any(a.Id == inside.Id for a in record.ancestors(candidate))

    forward = sorted((c for c in record.ops.values() if c.Type == "STEP" and c.Name == op.Name
                      and c.SubType != COMPENSATION_SUBTYPE and c.Status == "SUCCEEDED" and in_saga(c, saga)
                      and not in_saga(c, rollback)), key=lambda c: (c.EndTimestamp or 0), reverse=True)
    undos = sorted((c for c in record.ops.values() if c.SubType == COMPENSATION_SUBTYPE and c.Name == op.Name
                    and in_saga(c, rollback)), key=lambda c: (c.StartTimestamp or 0, c.Id))
    position = next((i for i, c in enumerate(undos) if c.Id == op.Id), None)
    return forward[position] if position is not None and position < len(forward) else None


def saga_outcome(op: Operation) -> str | None:
    """How a saga context ended: completed, or the outcome its recorded error names."""
    if op.SubType != SAGA_SUBTYPE or op.Status not in TERMINAL:
        return None
    if op.Status == "SUCCEEDED":
        return "completed"
    error = error_of(op)
    data = json_of(error.ErrorData) if error is not None else None
    if error is not None and str(error.ErrorType or "").startswith(SAGA_ERROR_PREFIX) and isinstance(data, dict):
        return str(data.get("outcome") or "failed")
    return "failed"
