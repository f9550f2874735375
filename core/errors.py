"""The exception hierarchy, named as in the AWS durable execution SDK.

Errors a user catches derive from :class:`DurableExecutionsError`. Suspension is control flow:
:class:`SuspendExecution` derives from ``BaseException`` so ``except Exception`` in user code
never swallows it.
"""

from __future__ import annotations

import builtins
import os
import sysconfig
import traceback
from typing import Any

_STDLIB = sysconfig.get_paths()["stdlib"]
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_RUNNERS = tuple(os.path.join(path, "") for path in (
    *(os.path.join(_PACKAGE, layer) for layer in ("core", "sagas", "agents", "integrations")),
    os.path.join(_STDLIB, "asyncio"), os.path.join(_STDLIB, "concurrent")))
"""Where the frames that call user code live: durably's runtime and layers, asyncio and its thread pools."""


def error_type_name(exc: BaseException | type[BaseException]) -> str:
    """The ``ErrorType`` recorded for an exception: bare for builtins, qualified otherwise."""
    cls = exc if isinstance(exc, type) else type(exc)
    if cls.__module__ == "builtins" or getattr(builtins, cls.__name__, None) is cls:
        return cls.__name__
    return f"{cls.__module__}.{cls.__qualname__}"


class DurableExecutionsError(Exception):
    """Base of every error durably raises to user code."""


class DurableOperationError(DurableExecutionsError):
    """A durable operation failed; carries the checkpointed error fields.

    ``error_type`` is the type of the error that caused the failure (``KeyError``, ...).
    """

    def __init__(
        self,
        message: str | None = None,
        error_type: str | None = None,
        data: str | None = None,
        stack_trace: list[str] | None = None,
    ) -> None:
        super().__init__(message or "")
        self.message = message
        self.error_type = error_type
        self.data = data
        self.stack_trace = stack_trace


class RecordedError(DurableOperationError):
    """The original failure of an operation, rebuilt from its recorded ErrorObject.

    It is the ``__cause__`` of the error an operation raises for a recorded failure (StepError,
    ChildContextError, ...), the same on the first run and on replay; its text shows the
    recorded type, message and stack trace. Recorded again, it keeps the original ErrorType.
    """

    def __str__(self) -> str:
        head = ": ".join(part for part in (self.error_type, self.message) if part)
        if not self.stack_trace:
            return head
        return "\n".join([head, "Recorded stack trace:", *(entry.rstrip("\n") for entry in self.stack_trace)])


class StepError(DurableOperationError):
    """A step failed after its retries were exhausted (or was not retryable)."""


class InvokeError(DurableOperationError):
    """An invoked function failed, timed out or was stopped."""


class ChildContextError(DurableOperationError):
    """A child context (or a map item / parallel branch) failed."""


class WaitForConditionError(DurableOperationError):
    """A wait-for-condition check raised, or the wait strategy gave up."""


class CallbackError(DurableOperationError):
    """Base of the callback errors."""


class CallbackExternalError(CallbackError):
    """The external system reported failure for a callback."""


class CallbackTimeoutError(CallbackError):
    """A callback timed out (``Callback.Timeout``) or missed a heartbeat (``Callback.Heartbeat``)."""


class CallbackSubmitterError(CallbackError):
    """The submitter of ``wait_for_callback`` failed."""


class BatchCompletionError(DurableOperationError):
    """A map or parallel completed by a custom policy that reported failure."""


class SerDesError(DurableExecutionsError):
    """A value could not be serialised or deserialised (permanent: the operation fails)."""


class ValidationError(DurableExecutionsError):
    """An argument to a durable operation is invalid; raised before anything is checkpointed."""


class UnrecoverableError(DurableExecutionsError):
    """Base of errors that end the invocation instead of being handled by user code."""


class ExecutionError(UnrecoverableError):
    """The execution cannot go on: it fails without retry."""


class NonDeterministicExecutionError(ExecutionError):
    """The code asked for a different operation than the history holds at that id."""


class InvocationError(UnrecoverableError):
    """The invocation failed for a transient reason: the engine invokes the handler again."""


class CheckpointError(InvocationError):
    """A checkpoint call was refused or failed."""


class GetExecutionStateError(InvocationError):
    """Reading the execution state failed."""


class StepInterruptedError(InvocationError):
    """An at-most-once step was interrupted mid-attempt (the process died before it finished)."""


class RetryableSerDesError(InvocationError):
    """A transient serialisation failure: the invocation is retried, nothing is checkpointed."""


class PluginLoadError(DurableExecutionsError):
    """A plugin could not be created."""


class SuspendExecution(BaseException):
    """Control flow: the invocation must end PENDING. Never catch it."""


class TimedSuspendExecution(SuspendExecution):
    """Suspension with a known resume time (epoch seconds)."""

    def __init__(self, message: str, scheduled_timestamp: float) -> None:
        super().__init__(message)
        self.scheduled_timestamp = scheduled_timestamp


class OrphanedChildException(BaseException):
    """Control flow: a branch kept running after its parent completed."""


class CheckpointFailedError(BaseException):
    """Control flow: a checkpoint of this invocation was refused or failed; never catch it.

    Refused means another worker took the execution over (its token was fenced off); failed
    means the write did not happen (a full disk, a lost connection). Either way this invocation
    runs no further user code: every later operation raises this error again, and the engine
    invokes the handler anew from the recorded history. It derives from ``BaseException`` so
    that ``except Exception`` in a handler cannot swallow it. ``__cause__`` is the backend's error.
    """


def exception_details(exc: BaseException) -> dict[str, Any]:
    """ErrorObject fields of an exception.

    A raw exception records its type, message and :func:`stack_trace`. A
    :class:`DurableOperationError` keeps the message, data and stack trace of the failure it
    wraps, under its own (wrapper) type; a :class:`RecordedError` under the recorded type.
    """
    if isinstance(exc, DurableOperationError):
        return {
            "ErrorMessage": exc.message,
            "ErrorType": exc.error_type if isinstance(exc, RecordedError) else error_type_name(exc),
            "ErrorData": exc.data,
            "StackTrace": exc.stack_trace,
        }
    return {"ErrorMessage": str(exc), "ErrorType": error_type_name(exc), "StackTrace": stack_trace(exc)}


def stack_trace(exc: BaseException) -> list[str] | None:
    """The frames of an exception's traceback, formatted as Python prints them, one entry per frame.

    The outer frames of the runtime that called the user's code are left out (all are kept when
    nothing else is left).
    """
    frames = traceback.extract_tb(exc.__traceback__)
    start = next((i for i, frame in enumerate(frames) if not frame.filename.startswith(_RUNNERS)), 0)
    return traceback.StackSummary.from_list(frames[start:]).format() or None
