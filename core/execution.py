"""``durable_execution``: turn a handler ``(event, context)`` into a durable function.

One invocation runs the handler from the top against the recorded operations; it ends
SUCCEEDED (the handler returned), FAILED (it raised), or PENDING (it is blocked on a wait, a
retry, a callback or an invoke, and the engine will invoke it again when that resolves).
"""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from durably.core.backend import Backend, ReplayCheck
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
from durably.core.limits import INLINE_EXECUTION_RESULT, MAX_EXECUTION_RESULT, utf8_size
from durably.core.model import ErrorObject, InvocationOutput, Operation, OperationUpdate
from durably.core.model import InvocationStatus as InvocationStatus  # where AWS's SDK has it
from durably.core.plugins import (
    NO_PLUGINS,
    InvocationEndInfo,
    InvocationStartInfo,
    Plugins,
    has_global_plugins,
    operation_infos,
    validate_plugins,
)
from durably.core.plugins import InvocationStatus as PluginInvocationStatus
from durably.core.records import OperationRecords
from durably.core.serdes import dumps
from durably.core.state import InvocationState

F = TypeVar("F", bound=Callable[..., Any])

LambdaBackendFactory = Callable[[Any], Backend]
"""Makes the backend of one Lambda invocation from the handler's ``boto3_client`` (or None)."""
LAMBDA_BACKENDS = "durably.lambda_backends"
"""The entry-point group a Lambda backend factory is found in when none was set."""
_lambda_backend_factory: list[LambdaBackendFactory] = []


def set_lambda_backend_factory(factory: LambdaBackendFactory) -> None:
    """Seam for the AWS integration: how a Lambda invocation reaches its backend."""
    _lambda_backend_factory[:] = [factory]


def _lambda_backend(boto3_client: Any) -> Backend:
    if not _lambda_backend_factory:
        for entry in importlib.metadata.entry_points(group=LAMBDA_BACKENDS):
            try:
                set_lambda_backend_factory(entry.load())
            except ImportError as exc:
                raise DurableExecutionsError(
                    f"running on AWS Lambda needs durably[aws] (boto3): {exc}") from exc
            break
        else:
            raise DurableExecutionsError(
                "running on AWS Lambda needs a backend over the Lambda API: install durably[aws]")
    return _lambda_backend_factory[0](boto3_client)


@dataclass
class InvocationInput:
    """What the engine hands to one invocation (the Lambda envelope, decoded)."""

    durable_execution_arn: str
    checkpoint_token: str
    operations: list[Operation] | OperationRecords
    """The recorded operations (the embedded engine hands their stored documents, decoded as read)."""
    next_marker: str | None = None
    updated_operation_ids: Sequence[str] = field(default_factory=tuple)
    lambda_context: Any = None
    trace_header: str | None = None
    """The trace context the execution was started with (durably's engine; see InvocationStartInfo)."""
    replay_check: ReplayCheck | None = None
    """Set by a replay check (:mod:`durably.core.replay_check`): the invocation writes nothing."""


class DurableFunction:
    """A handler wrapped by :func:`durable_execution`. Call :meth:`invoke` to run one invocation."""

    def __init__(self, func: Callable[..., Any], plugins: Sequence[Any] = (), boto3_client: Any = None) -> None:
        functools.update_wrapper(self, func)
        self.func = func
        self.plugins = validate_plugins(plugins)
        self.boto3_client = boto3_client
        self.is_async = inspect.iscoroutinefunction(func)

    def __call__(self, event: dict[str, Any], lambda_context: Any = None) -> dict[str, Any]:
        """The AWS Lambda entry point: ``event`` is the durable invocation envelope.

        A transient failure (a checkpoint refused for a stale token, throttling that outlasted the
        retries) raises, so that Lambda invokes the handler again; anything else is in the output.
        """
        if not isinstance(event, dict) or "DurableExecutionArn" not in event or "CheckpointToken" not in event:
            raise ExecutionError(
                "this event is not a durable invocation (no DurableExecutionArn / CheckpointToken): deploy the "
                "function with a DurableConfig and let Lambda invoke it")
        backend = _lambda_backend(self.boto3_client)
        state = event.get("InitialExecutionState") or {}
        inv = InvocationInput(
            durable_execution_arn=event["DurableExecutionArn"],
            checkpoint_token=event["CheckpointToken"],
            operations=[Operation.model_validate(o) for o in state.get("Operations", [])],
            next_marker=state.get("NextMarker") or None,
            updated_operation_ids=event.get("UpdatedOperationIds") or (),
            lambda_context=lambda_context,
        )
        return self.invoke(inv, backend).to_wire()

    def invoke(self, inv: InvocationInput, backend: Backend) -> InvocationOutput:
        """Run one invocation of the handler against ``backend``."""
        operations = (inv.operations if isinstance(inv.operations, OperationRecords)
                      else OperationRecords.of(inv.operations))
        marker = inv.next_marker
        while marker:
            try:
                page = backend.get_state(inv.durable_execution_arn, inv.checkpoint_token, marker)
            except ExecutionError as exc:  # refused for good (a transient failure raises, to be invoked again)
                return _failed(exc)
            operations.extend(page.Operations)
            marker = page.NextMarker or None
        first = operations.only_execution()
        start = _start_info(inv, list(operations.values()), first) if self.plugins or has_global_plugins() else None
        plugins = Plugins.create(self.plugins, start) if start is not None else NO_PLUGINS
        state = InvocationState(inv.durable_execution_arn, inv.checkpoint_token, operations, backend,
                                plugins, inv.updated_operation_ids, inv.replay_check)
        plugins.emit("on_invocation_start", start)
        try:
            output = self._run(inv, state, replaying=not first)
        except CheckpointFailedError as exc:
            if not isinstance(exc.__cause__, ExecutionError):
                self._end_retried(start, state, plugins, exc)
                raise CheckpointError(str(exc)) from exc.__cause__
            output = _failed(exc.__cause__)  # refused for good: no new invocation can help
        except BaseException as exc:
            self._end_retried(start, state, plugins, exc)
            raise
        if start is not None:
            state.end_unobserved()
            plugins.emit("on_invocation_end", _end_info(start, state, PluginInvocationStatus(output.Status.value),
                                                        output.Error, output.Result))
        return output

    @staticmethod
    def _end_retried(start: InvocationStartInfo | None, state: InvocationState, plugins: Plugins,
                     exc: BaseException) -> None:
        """The invocation raises (Lambda invokes it again): plugins hear it ended RETRY."""
        if start is not None:
            state.end_unobserved()
            plugins.emit("on_invocation_end", _end_info(start, state, PluginInvocationStatus.RETRY,
                                                        ErrorObject.from_exception(exc)))

    def _run(self, inv: InvocationInput, state: InvocationState, replaying: bool) -> InvocationOutput:
        execution_id = inv.durable_execution_arn.rsplit("/", 1)[-1]
        execution_op = state.ops.get(execution_id)
        payload = execution_op.ExecutionDetails.InputPayload if execution_op and execution_op.ExecutionDetails else None
        core = ContextCore(state=state, lambda_context=inv.lambda_context,
                           replaying=replaying)
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
        size = utf8_size(text)
        if size > MAX_EXECUTION_RESULT:
            return _failed(SerDesError(
                f"the execution result is {size} bytes, over the {MAX_EXECUTION_RESULT}-byte limit"))
        if size > INLINE_EXECUTION_RESULT:
            # The service accepts an EXECUTION update under an Id of its own (PROTOCOL.md 1.4).
            state.write(OperationUpdate(Id=f"execution-result-{time.time_ns() // 1_000_000}", Type="EXECUTION",
                                        Action="SUCCEED", Payload=text))
            return InvocationOutput(Status=InvocationStatus.SUCCEEDED, Result="")
        return InvocationOutput(Status=InvocationStatus.SUCCEEDED, Result=text)


def _start_info(inv: InvocationInput, operations: list[Operation], first: bool) -> InvocationStartInfo:
    """What the plugins learn of an invocation as it starts."""
    infos = operation_infos(operations, inv.durable_execution_arn)
    execution = infos.get(inv.durable_execution_arn.rsplit("/", 1)[-1])
    return InvocationStartInfo(
        getattr(inv.lambda_context, "aws_request_id", None), inv.durable_execution_arn, first,
        execution.start_time if execution else None, execution_input=_decoded_input(operations),
        operations=infos, records=tuple(operations), trace_header=inv.trace_header,
        updated_operations={op_id: infos[op_id] for op_id in inv.updated_operation_ids if op_id in infos})


def _decoded_input(operations: list[Operation]) -> Any:
    """The execution's input as the handler gets it (None when it is not JSON)."""
    for op in operations:
        if op.Type == "EXECUTION" and op.ExecutionDetails and op.ExecutionDetails.InputPayload:
            try:
                return json.loads(op.ExecutionDetails.InputPayload)
            except ValueError:
                return None
    return {}


def _end_info(start: InvocationStartInfo, state: InvocationState, status: PluginInvocationStatus,
              error: ErrorObject | None, result: str | None = None) -> InvocationEndInfo:
    """What the plugins learn of an invocation as it ends: its outcome and the operations now recorded."""
    records = tuple(state.ops.values())
    return InvocationEndInfo(
        start.request_id, start.execution_arn, start.is_first_invocation, start.execution_start_time,
        execution_input=start.execution_input, operations=operation_infos(records, start.execution_arn),
        records=records, trace_header=start.trace_header, status=status, error=error, execution_result=result)


def _failed(exc: BaseException) -> InvocationOutput:
    return InvocationOutput(Status=InvocationStatus.FAILED, Error=ErrorObject.from_exception(exc))


@overload
def durable_execution(func: F) -> DurableFunction: ...
@overload
def durable_execution(*, plugins: Sequence[Any] = (), boto3_client: Any = None) -> Callable[[F], DurableFunction]: ...


def durable_execution(func: Any = None, *, plugins: Sequence[Any] = (), boto3_client: Any = None) -> Any:
    """Decorate a handler ``(event, context)``; ``async def`` handlers get an ``AsyncDurableContext``."""
    def wrap(f: Callable[..., Any]) -> DurableFunction:
        return f if isinstance(f, DurableFunction) else DurableFunction(f, plugins, boto3_client)
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
