"""``context.step``: run a function once, checkpoint its result, retry it by suspending.

Replay: a SUCCEEDED step returns its stored result and a FAILED one raises its stored error,
without running the body. A step whose retry is due runs its next attempt. An at-most-once step
found STARTED (the process died mid-attempt) is not run again for that attempt: it counts as a
failed attempt (``StepInterruptedError``) and the retry strategy decides; an at-least-once step
found STARTED runs its body again (that attempt's START is already on record).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import Any

from durably.core.config import StepConfig, StepSemantics
from durably.core.context_core import ContextCore, OpGen, UserCall, default_name
from durably.core.errors import (
    ExecutionError,
    InvocationError,
    SerDesError,
    StepError,
    StepInterruptedError,
    TimedSuspendExecution,
)
from durably.core.identity import idempotency_key
from durably.core.limits import MAX_OPERATION_PAYLOAD, utf8_size
from durably.core.logger import DurableLogger
from durably.core.model import ErrorObject, Operation, OperationStatus, OperationType
from durably.core.plugins import UserFunctionStartInfo
from durably.core.retries import RetryPresets
from durably.core.serdes import JsonSerDes, SerDes, SerDesContext, return_type

STEP = OperationType.STEP
DEFAULT_RETRY = RetryPresets.default()
PROGRAMMING_ERRORS = (TypeError, NameError, AttributeError, ImportError, SyntaxError, AssertionError,
                      NotImplementedError, RecursionError)
"""Errors that say the code is wrong: a retry cannot fix them, so the default strategy's retries say so."""
DEFAULT_CONFIG = StepConfig()


class StepContext:
    """What a step function receives: a logger bound to the step, the attempt number (from 1), and
    the step's identity (``operation_id``, ``execution_arn``, ``idempotency_key``)."""

    __slots__ = ("_fields", "_key", "_logger", "_parent", "attempt", "execution_arn")

    def __init__(self, parent: DurableLogger, attempt: int, execution_arn: str = "", **fields: Any) -> None:
        self._parent = parent
        self._fields = fields
        self._logger: DurableLogger | None = None
        self._key: str | None = None
        self.attempt = attempt
        self.execution_arn = execution_arn

    @property
    def operation_id(self) -> str:
        return str(self._fields.get("operationId", ""))

    @property
    def idempotency_key(self) -> str:
        """Unique to this step of this execution and the same on every attempt, replay and worker:
        hand it to an API that deduplicates requests (a payment provider), so a step body that runs
        again after a crash does not repeat its effect."""
        return self._key or idempotency_key(self.execution_arn, self.operation_id)

    def with_idempotency_key(self, key: str) -> StepContext:
        """This step context with another ``idempotency_key``: for a layer that runs one logical call
        as several steps (a saga's compensation tried again after a person said *retry*)."""
        other = StepContext(self._parent, self.attempt, self.execution_arn, **self._fields)
        other._key = key
        return other

    @property
    def logger(self) -> DurableLogger:
        """Never suppressed: a step body runs only when it is not being replayed."""
        if self._logger is None:
            self._logger = self._parent.for_running_code(**self._fields, attempt=self.attempt)
        return self._logger

    def __repr__(self) -> str:
        return f"StepContext(attempt={self.attempt}, operation_id={self._fields.get('operationId')!r})"


def stored_error(op: Operation) -> ErrorObject:
    details = op.StepDetails
    return (details.Error if details and details.Error else None) or ErrorObject()


_default_serdes: weakref.WeakKeyDictionary[Any, JsonSerDes] = weakref.WeakKeyDictionary()


def result_serdes(serdes: SerDes[Any] | None, func: Callable[..., Any]) -> SerDes[Any]:
    """``serdes``, or the default JSON serdes for ``func``'s return type (looked up once per function:
    ``get_type_hints`` costs several µs a call, more with string annotations). A wrapper that names
    the function it wraps (``__wrapped__``, as a saga's steps do) shares that function's serdes."""
    if serdes is not None:
        return serdes
    func = getattr(func, "__wrapped__", func)
    try:
        cached = _default_serdes.get(func)
    except TypeError:  # not hashable or not weakly referenceable: no caching
        return JsonSerDes(return_type(func))
    if cached is None:
        cached = JsonSerDes(return_type(func))
        try:
            _default_serdes[func] = cached
        except TypeError:
            pass
    return cached


def encode_result(serdes: SerDes[Any], value: Any, ctx: SerDesContext, what: str,
                  limit: int | None = MAX_OPERATION_PAYLOAD) -> str | None:
    """Serialise an operation's result; raise SerDesError naming ``what`` when it cannot be stored."""
    try:
        payload = serdes.serialize(value, ctx)
    except SerDesError as exc:
        raise SerDesError(f"{what}: {exc}") from exc
    except Exception as exc:
        raise SerDesError(f"{what}: the serdes failed on a {type(value).__qualname__}: {exc}") from exc
    if payload is not None and limit is not None and utf8_size(payload) > limit:
        raise SerDesError(
            f"{what}: the result is {utf8_size(payload)} bytes, over the {limit}-byte "
            "limit for one operation; store large values elsewhere and return a reference"
        )
    return payload


def decode_result(serdes: SerDes[Any], payload: str | None, ctx: SerDesContext, what: str | None = None) -> Any:
    """Read back an operation's stored result; a SerDesError names ``what``, when given."""
    if payload is None:
        return None
    try:
        return serdes.deserialize(payload, ctx)
    except SerDesError as exc:
        if what is None:
            raise
        raise SerDesError(f"{what}: {exc}") from exc


def describe(name: str | None, op_id: str) -> str:
    return f"step {name!r} ({op_id[:12]})" if name else f"step {op_id[:12]}"


SETTLED = frozenset({"SUCCEEDED", "FAILED", "PENDING"})
"""Statuses a replay answers from the history alone, without running the step's body."""


def replayed(core: ContextCore, op: Operation, func: Callable[..., Any], name: str | None,
             config: StepConfig) -> Any:
    """A settled step's stored result; or its stored error, or a suspension until its next attempt."""
    details = op.StepDetails
    if op.Status == "SUCCEEDED":
        return decode_result(result_serdes(config.serdes, func), details.Result if details else None,
                             SerDesContext(op.Id, core.arn), describe(name, op.Id))
    if op.Status == "FAILED":
        raise stored_error(op).to_error(StepError)
    due = (details.NextAttemptTimestamp or 0) / 1000 if details else time.time()
    raise TimedSuspendExecution(f"{describe(name, op.Id)} waits for its next attempt", due)


def step(core: ContextCore, func: Callable[..., Any], name: str | None,
         config: StepConfig | None) -> OpGen:
    config = config or DEFAULT_CONFIG
    op_id = core.next_id()
    name = name if name is not None else default_name(func)
    sub_type = config.sub_type or "Step"
    op = core.existing(op_id, STEP, sub_type, name)
    if op is not None and op.Status in SETTLED:
        return replayed(core, op, func, name, config)
    serdes = result_serdes(config.serdes, func)
    sctx = SerDesContext(op_id, core.arn)

    core.replaying = False
    attempts_done = op.StepDetails.Attempt if op is not None and op.StepDetails else 0
    attempt = attempts_done + 1
    at_most_once = config.step_semantics is StepSemantics.AT_MOST_ONCE_PER_RETRY
    strategy = config.retry_strategy or DEFAULT_RETRY

    def fail(error: BaseException) -> Any:
        decision = strategy(error, attempt) if not isinstance(error, SerDesError) else None
        err = ErrorObject.from_exception(error)
        if decision is not None and decision.should_retry:
            delay = decision.delay.seconds
            _say_retry(core, op_id, name, attempt, error, delay, config.retry_strategy is None)
            core.state.write(core.update(op_id, STEP, "RETRY", sub_type, name, Error=err,
                                         StepOptions={"NextAttemptDelaySeconds": delay}))
            raise TimedSuspendExecution(f"{describe(name, op_id)} retries in {delay}s",
                                        time.time() + delay)
        core.state.write(core.update(op_id, STEP, "FAIL", sub_type, name, Error=err))
        raise err.to_error(StepError)

    if op is not None and op.Status == "STARTED" and at_most_once:
        fail(StepInterruptedError(f"{describe(name, op_id)} was interrupted during attempt {attempt}"))

    start = core.update(op_id, STEP, "START", sub_type, name)
    if op is None or op.Status == "READY":
        if at_most_once:
            core.state.write(start)
        else:
            core.state.queue(start)
    else:
        core.state.rerun(start)

    assert core.logger is not None
    step_ctx = StepContext(core.logger, attempt, core.arn, operationId=op_id, operationName=name)
    plugins = core.state.plugins
    run = plugins.around_user_function(func, UserFunctionStartInfo(
        op_id, STEP, sub_type, name, core.parent_id, None, False, OperationStatus.STARTED, attempt=attempt,
        execution_arn=core.arn)) if plugins.plugins else func
    try:
        value = yield UserCall(run, (step_ctx,))
    except (ExecutionError, InvocationError):
        raise
    except Exception as exc:
        return fail(exc)

    try:
        payload = encode_result(serdes, value, sctx, describe(name, op_id))
    except SerDesError as exc:
        return fail(exc)
    core.state.write(core.update(op_id, STEP, "SUCCEED", sub_type, name, Payload=payload))
    return decode_result(serdes, payload, sctx, describe(name, op_id))


def _say_retry(core: ContextCore, op_id: str, name: str | None, attempt: int, error: BaseException, delay: int,
               default_strategy: bool) -> None:
    """Under the default strategy, a retry of an obvious bug says that retrying will not fix it (logged
    once: a replay does not decide the retry again). Every retry is also in the history, which the
    CLI's progress and the worker's log show."""
    if not (default_strategy and isinstance(error, PROGRAMMING_ERRORS)):
        return
    assert core.logger is not None
    core.logger.for_running_code(operationId=op_id, operationName=name, attempt=attempt).warning(
        "%s failed on attempt %d with %s: %s; this looks like a bug in the code, which retrying will not fix "
        "(attempt %d in %d s); give the step a retry_strategy that stops it, e.g. "
        "StepConfig(retry_strategy=RetryPresets.none())", describe(name, op_id), attempt, type(error).__name__,
        str(error)[:500], attempt + 1, delay)
