"""Pydantic models of the Lambda durable execution wire format (PascalCase, as AWS spells it).

A stored history or state can be handed to AWS tooling unchanged, and the other way round.
Timestamps are integers in epoch milliseconds, as in the invocation envelope. (No
``from __future__ import annotations`` here: fields are named like their detail classes.)
"""

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal, TypeVar

from durably.core.errors import DurableOperationError, RecordedError, exception_details
from durably.core.limits import MAX_ERROR_DATA, MAX_ERROR_MESSAGE, MAX_ERROR_TYPE, truncated, truncated_trace
from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict, without unset fields."""
        return self.model_dump(exclude_none=True, mode="json")


OperationTypeName = Literal["EXECUTION", "CONTEXT", "STEP", "WAIT", "CALLBACK", "CHAINED_INVOKE"]
OperationStatusName = Literal["STARTED", "PENDING", "READY", "SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT",
                              "STOPPED"]
OperationActionName = Literal["START", "SUCCEED", "FAIL", "RETRY", "CANCEL"]


class OperationType(StrEnum):
    EXECUTION = "EXECUTION"
    CONTEXT = "CONTEXT"
    STEP = "STEP"
    WAIT = "WAIT"
    CALLBACK = "CALLBACK"
    CHAINED_INVOKE = "CHAINED_INVOKE"


class OperationStatus(StrEnum):
    STARTED = "STARTED"
    PENDING = "PENDING"
    READY = "READY"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"
    STOPPED = "STOPPED"


TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT", "STOPPED"})


class OperationAction(StrEnum):
    START = "START"
    SUCCEED = "SUCCEED"
    FAIL = "FAIL"
    RETRY = "RETRY"
    CANCEL = "CANCEL"


class InvocationStatus(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    PENDING = "PENDING"


class ExecutionStatus(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    STOPPED = "STOPPED"


class OperationSubType(StrEnum):
    STEP = "Step"
    WAIT = "Wait"
    CALLBACK = "Callback"
    RUN_IN_CHILD_CONTEXT = "RunInChildContext"
    MAP = "Map"
    MAP_ITERATION = "MapIteration"
    PARALLEL = "Parallel"
    PARALLEL_BRANCH = "ParallelBranch"
    WAIT_FOR_CALLBACK = "WaitForCallback"
    WAIT_FOR_CONDITION = "WaitForCondition"
    CHAINED_INVOKE = "ChainedInvoke"


_E = TypeVar("_E", bound=DurableOperationError)


def _cut(text: str | None, limit: int) -> str | None:
    return None if text is None else truncated(text, limit)


class ErrorObject(_Wire):
    ErrorMessage: str | None = None
    ErrorType: str | None = None
    ErrorData: str | None = None
    StackTrace: list[str] | None = None

    @classmethod
    def from_exception(cls, exc: BaseException) -> "ErrorObject":
        return cls(**exception_details(exc)).bounded()

    @classmethod
    def from_message(cls, message: str) -> "ErrorObject":
        """An error with only a message (as AWS's ``ErrorObject.from_message``)."""
        return cls(ErrorMessage=message)

    @classmethod
    def from_failure(cls, exc: BaseException) -> "ErrorObject":
        """The failure that escaped: for a :class:`DurableOperationError` that carries one (a failed
        child, step, ...), the error it wraps under that error's own type; else ``exc`` itself."""
        if isinstance(exc, DurableOperationError) and exc.error_type:
            return cls(ErrorMessage=exc.message, ErrorType=exc.error_type, ErrorData=exc.data,
                       StackTrace=exc.stack_trace).bounded()
        return cls.from_exception(exc)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ErrorObject":
        """From the wire dict (``ErrorMessage``, ``ErrorType``, ``ErrorData``, ``StackTrace``); other keys
        are ignored."""
        return cls(ErrorMessage=data.get("ErrorMessage"), ErrorType=data.get("ErrorType"),
                   ErrorData=data.get("ErrorData"), StackTrace=data.get("StackTrace"))

    def to_dict(self) -> dict[str, Any]:
        """The wire dict, without the fields that are not set."""
        return self.to_wire()

    def bounded(self) -> "ErrorObject":
        """This error with its fields cut to the limits of ``durably.core.limits`` (itself when they fit)."""
        fields = {
            "ErrorMessage": _cut(self.ErrorMessage, MAX_ERROR_MESSAGE),
            "ErrorType": _cut(self.ErrorType, MAX_ERROR_TYPE),
            "ErrorData": _cut(self.ErrorData, MAX_ERROR_DATA),
            "StackTrace": None if self.StackTrace is None else truncated_trace(self.StackTrace),
        }
        changed = {k: v for k, v in fields.items() if v != getattr(self, k)}
        return self.model_copy(update=changed) if changed else self

    def to_error(self, cls: type[_E]) -> _E:
        """The error an operation raises for this recorded failure, on the first run and on replay
        alike: ``cls`` with these fields, caused by the :class:`RecordedError` of them."""
        trace = self.StackTrace
        error = cls(self.ErrorMessage, self.ErrorType, self.ErrorData, trace and list(trace))
        error.__cause__ = RecordedError(self.ErrorMessage, self.ErrorType, self.ErrorData, trace and list(trace))
        return error

    @property
    def message(self) -> str | None:
        """``ErrorMessage``, by AWS's SDK's name (likewise ``type``, ``data``, ``stack_trace``)."""
        return self.ErrorMessage

    @property
    def type(self) -> str | None:
        return self.ErrorType

    @property
    def data(self) -> str | None:
        return self.ErrorData

    @property
    def stack_trace(self) -> list[str] | None:
        return self.StackTrace


_ErrorObject = ErrorObject


class ExecutionDetails(_Wire):
    InputPayload: str | None = None


class ContextDetails(_Wire):
    ReplayChildren: bool | None = None
    Result: str | None = None
    Error: _ErrorObject | None = None


class StepDetails(_Wire):
    Attempt: int = 0
    NextAttemptTimestamp: int | None = None
    Result: str | None = None
    Error: _ErrorObject | None = None


class WaitDetails(_Wire):
    ScheduledEndTimestamp: int | None = None


class CallbackDetails(_Wire):
    CallbackId: str | None = None
    Result: str | None = None
    Error: _ErrorObject | None = None


class ChainedInvokeDetails(_Wire):
    Result: str | None = None
    Error: _ErrorObject | None = None


_ExecutionDetails = ExecutionDetails
_ContextDetails = ContextDetails
_StepDetails = StepDetails
_WaitDetails = WaitDetails
_CallbackDetails = CallbackDetails
_ChainedInvokeDetails = ChainedInvokeDetails


class Operation(_Wire):
    """One operation of an execution's log, as the service stores and returns it."""

    Id: str
    ParentId: str | None = None
    Name: str | None = None
    Type: OperationTypeName
    SubType: str | None = None
    StartTimestamp: int | None = None
    EndTimestamp: int | None = None
    Status: OperationStatusName
    ExecutionDetails: _ExecutionDetails | None = None
    ContextDetails: _ContextDetails | None = None
    StepDetails: _StepDetails | None = None
    WaitDetails: _WaitDetails | None = None
    CallbackDetails: _CallbackDetails | None = None
    ChainedInvokeDetails: _ChainedInvokeDetails | None = None

    @property
    def is_terminal(self) -> bool:
        return self.Status in TERMINAL_STATUSES


class StepOptions(_Wire):
    NextAttemptDelaySeconds: int = Field(ge=0, le=31_622_400)


class WaitOptions(_Wire):
    WaitSeconds: int = Field(ge=1, le=31_622_400)


class CallbackOptions(_Wire):
    TimeoutSeconds: int = Field(default=0, ge=0, le=99_999_999)
    HeartbeatTimeoutSeconds: int = Field(default=0, ge=0, le=99_999_999)


class ChainedInvokeOptions(_Wire):
    FunctionName: str = Field(min_length=1, max_length=256)
    TenantId: str | None = None
    XAmznTraceId: str | None = None


class ContextOptions(_Wire):
    ReplayChildren: bool = False


_ContextOptions = ContextOptions
_StepOptions = StepOptions
_WaitOptions = WaitOptions
_CallbackOptions = CallbackOptions
_ChainedInvokeOptions = ChainedInvokeOptions


class OperationUpdate(_Wire):
    """One element of a checkpoint request."""

    Id: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    ParentId: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    Name: str | None = None
    Type: OperationTypeName
    SubType: str | None = None
    Action: OperationActionName
    Payload: str | None = None
    Error: _ErrorObject | None = None
    ContextOptions: _ContextOptions | None = None
    StepOptions: _StepOptions | None = None
    WaitOptions: _WaitOptions | None = None
    CallbackOptions: _CallbackOptions | None = None
    ChainedInvokeOptions: _ChainedInvokeOptions | None = None


class ExecutionState(_Wire):
    Operations: list[Operation] = Field(default_factory=list)
    NextMarker: str | None = None


class CheckpointResponse(_Wire):
    CheckpointToken: str | None = None
    NewExecutionState: ExecutionState = Field(default_factory=ExecutionState)


class InvocationOutput(_Wire):
    """What a handler invocation returns to the engine."""

    Status: InvocationStatus
    Result: str | None = None
    Error: _ErrorObject | None = None


class Event(_Wire):
    """One history event (GetDurableExecutionHistory ``Events`` element).

    Exactly one ``<EventType>Details`` key is carried, in ``details``, and emitted under its
    AWS name by :meth:`to_wire`.
    """

    EventType: str
    EventId: int
    EventTimestamp: int
    Id: str | None = None
    Name: str | None = None
    ParentId: str | None = None
    SubType: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"EventType": self.EventType, "EventId": self.EventId,
                               "EventTimestamp": self.EventTimestamp}
        for key in ("Id", "Name", "ParentId", "SubType"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out[f"{self.EventType}Details"] = self.details
        return out
