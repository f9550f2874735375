"""``context.run_in_child_context``: a group of operations checkpointed as one CONTEXT.

Replay: a completed child returns its stored result without running its function, and a failed
one raises its stored error. A child whose result was too large to store (over 256 KiB,
ReplayChildren) runs its function again; its operations then replay from their own checkpoints
and nothing new is written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from durably.core.context_core import ContextCore, OpGen, UserCall, default_name
from durably.core.errors import (
    ChildContextError,
    DurableOperationError,
    ExecutionError,
    InvocationError,
    SerDesError,
    error_type_name,
)
from durably.core.limits import REPLAY_CHILDREN_THRESHOLD, utf8_size
from durably.core.model import ErrorObject, OperationType
from durably.core.operation.step import decode_result, encode_result, result_serdes
from durably.core.serdes import SerDes, SerDesContext

CONTEXT = OperationType.CONTEXT


def _raise_failure(error: ErrorObject, passthrough: tuple[type[DurableOperationError], ...]) -> NoReturn:
    """Raise the recorded failure: as the passthrough error it names, or as a ChildContextError."""
    for cls in passthrough:
        if error.ErrorType == error_type_name(cls):
            raise error.to_error(cls)
    raise error.to_error(ChildContextError)


def run_in_child_context(
    core: ContextCore,
    func: Callable[..., Any],
    name: str | None,
    *,
    sub_type: str = "RunInChildContext",
    serdes: SerDes[Any] | None = None,
    summary_generator: Callable[[Any], str] | None = None,
    inline: bool = False,
    passthrough: tuple[type[DurableOperationError], ...] = (),
    op_id: str | None = None,
    args: tuple[Any, ...] = (),
) -> OpGen:
    """Run ``func`` in a child context.

    ``func`` is user code receiving a context, or, with ``inline``, an operation generator
    receiving the child's core. ``passthrough`` errors are raised as themselves instead of
    being wrapped in :class:`ChildContextError`. ``op_id`` and ``args`` (passed to ``func``
    after the context) are given by map and parallel, whose branch ids come from the item index.
    """
    op_id = op_id or core.next_id()
    if name is None and not inline:
        name = default_name(func)
    op = core.existing(op_id, CONTEXT, sub_type, name)
    codec = result_serdes(serdes, func)
    sctx = SerDesContext(op_id, core.arn)
    replay_children = False
    rerun_failure: ErrorObject | None = None
    if op is not None:
        details = op.ContextDetails
        if op.Status == "SUCCEEDED":
            if not (details and details.ReplayChildren):
                return decode_result(codec, details.Result if details else None, sctx)
            replay_children = True
        elif op.Status == "FAILED":
            error = (details.Error if details else None) or ErrorObject()
            if not passthrough:
                _raise_failure(error, passthrough)
            # An inline body's own operations are all recorded: running it again raises the very
            # error the first run raised (with its original error_type), and writes nothing.
            rerun_failure = error
    else:
        core.replaying = False
        core.state.queue(core.update(op_id, CONTEXT, "START", sub_type, name))

    child_core = core.child(op_id)
    try:
        if inline:
            value = yield from func(child_core)
        else:
            value = yield UserCall(func, args, child=child_core)
    except (ExecutionError, InvocationError):
        raise
    except Exception as exc:
        if replay_children:
            raise
        if rerun_failure is not None:
            if isinstance(exc, passthrough):
                raise
            _raise_failure(rerun_failure, passthrough)
        error = ErrorObject.from_exception(exc)
        core.state.write(core.update(op_id, CONTEXT, "FAIL", sub_type, name, Error=error))
        if isinstance(exc, passthrough):
            raise
        _raise_failure(error, ())
    if rerun_failure is not None:
        _raise_failure(rerun_failure, passthrough)

    what = f"child context {name!r}" if name else f"child context {op_id[:12]}"
    try:
        payload = encode_result(codec, value, sctx, what, limit=None)
    except SerDesError as exc:
        if replay_children:
            raise
        error = ErrorObject.from_exception(exc)
        core.state.write(core.update(op_id, CONTEXT, "FAIL", sub_type, name, Error=error))
        _raise_failure(error, ())
    if replay_children:
        return decode_result(codec, payload, sctx)
    if payload is not None and utf8_size(payload) > REPLAY_CHILDREN_THRESHOLD:
        summary = summary_generator(value) if summary_generator else ""
        core.state.write(core.update(op_id, CONTEXT, "SUCCEED", sub_type, name, Payload=summary,
                                     ContextOptions={"ReplayChildren": True}))
        return decode_result(codec, payload, sctx)
    core.state.write(core.update(op_id, CONTEXT, "SUCCEED", sub_type, name, Payload=payload))
    return decode_result(codec, payload, sctx)
