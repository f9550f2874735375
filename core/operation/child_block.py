"""``with context.in_child_context(name) as child:``: a child context around a block of code.

The block's operations are checkpointed under one CONTEXT operation, as with
``run_in_child_context``, so layers built on core (a saga) can give a block of user code its own
place and SubType in the history. Replay: a block cannot be skipped, so it runs again; its
operations return their recorded results, and the code between them runs again, as a handler's
does. The CONTEXT ends SUCCEEDED (without a result) when the block ends, FAILED with the error when
it raises; the error itself propagates unchanged, on the first run and on replay alike.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Generic, Literal, TypeVar

from durably.core.context_core import ContextCore
from durably.core.errors import ExecutionError, InvocationError
from durably.core.model import ErrorObject, OperationType

C = TypeVar("C")
CONTEXT = OperationType.CONTEXT


class ChildContextBlock(Generic[C]):
    """The context manager returned by ``in_child_context``; ``C`` is the child context's flavour."""

    def __init__(self, core: ContextCore, name: str | None, sub_type: str, wrap: Callable[[ContextCore], C]) -> None:
        self._core = core
        self._name = name
        self._sub_type = sub_type
        self._wrap = wrap
        self._op_id = ""
        self._recorded = False

    def __enter__(self) -> C:
        core = self._core
        self._op_id = core.next_id()
        op = core.existing(self._op_id, CONTEXT, self._sub_type, self._name)
        self._recorded = op is not None and op.is_terminal
        if op is None:
            core.replaying = False
            core.state.queue(core.update(self._op_id, CONTEXT, "START", self._sub_type, self._name))
        return self._wrap(core.child(self._op_id))

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        if self._recorded:
            return False
        core = self._core
        if exc is None:
            core.state.write(core.update(self._op_id, CONTEXT, "SUCCEED", self._sub_type, self._name))
        elif isinstance(exc, Exception) and not isinstance(exc, ExecutionError | InvocationError):
            core.state.write(core.update(self._op_id, CONTEXT, "FAIL", self._sub_type, self._name,
                                         Error=ErrorObject.from_exception(exc)))
        return False

    async def __aenter__(self) -> C:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> Literal[False]:
        return self.__exit__(exc_type, exc, tb)
