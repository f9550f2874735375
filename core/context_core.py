"""Shared machinery of the sync and async contexts: ids, identity checks, and the drivers.

Each operation is written once, as a generator that yields :class:`UserCall` whenever user code
must run. :func:`drive_sync` runs those calls in the calling thread (an ``async def`` on a
private event loop); :func:`drive_async` awaits them (a plain function in a worker thread).
"""

from __future__ import annotations

import contextvars
import inspect
import itertools
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from durably.core.concurrency import Concurrently, run_async, run_sync
from durably.core.errors import NonDeterministicExecutionError, OrphanedChildException
from durably.core.identity import operation_id
from durably.core.logger import DurableLogger
from durably.core.model import Operation, OperationType, OperationUpdate
from durably.core.state import InvocationState


@dataclass
class UserCall:
    """A request from an operation to run user code: ``func(*args)``.

    When ``child`` is set, the first argument is a context built over that core, of the same
    flavour (sync or async) as the driver.
    """

    func: Callable[..., Any]
    args: tuple[Any, ...] = ()
    child: ContextCore | None = None


OpGen = Generator["UserCall | Concurrently", Any, Any]


@dataclass
class ContextCore:
    """One context's place in the operation tree."""

    state: InvocationState
    prefix: str | None = None
    parent_id: str | None = None
    replaying: bool = False
    lambda_context: Any = None
    logger: DurableLogger | None = None
    orphaned: threading.Event | None = None
    """Set when the map/parallel this context belongs to completed without it."""
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _last: int = 0

    def __post_init__(self) -> None:
        if self.logger is None:
            self.logger = DurableLogger(self.is_replaying, {"executionArn": self.state.arn})

    @property
    def arn(self) -> str:
        return self.state.arn

    def next_id(self) -> str:
        self._last = next(self._counter)
        return operation_id(self.prefix, self._last)

    def is_replaying(self) -> bool:
        """True while the code runs over operations that a previous invocation already recorded."""
        if self.replaying and operation_id(self.prefix, self._last + 1) not in self.state.ops:
            self.replaying = False
        return self.replaying

    def child(self, op_id: str, *, checkpointed: bool = True) -> ContextCore:
        """The core of a child context whose operations hash under ``op_id``.

        A virtual child (``checkpointed=False``) reports the nearest checkpointed ancestor as
        the ParentId of its operations.
        """
        assert self.logger is not None
        core = ContextCore(
            state=self.state, prefix=op_id, parent_id=op_id if checkpointed else self.parent_id,
            replaying=self.replaying, lambda_context=self.lambda_context, logger=self.logger,
            orphaned=self.orphaned,
        )
        core.logger = DurableLogger(core.is_replaying, {"executionArn": self.arn, "parentId": op_id},
                                    self.logger.base, self.logger.mode_aware)
        return core

    def existing(self, op_id: str, op_type: OperationType, sub_type: str | None,
                 name: str | None) -> Operation | None:
        """The recorded operation at ``op_id``, after checking it is the one the code asks for."""
        op = self.state.ops.get(op_id)
        if op is None:
            return None
        if (op.Type != op_type or op.SubType != sub_type or (op.Name or None) != (name or None)
                or op.ParentId != self.parent_id):
            self._mismatch(op, op_type, sub_type, name)
        self.state.observe_replayed(op)
        return op

    def _mismatch(self, op: Operation, op_type: OperationType, sub_type: str | None, name: str | None) -> None:
        """Raise for the first identity field of ``op`` that differs from what the code asks for."""
        for what, recorded, current in (
            ("type", op.Type, op_type),
            ("subtype", op.SubType, sub_type),
            ("name", op.Name or None, name or None),
            ("parent", op.ParentId, self.parent_id),
        ):
            if recorded != current:
                recorded, current = _shown(recorded), _shown(current)
                message = (
                    f"Non-deterministic operation identity at id={op.Id!r} (recorded as "
                    f"{_shown(op.Type)} {op.Name!r}): {what} "
                    f"checkpoint={recorded!r} current={current!r}. The code no longer matches "
                    "the execution's history; deploy such a change under a new function name "
                    "or let running executions finish first."
                )
                if self.state.replay_check is not None:
                    self.state.replay_check.diverged(op, _validate_update({
                        "Id": op.Id, "ParentId": self.parent_id, "Name": name, "Type": op_type,
                        "SubType": sub_type, "Action": "START"}), message)
                raise NonDeterministicExecutionError(message)

    def update(self, op_id: str, op_type: OperationType, action: str, sub_type: str | None,
               name: str | None, **fields: Any) -> OperationUpdate:
        if self.orphaned is not None and self.orphaned.is_set():
            raise OrphanedChildException(f"operation {op_id} belongs to a batch that already completed")
        return _validate_update({
            "Id": op_id, "ParentId": self.parent_id, "Name": name, "Type": op_type,
            "SubType": sub_type, "Action": action, **fields,
        })


_validate_update: Callable[[dict[str, Any]], OperationUpdate] = OperationUpdate.__pydantic_validator__.validate_python
"""``OperationUpdate.model_validate`` without its Python layer (a third of its cost)."""


def _shown(value: Any) -> Any:
    """An identity field as the history spells it (enum members by their value)."""
    return getattr(value, "value", value)


def default_name(func: Callable[..., Any]) -> str | None:
    """The name an operation gets when none is given: the decorated or plain function's name."""
    name = getattr(func, "_original_name", None) or getattr(func, "__name__", None)
    return None if name in (None, "<lambda>") else str(name)


_private_loop = threading.local()


def _run_coroutine(coro: Any) -> Any:
    import asyncio  # only when an async step runs in a plain handler (asyncio brings ssl: MiBs)

    if asyncio._get_running_loop() is not None:
        return _run_on_own_thread(coro)
    loop = getattr(_private_loop, "loop", None)
    if loop is None or loop.is_closed():
        loop = _private_loop.loop = asyncio.new_event_loop()
    return loop.run_until_complete(coro)


def run_handler_coroutine(coro: Any) -> Any:
    """``asyncio.run(coro)``, also when this thread already runs an event loop (a notebook, an
    async app): then ``coro`` runs on a fresh loop in a thread of its own."""
    import asyncio  # only async handlers pay for it (asyncio brings ssl: several MiB)

    if asyncio._get_running_loop() is not None:
        return _run_on_own_thread(coro)
    return asyncio.run(coro)


def _run_on_own_thread(coro: Any) -> Any:
    """``asyncio.run(coro)`` on a new thread, in a copy of the caller's context; what it raises
    (a ``SuspendExecution`` too) is raised here unchanged."""
    import asyncio

    context = contextvars.copy_context()
    outcome: list[tuple[bool, Any]] = []

    def target() -> None:
        try:
            outcome.append((True, context.run(asyncio.run, coro)))
        except BaseException as exc:
            outcome.append((False, exc))

    thread = threading.Thread(target=target, name="durably-event-loop")
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


_PLAIN_VALUES = frozenset({type(None), bool, int, float, str, bytes, list, tuple, dict})
"""Results that are never awaitable: ``inspect.isawaitable`` costs several times their check."""


def drive_sync(gen: OpGen, wrap: Callable[[ContextCore], Any]) -> Any:
    """Run an operation generator, executing user code in the calling thread."""
    try:
        call = next(gen)
        while True:
            try:
                if isinstance(call, Concurrently):
                    value = run_sync(call, lambda branch: drive_sync(branch, wrap))
                else:
                    args = (wrap(call.child), *call.args) if call.child is not None else call.args
                    value = call.func(*args)
                    if type(value) not in _PLAIN_VALUES and inspect.isawaitable(value):
                        value = _run_coroutine(value)
            except BaseException as exc:
                call = gen.throw(exc)
            else:
                call = gen.send(value)
    except StopIteration as stop:
        return stop.value


async def drive_async(gen: OpGen, wrap: Callable[[ContextCore], Any],
                      wrap_sync: Callable[[ContextCore], Any]) -> Any:
    """Run an operation generator, awaiting user code (plain functions run in a worker thread).

    A plain function that receives a context gets the sync flavour, since it runs in a thread.
    """
    try:
        call = next(gen)
        while True:
            try:
                value = await _run_async_call(call, wrap, wrap_sync)
            except BaseException as exc:
                call = gen.throw(exc)
            else:
                call = gen.send(value)
    except StopIteration as stop:
        return stop.value


async def _run_async_call(call: UserCall | Concurrently, wrap: Callable[[ContextCore], Any],
                          wrap_sync: Callable[[ContextCore], Any]) -> Any:
    if isinstance(call, Concurrently):
        return await run_async(call, lambda branch: drive_async(branch, wrap, wrap_sync))
    is_async = inspect.iscoroutinefunction(call.func)
    if call.child is not None:
        args = ((wrap if is_async else wrap_sync)(call.child), *call.args)
    else:
        args = call.args
    if is_async:
        return await call.func(*args)
    import asyncio  # already loaded: this runs on an event loop

    value = await asyncio.to_thread(call.func, *args)
    if inspect.isawaitable(value):
        value = await value
    return value
