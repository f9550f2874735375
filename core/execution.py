"""``durable_execution``: turn a handler ``(event, context)`` into a durable function.

One invocation runs the handler from the top against the recorded operations; it ends
SUCCEEDED (the handler returned), FAILED (it raised), or PENDING (it is blocked on a wait, a
retry, a callback or an invoke, and the engine will invoke it again when that resolves).
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from durably.core.backend import Backend
from durably.core.context import AsyncDurableContext, DurableContext
from durably.core.context_core import ContextCore, run_handler_coroutine
from durably.core.errors import (
    CheckpointError,
    CheckpointFailedError,
    DurableExecutionsError,
    ExecutionError,
    InvocationError,
    SerDesError,
    SuspendExecution,
)
from durably.core.limits import MAX_EXECUTION_RESULT, utf8_size
from durably.core.model import ErrorObject, InvocationOutput, Operation
from durably.core.model import InvocationStatus as InvocationStatus  # where AWS's SDK has it
from durably.core.plugins import InvocationEndInfo, InvocationStartInfo, Plugins
from durably.core.serdes import dumps
from durably.core.state import InvocationState

F = TypeVar("F", bound=Callable[..., Any])

LambdaBackendFactory = Callable[[dict[str, Any], Any], Backend]
_lambda_backend_factory: list[LambdaBackendFactory] = []


def set_lambda_backend_factory(factory: LambdaBackendFactory) -> None:
    """Seam for the AWS integration: how a Lambda invocation envelope reaches its backend."""
    _lambda_backend_factory[:] = [factory]


@dataclass
class InvocationInput:
    """What the engine hands to one invocation (the Lambda envelope, decoded)."""

    durable_execution_arn: str
    checkpoint_token: str
    operations: list[Operation]
    next_marker: str | None = None
    updated_operation_ids: Sequence[str] = field(default_factory=tuple)
    lambda_context: Any = None
    trace_header: str | None = None
    """The trace context the execution was started with (durably's engine; see InvocationStartInfo)."""


class DurableFunction:
    """A handler wrapped by :func:`durable_execution`. Call :meth:`invoke` to run one invocation."""

    def __init__(self, func: Callable[..., Any], plugins: Sequence[Any] = ()) -> None:
        functools.update_wrapper(self, func)
        self.func = func
        self.plugins = tuple(plugins)
        self.is_async = inspect.iscoroutinefunction(func)

    def __call__(self, event: dict[str, Any], lambda_context: Any = None) -> dict[str, Any]:
        """The AWS Lambda entry point: ``event`` is the durable invocation envelope."""
        if not _lambda_backend_factory:
            raise DurableExecutionsError(
                "running on AWS Lambda needs a backend over the Lambda API; install durably[aws] "
                "and import durably.integrations.aws"
            )
        state = event.get("InitialExecutionState") or {}
        inv = InvocationInput(
            durable_execution_arn=event["DurableExecutionArn"],
            checkpoint_token=event["CheckpointToken"],
            operations=[Operation.model_validate(o) for o in state.get("Operations", [])],
            next_marker=state.get("NextMarker") or None,
            updated_operation_ids=event.get("UpdatedOperationIds") or (),
            lambda_context=lambda_context,
        )
        backend = _lambda_backend_factory[0](event, lambda_context)
        return self.invoke(inv, backend).to_wire()

    def invoke(self, inv: InvocationInput, backend: Backend) -> InvocationOutput:
        """Run one invocation of the handler against ``backend``."""
        operations = list(inv.operations)
        marker = inv.next_marker
        while marker:
            page = backend.get_state(inv.durable_execution_arn, inv.checkpoint_token, marker)
            operations.extend(page.Operations)
            marker = page.NextMarker or None
        first = not any(op.Type != "EXECUTION" for op in operations)
        start = InvocationStartInfo(inv.durable_execution_arn, first, tuple(inv.updated_operation_ids),
                                    tuple(operations), inv.trace_header)
        plugins = Plugins.create(self.plugins, start)
        state = InvocationState(inv.durable_execution_arn, inv.checkpoint_token, operations, backend,
                                plugins, inv.updated_operation_ids)
        plugins.emit("on_invocation_start", start)
        try:
            output = self._run(inv, state, operations)
        except CheckpointFailedError as exc:
            raise CheckpointError(str(exc)) from exc.__cause__
        plugins.emit("on_invocation_end", InvocationEndInfo(inv.durable_execution_arn, output.Status, output.Error))
        return output

    def _run(self, inv: InvocationInput, state: InvocationState, operations: list[Operation]) -> InvocationOutput:
        execution_id = inv.durable_execution_arn.rsplit("/", 1)[-1]
        execution_op = state.ops.get(execution_id)
        payload = execution_op.ExecutionDetails.InputPayload if execution_op and execution_op.ExecutionDetails else None
        core = ContextCore(state=state, lambda_context=inv.lambda_context,
                           replaying=any(op.Type != "EXECUTION" for op in operations))
        try:
            event = json.loads(payload) if payload and payload.strip() else {}
        except ValueError as exc:
            return _failed(SerDesError(f"the execution input is not JSON: {exc}"))
        try:
            if self.is_async:
                result = run_handler_coroutine(self.func(event, AsyncDurableContext(core)))
            else:
                result = self.func(event, DurableContext(core))
            state.write()
        except SuspendExecution:
            state.write()
            return InvocationOutput(Status=InvocationStatus.PENDING)
        except InvocationError:
            raise
        except ExecutionError as exc:
            return _failed(exc)
        except Exception as exc:
            state.write()
            return _failed(exc)
        try:
            text = dumps(result)
        except (TypeError, ValueError) as exc:
            return _failed(SerDesError(
                f"the handler returned a {type(result).__qualname__}, which cannot be stored as JSON: {exc}"))
        if utf8_size(text) > MAX_EXECUTION_RESULT:
            return _failed(SerDesError(
                f"the execution result is {utf8_size(text)} bytes, over the {MAX_EXECUTION_RESULT}-byte limit"))
        return InvocationOutput(Status=InvocationStatus.SUCCEEDED, Result=text)


def _failed(exc: BaseException) -> InvocationOutput:
    return InvocationOutput(Status=InvocationStatus.FAILED, Error=ErrorObject.from_exception(exc))


@overload
def durable_execution(func: F) -> DurableFunction: ...
@overload
def durable_execution(*, plugins: Sequence[Any] = (), boto3_client: Any = None) -> Callable[[F], DurableFunction]: ...


def durable_execution(func: Any = None, *, plugins: Sequence[Any] = (), boto3_client: Any = None) -> Any:
    """Decorate a handler ``(event, context)``; ``async def`` handlers get an ``AsyncDurableContext``."""
    def wrap(f: Callable[..., Any]) -> DurableFunction:
        return f if isinstance(f, DurableFunction) else DurableFunction(f, plugins)
    return wrap(func) if func is not None else wrap


def durable_step(func: Callable[..., Any]) -> Callable[..., Callable[..., Any]]:
    """``@durable_step def f(step_ctx, *args)``: ``f(*args)`` is a step function named ``f``."""
    return _binder(func)


def durable_with_child_context(func: Callable[..., Any]) -> Callable[..., Callable[..., Any]]:
    """``@durable_with_child_context def g(ctx, *args)``: ``g(*args)`` for ``run_in_child_context``."""
    return _binder(func)


def durable_wait_for_callback(func: Callable[..., Any]) -> Callable[..., Callable[..., Any]]:
    """``@durable_wait_for_callback def s(callback_id, wctx, *args)``: ``s(*args)`` is a submitter
    for ``wait_for_callback``, named ``s``."""
    return _binder(func, leading=2)


def _binder(func: Callable[..., Any], leading: int = 1) -> Callable[..., Callable[..., Any]]:
    """Bind the trailing arguments now; the runtime supplies the ``leading`` ones later."""
    is_async = inspect.iscoroutinefunction(func)

    @functools.wraps(func)
    def bind(*args: Any, **kwargs: Any) -> Callable[..., Any]:
        if is_async:
            async def call_async(*first: Any) -> Any:
                return await func(*first[:leading], *args, **kwargs)
            call: Any = call_async
        else:
            def call_sync(*first: Any) -> Any:
                return func(*first[:leading], *args, **kwargs)
            call = call_sync
        call._original_name = func.__name__
        call.__wrapped__ = func
        return call  # type: ignore[no-any-return]

    return bind
