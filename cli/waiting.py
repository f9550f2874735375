"""What a RUNNING execution waits on, read from its operations (``service.all_operations``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from durably.core.model import ErrorObject, Operation

CONDITION_SUBTYPE = "WaitForCondition"
CALLBACK_CONTEXT_SUBTYPE = "WaitForCallback"


@dataclass(frozen=True)
class Waiting:
    """One thing an execution waits on.

    ``kind``: ``callback`` (an answer to ``callback_id``), ``wait`` (a timer ending at ``until``),
    ``retry`` (a failed step attempted again at ``until``), ``condition`` (a wait_for_condition
    checked again at ``until``) or ``invoke`` (a chained invoke's execution).
    """

    kind: str
    name: str | None
    operation_id: str
    callback_id: str | None = None
    until: int | None = None
    """Epoch milliseconds: when the wait ends, when the next attempt or check runs."""
    attempt: int | None = None
    """The attempts a retried step or a condition has made so far."""
    error: ErrorObject | None = None
    """A retried step's last error."""

    @property
    def label(self) -> str:
        """``callback 'approve'``, ``wait (unnamed)``: the kind and the name."""
        return f"{self.kind} {self.name!r}" if self.name else f"{self.kind} (unnamed)"


def waiting_on(operations: Sequence[Operation]) -> list[Waiting]:
    """The open callbacks, running waits, pending retries and chained invokes, in operation order.

    A wait_for_callback's callback goes by the name of its context (as in ``durably run``'s progress).
    """
    by_id = {op.Id: op for op in operations}
    found: list[Waiting] = []
    for op in operations:
        if op.Type == "CALLBACK" and op.Status == "STARTED" and op.CallbackDetails is not None:
            parent = by_id.get(op.ParentId or "")
            name = parent.Name if parent is not None and parent.SubType == CALLBACK_CONTEXT_SUBTYPE else op.Name
            found.append(Waiting("callback", name, op.Id, callback_id=op.CallbackDetails.CallbackId))
        elif op.Type == "WAIT" and op.Status == "STARTED":
            until = op.WaitDetails.ScheduledEndTimestamp if op.WaitDetails else None
            found.append(Waiting("wait", op.Name, op.Id, until=until))
        elif op.Type == "STEP" and op.Status == "PENDING" and op.StepDetails is not None:
            kind = "condition" if op.SubType == CONDITION_SUBTYPE else "retry"
            found.append(Waiting(kind, op.Name, op.Id, until=op.StepDetails.NextAttemptTimestamp,
                                 attempt=op.StepDetails.Attempt or None, error=op.StepDetails.Error))
        elif op.Type == "CHAINED_INVOKE" and op.Status == "STARTED":
            found.append(Waiting("invoke", op.Name, op.Id))
    return found
