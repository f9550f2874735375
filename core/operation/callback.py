"""Callbacks: ``create_callback`` and ``wait_for_callback``.

``create_callback`` records a CALLBACK operation and returns at once with its id; the failure of
a callback is only raised by :meth:`Callback.result`, so code between the two runs identically on
every replay. ``result()`` suspends the invocation until the engine has the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from durably.core.config import CallbackConfig, StepConfig, WaitForCallbackConfig
from durably.core.context_core import ContextCore, OpGen
from durably.core.errors import (
    CallbackExternalError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    StepError,
    SuspendExecution,
    error_type_name,
)
from durably.core.logger import DurableLogger
from durably.core.model import ErrorObject, OperationType
from durably.core.operation import child, step
from durably.core.serdes import SerDes, SerDesContext

CALLBACK = OperationType.CALLBACK


class Callback:
    """A callback an external system completes with ``callback_id``."""

    def __init__(self, core: ContextCore, op_id: str, callback_id: str, serdes: SerDes[Any] | None) -> None:
        self._core = core
        self.operation_id = op_id
        self.callback_id = callback_id
        self._serdes = serdes

    def result(self) -> Any:
        """The callback's result: the raw text sent, unless a serdes was configured; None for an
        empty answer. On replay it is read from the record again, the same as on the first run.

        Raises :class:`CallbackExternalError` when the external system reported failure and
        :class:`CallbackTimeoutError` on a timeout; suspends the invocation while it is open.
        """
        op = self._core.state.get(self.operation_id)
        details = op.CallbackDetails if op else None
        status = op.Status if op else "STARTED"
        if status == "SUCCEEDED":
            raw = details.Result if details else None
            if not raw:  # answered with an empty payload
                return None
            if self._serdes is None:
                return raw
            return self._serdes.deserialize(raw, SerDesContext(self.operation_id, self._core.arn))
        error = (details.Error if details else None) or ErrorObject()
        if status == "TIMED_OUT":
            raise CallbackTimeoutError(error.ErrorMessage or "callback timed out", error.ErrorType,
                                       error.ErrorData, error.StackTrace)
        if status in ("FAILED", "CANCELLED", "STOPPED"):
            raise CallbackExternalError(error.ErrorMessage, error.ErrorType, error.ErrorData,
                                        error.StackTrace)
        self._core.replaying = False
        raise SuspendExecution(f"callback {self.callback_id} has not been answered yet")


def create_callback(core: ContextCore, name: str | None, config: CallbackConfig | None) -> OpGen:
    config = config or CallbackConfig()
    sub_type = config.sub_type or "Callback"
    op_id = core.next_id()
    op = core.existing(op_id, CALLBACK, sub_type, name)
    if op is None:
        core.replaying = False
        core.state.write(core.update(op_id, CALLBACK, "START", sub_type, name, CallbackOptions={
            "TimeoutSeconds": config.timeout.seconds,
            "HeartbeatTimeoutSeconds": config.heartbeat_timeout.seconds,
        }))
        op = core.state.get(op_id)
    callback_id = op.CallbackDetails.CallbackId if op and op.CallbackDetails else None
    if not callback_id:
        raise CallbackExternalError(f"the engine did not assign a callback id to {op_id}")
    return Callback(core, op_id, callback_id, config.serdes)
    yield  # pragma: no cover


@dataclass(frozen=True)
class WaitForCallbackContext:
    """What a submitter receives besides the callback id."""

    logger: DurableLogger


def wait_for_callback(core: ContextCore, submitter: Callable[..., Any], name: str | None,
                      config: CallbackConfig | None) -> OpGen:
    """A child context (SubType WaitForCallback): create the callback, run the submitter as a
    step, then wait for the answer, as AWS's SDK does.

    ``config.serdes`` reads the callback's answer and stores the submitter's result; without
    one the answer is the raw text sent. The submitter is at-least-once, retried like a step
    (with ``config.retry_strategy`` when ``config`` is a :class:`WaitForCallbackConfig`). A
    submitter that fails for good fails its step and then the context (ErrorType StepError), and
    raises :class:`CallbackSubmitterError` (its cause the StepError). On replay the recorded
    context returns its stored value or raises the same error, without running the submitter.
    """
    config = config or WaitForCallbackConfig()
    name = name or getattr(submitter, "_original_name", None)
    retry_strategy = config.retry_strategy if isinstance(config, WaitForCallbackConfig) else None
    prefix = f"{name} " if name else ""

    def body(ctx_core: ContextCore) -> OpGen:
        cb: Callback = yield from create_callback(ctx_core, f"{prefix}create callback id", config)

        def submit(step_ctx: step.StepContext) -> Any:
            return submitter(cb.callback_id, WaitForCallbackContext(step_ctx.logger))

        yield from step.step(ctx_core, submit, f"{prefix}submitter",
                             StepConfig(retry_strategy=retry_strategy, serdes=config.serdes))
        return cb.result()

    try:
        return (yield from child.run_in_child_context(
            core, body, name, sub_type=config.sub_type or "WaitForCallback",
            serdes=None, inline=True, passthrough=(CallbackExternalError, CallbackTimeoutError, StepError)))
    except StepError as exc:
        raise CallbackSubmitterError(exc.message or "the callback submitter failed",
                                     error_type_name(CallbackSubmitterError), exc.data,
                                     exc.stack_trace) from exc
