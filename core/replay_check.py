"""Replaying a stored history against the current code, writing nothing and running no step body.

:func:`check_replay` invokes a handler over an execution's recorded operations as a replay does,
with a :class:`~durably.core.backend.ReplayCheck` in place of the engine: every operation the code
asks for is compared with the one recorded at its id, and a mismatch is a divergence, named on
both sides. The first thing the code would do that the history does not hold is refused: a new
operation past the recorded end, the body of a step found STARTED or due for its next attempt,
any checkpoint. The check stops there, as a suspension, so nothing after it runs; each branch of
a map or parallel stops at its own frontier while the others replay on (with ``max_concurrency``,
a branch held at its frontier keeps its slot, so the branches after it are not reached).

What runs, as on every replay: the handler's code between operations, the functions of child
contexts and branches, a retry strategy deciding on a recorded interruption. The handler's
plugins are left out (they only observe).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, NoReturn

from durably.core.errors import SuspendExecution
from durably.core.execution import DurableFunction, InvocationInput
from durably.core.model import (
    CheckpointResponse,
    ErrorObject,
    ExecutionState,
    InvocationOutput,
    InvocationStatus,
    Operation,
    OperationUpdate,
)

Outcome = Literal["diverged", "raised", "frontier", "waiting", "returned", "failed"]
"""How a check ended: a divergence; the handler raised what the history does not end with; stopped
at the frontier; stopped on an open wait, retry, callback or invoke of the history; the handler
returned; it raised, as the execution had ended FAILED."""


class ReplayFrontierReached(SuspendExecution):
    """Where a replay check stops: the code would write, or run a body, past the history."""


@dataclass(frozen=True)
class OperationRef:
    """One side of a comparison: an operation as recorded or as the code asks for it."""

    type: str
    name: str | None
    subtype: str | None
    id: str | None = None
    status: str | None = None
    """Its status in the history (None: not in the history)."""

    @classmethod
    def recorded(cls, op: Operation) -> OperationRef:
        return cls(str(op.Type), op.Name, op.SubType, op.Id, str(op.Status))

    @classmethod
    def asked(cls, update: OperationUpdate, status: str | None = None) -> OperationRef:
        return cls(str(update.Type), update.Name, update.SubType, update.Id, status)

    def describe(self) -> str:
        kind = f"{self.type} ({self.subtype})" if self.subtype and self.subtype.upper() != self.type else self.type
        return f"{kind} {self.name!r}" if self.name else f"{kind} (unnamed)"


@dataclass(frozen=True)
class Divergence:
    position: str
    """Ordinals from the top of the history: ``2.1.3`` is the third operation of the first child of
    the second top-level operation."""
    within: tuple[str, ...]
    """The names of the enclosing operations, outermost first."""
    recorded: OperationRef
    code: OperationRef
    message: str


@dataclass(frozen=True)
class ReplayReport:
    """Whether one execution's history replays against the code, and where it stops or diverges."""

    arn: str
    ok: bool
    outcome: Outcome
    operations_replayed: int
    frontier: OperationRef | None = None
    """What the code would do next (outcome ``frontier``), or the open operation it stopped on
    (outcome ``waiting``)."""
    divergence: Divergence | None = None
    error: str | None = None
    """What the handler raised (outcomes ``raised`` and ``failed``)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Check:
    """Both the backend and the :class:`~durably.core.backend.ReplayCheck` of one check."""

    def __init__(self, operations: Sequence[Operation]) -> None:
        self.ops = {op.Id: op for op in operations}
        self.reached: set[str] = set()
        self.frontier: OperationRef | None = None
        self.waiting: OperationRef | None = None
        """The first operation the code met that the history has open (a wait, a callback, a retry)."""
        self.divergence: tuple[Operation, OperationUpdate, str] | None = None
        self.closed = False
        """Set once the invocation ended: orphaned branches still replaying change nothing."""
        self._lock = threading.Lock()

    def replayed(self, op: Operation) -> None:
        with self._lock:
            if self.closed:
                return
            self.reached.add(op.Id)
            if self.waiting is None and not op.is_terminal and op.Type != "CONTEXT":
                self.waiting = OperationRef.recorded(op)

    def diverged(self, op: Operation, code: OperationUpdate, message: str) -> None:
        with self._lock:
            if not self.closed and self.divergence is None:
                self.divergence = (op, code, message)

    def refuse(self, updates: Sequence[OperationUpdate]) -> NoReturn:
        first = updates[0]
        recorded = self.ops.get(first.Id)
        with self._lock:
            if not self.closed and self.frontier is None:
                self.frontier = OperationRef.asked(first, str(recorded.Status) if recorded else None)
        raise ReplayFrontierReached(f"replay check: {first.Type} {first.Name or first.Id!r} is past the history")

    def checkpoint(self, arn: str, token: str, updates: list[OperationUpdate]) -> CheckpointResponse:
        self.refuse(updates)

    def get_state(self, arn: str, token: str, marker: str | None) -> ExecutionState:
        return ExecutionState(Operations=[])

    def close(self) -> None:
        with self._lock:
            self.closed = True


def check_replay(handler: DurableFunction, arn: str, operations: Sequence[Operation]) -> ReplayReport:
    """Replay ``operations`` (an execution's whole history, in order) against ``handler``; see the module."""
    check = _Check(operations)
    inv = InvocationInput(arn, "replay-check", list(operations), replay_check=check)
    try:
        output = DurableFunction(handler.func).invoke(inv, check)
    except ReplayFrontierReached:  # refused after the handler returned: its large result
        output = None
    except Exception as exc:  # a transient failure's error (InvocationError), raised by the code
        output = InvocationOutput(Status=InvocationStatus.FAILED, Error=ErrorObject.from_exception(exc))
    finally:
        check.close()
    replayed = len(check.reached)
    if check.divergence is not None:
        op, code, message = check.divergence
        position, within = _position(op, operations)
        return ReplayReport(arn, False, "diverged", replayed, divergence=Divergence(
            position, within, OperationRef.recorded(op), OperationRef.asked(code), message))
    if output is None or output.Status == InvocationStatus.PENDING:
        if check.frontier is not None:
            return ReplayReport(arn, True, "frontier", replayed, check.frontier)
        return ReplayReport(arn, True, "waiting", replayed, check.waiting)
    if output.Status == InvocationStatus.SUCCEEDED:
        return ReplayReport(arn, True, "returned", replayed)
    error = output.Error
    text = f"{error.ErrorType}: {error.ErrorMessage}" if error else "the handler failed"
    execution = check.ops.get(arn.rsplit("/", 1)[-1])
    ended_failed = execution is not None and execution.Status == "FAILED"
    return ReplayReport(arn, ended_failed, "failed" if ended_failed else "raised", replayed, error=text)


def _position(op: Operation, operations: Sequence[Operation]) -> tuple[str, tuple[str, ...]]:
    """``op``'s ordinals from the top of the history, and the names of the operations around it."""
    by_id = {o.Id: o for o in operations}
    ordinals: list[str] = []
    within: list[str] = []
    current: Operation | None = op
    while current is not None:
        siblings = [o.Id for o in operations if o.ParentId == current.ParentId and o.Type != "EXECUTION"]
        ordinals.append(str(siblings.index(current.Id) + 1))
        current = by_id.get(current.ParentId) if current.ParentId else None
        if current is not None:
            within.append(current.Name or str(current.Type))
    return ".".join(reversed(ordinals)), tuple(reversed(within))
