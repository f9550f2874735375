"""The instrumentation plugin API: hooks around invocations, operations and user functions.

Register with ``@durable_execution(plugins=[factory_or_plugin, ...])``. A factory (AWS's form)
has ``create_plugin(info) -> plugin`` and is asked once per invocation; a plugin instance is used
as it is. Anything else is refused when the handler is decorated (:func:`validate_plugins`).
Every hook of every plugin is called; an exception raised by a hook is logged and swallowed, so
a plugin can never change an execution: the first one of each plugin class and hook in this
process at WARNING with its traceback, the later ones at DEBUG.

An operation's end hook runs once: in the invocation that finished it, or, for one the engine
finished while the execution was suspended (a wait that elapsed, a callback answered, an invoke
that ended), in the next invocation: when the code replays it, or before ``on_invocation_end`` if
no code reaches it. Work that is only replayed fires no other operation hooks, except
``on_operation_start`` (``is_replayed=True``) once for an unfinished operation met on replay.

``on_operation_recorded`` is durably's own hook (the others are AWS's): it fires once the engine
has recorded an operation's new state, with that record (its timestamps, attempt, error), so a
plugin can build what it reports from the durable record itself. Plugins registered with
:func:`register_global_plugin` join those of every handler in the process.
"""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self

from durably.core.errors import PluginLoadError
from durably.core.model import ErrorObject, Operation, OperationStatus, OperationType, OperationUpdate

_log = logging.getLogger("durably.plugins")
_warned: set[tuple[type, str]] = set()
"""The (plugin class, hook) pairs whose error this process already logged at WARNING."""
_warned_lock = threading.Lock()


class InvocationStatus(StrEnum):
    """How an invocation ended, as the plugin hooks report it (RETRY: it raised, the engine retries)."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    PENDING = "PENDING"
    RETRY = "RETRY"


class UserFunctionOutcome(StrEnum):
    """How one run of user code ended (INCOMPLETE: it suspended, or was cut off)."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    INCOMPLETE = "INCOMPLETE"


def _time(epoch_ms: int | None) -> datetime.datetime | None:
    return None if epoch_ms is None else datetime.datetime.fromtimestamp(epoch_ms / 1000, datetime.UTC)


@dataclass(frozen=True)
class OperationInfo:
    """An operation as the hooks see it; the fields and their order are AWS's."""

    operation_id: str
    """Equal to the history event's ``Id``."""
    operation_type: OperationType
    sub_type: str | None
    name: str | None
    parent_id: str | None
    start_time: datetime.datetime | None
    is_replayed: bool
    status: OperationStatus
    """STARTED for a start hook; the terminal status for an end hook."""
    end_time: datetime.datetime | None = field(default=None, kw_only=True)
    result: str | None = field(default=None, kw_only=True)
    """The serialised result, when there is one."""
    error: ErrorObject | None = field(default=None, kw_only=True)
    attempt: int | None = field(default=None, kw_only=True)
    execution_arn: str | None = field(default=None, kw_only=True)
    """The execution's ARN (durably's addition)."""

    @classmethod
    def from_operation(cls, op: Operation, *, is_replayed: bool = False,
                       execution_arn: str | None = None) -> Self:
        """The info of a recorded operation (a copy: a plugin cannot change the record)."""
        details = op.StepDetails or op.CallbackDetails or op.ChainedInvokeDetails or op.ContextDetails
        error = details.Error if details is not None else None
        return cls(op.Id, OperationType(op.Type), op.SubType, op.Name, op.ParentId, _time(op.StartTimestamp),
                   is_replayed, OperationStatus(op.Status), end_time=_time(op.EndTimestamp),
                   result=details.Result if details is not None else None,
                   error=error.model_copy(deep=True) if error is not None else None,
                   attempt=op.StepDetails.Attempt if op.StepDetails else None, execution_arn=execution_arn)


@dataclass(frozen=True)
class OperationStartInfo(OperationInfo):
    pass


@dataclass(frozen=True)
class OperationEndInfo(OperationInfo):
    pass


@dataclass(frozen=True)
class OperationChangeInfo:
    """Operations whose status a checkpoint changed, and the whole map after it."""

    execution_arn: str | None
    updated_operations: dict[str, OperationInfo]
    operations: dict[str, OperationInfo]


@dataclass(frozen=True)
class UserFunctionStartInfo(OperationInfo):
    is_replay_children: bool = False


@dataclass(frozen=True)
class UserFunctionEndInfo(OperationInfo):
    is_replay_children: bool
    outcome: UserFunctionOutcome


def operation_infos(ops: Iterable[Operation], arn: str | None = None) -> dict[str, OperationInfo]:
    """The hooks' view of recorded operations, keyed by id."""
    return {op.Id: OperationInfo.from_operation(op, execution_arn=arn) for op in ops}


@dataclass(frozen=True)
class InvocationInfo:
    request_id: str | None
    execution_arn: str | None
    is_first_invocation: bool
    execution_start_time: datetime.datetime | None = None
    execution_input: Any = field(default=None, kw_only=True, repr=False, compare=False, hash=False)
    """The decoded execution input."""
    operations: dict[str, OperationInfo] = field(default_factory=dict, kw_only=True, repr=False, compare=False,
                                                 hash=False)
    """The execution's operations: as loaded at the start, as recorded at the end."""
    records: tuple[Operation, ...] = field(default=(), kw_only=True, repr=False, compare=False, hash=False)
    """The same operations as durably's own records (durably's addition)."""
    trace_header: str | None = field(default=None, kw_only=True)
    """The trace context the execution was started with, on durably's engine: the caller's W3C
    ``traceparent``, or the X-Ray header a chained invoke passed (``XAmznTraceId``). (durably's addition)"""


@dataclass(frozen=True)
class InvocationStartInfo(InvocationInfo):
    updated_operations: dict[str, OperationInfo] = field(default_factory=dict, kw_only=True, repr=False,
                                                         compare=False, hash=False)
    """The operations the engine changed while the execution was suspended (a wait that elapsed, a
    callback answered, a retry timer that fired, an invoke that ended)."""


@dataclass(frozen=True)
class InvocationEndInfo(InvocationInfo):
    status: InvocationStatus = field(kw_only=True)
    error: ErrorObject | None = None
    execution_result: str | None = field(default=None, kw_only=True, repr=False, compare=False, hash=False)
    """The serialised execution result (None unless SUCCEEDED)."""


@dataclass(frozen=True)
class RecordedOperation:
    """An operation's state as the engine just recorded it (``on_operation_recorded``)."""

    execution_arn: str
    operation: Operation
    action: str
    """The update this invocation checkpointed: START, SUCCEED, FAIL, RETRY or CANCEL. (Operations the
    engine finished while the execution was suspended are ``InvocationStartInfo.updated_operations``,
    their records in ``InvocationStartInfo.records``.)"""


@dataclass(frozen=True)
class PropagationInput:
    """A chained invoke about to start (``provide_propagation_metadata``)."""

    execution_arn: str
    operation_id: str
    target_function_name: str
    parent_operation_id: str | None = None


@dataclass(frozen=True)
class PropagationMetadata:
    """What a plugin passes to an invoked execution: the ``XAmznTraceId`` of its START."""

    x_amzn_trace_id: str | None = None


class DurableInstrumentationPlugin:
    """Base class with no-op hooks; override the ones you need."""

    def on_invocation_start(self, info: InvocationStartInfo) -> None: ...
    def on_invocation_end(self, info: InvocationEndInfo) -> None: ...
    def on_operation_start(self, info: OperationStartInfo) -> None: ...
    def on_operation_end(self, info: OperationEndInfo) -> None: ...
    def on_operation_change(self, info: OperationChangeInfo) -> None: ...
    def on_user_function_start(self, info: UserFunctionStartInfo) -> None: ...
    def on_user_function_end(self, info: UserFunctionEndInfo) -> None: ...
    def on_operation_recorded(self, info: RecordedOperation) -> None: ...
    def provide_propagation_metadata(self, info: PropagationInput) -> PropagationMetadata | None: ...


_global_plugins: list[Any] = []


def register_global_plugin(plugin: Any) -> None:
    """Add ``plugin`` (a plugin, or a factory with ``create_plugin``) to every handler's plugins in
    this process, after their own; registering the same object again does nothing."""
    if not any(entry is plugin for entry in _global_plugins):
        _global_plugins.append(plugin)


def has_global_plugins() -> bool:
    return bool(_global_plugins)


def unregister_global_plugin(plugin: Any) -> None:
    """Undo :func:`register_global_plugin` (nothing if ``plugin`` is not registered)."""
    _global_plugins[:] = [entry for entry in _global_plugins if entry is not plugin]


_HOOKS = ("on_invocation_start", "on_invocation_end", "on_operation_start", "on_operation_end",
          "on_operation_change", "on_user_function_start", "on_user_function_end", "on_operation_recorded",
          "provide_propagation_metadata")


def validate_plugins(entries: Sequence[Any]) -> tuple[Any, ...]:
    """Check ``durable_execution(plugins=...)`` when the handler is decorated.

    An entry is a factory (AWS's form: an object whose ``create_plugin(info)`` takes the
    invocation's start info) or a plugin instance (an object with hook methods). A plugin class,
    a factory class whose ``create_plugin`` is an instance method, and a bare function are refused
    with :class:`PluginLoadError` naming the position, since none of them could ever be called.
    """
    for index, entry in enumerate(entries):
        problem = _not_usable(entry)
        if problem:
            raise PluginLoadError(
                f"plugins[{index}] is {problem}: pass a plugin factory (an object with create_plugin(info)), "
                "for example plugins=[MyPluginFactory()], or a plugin instance, plugins=[MyPlugin()]")
    return tuple(entries)


def _not_usable(entry: Any) -> str | None:
    """Why ``entry`` is neither a factory nor a plugin instance (None when it is one)."""
    create = getattr(entry, "create_plugin", None)
    if create is not None:
        if not callable(create):
            return f"an object whose create_plugin is not callable ({type(create).__qualname__})"
        if isinstance(entry, type) and inspect.isfunction(create) and not isinstance(
                inspect.getattr_static(entry, "create_plugin"), staticmethod):
            return f"the factory class {entry.__qualname__}, not an instance of it"
        try:
            inspect.signature(create).bind(None)
        except TypeError:
            return "a factory whose create_plugin cannot take the invocation's start info"
        except ValueError:  # no signature to read (a builtin): trust it
            pass
        return None
    if isinstance(entry, type):
        return f"the class {entry.__qualname__}, not an instance"
    if not any(callable(getattr(entry, hook, None)) for hook in _HOOKS):
        return f"{type(entry).__qualname__} {entry!r}, which has no plugin hooks"
    return None


def _overrides(plugin: Any, hook: str) -> bool:
    """Whether ``plugin`` does something in ``hook`` (the base class's no-op does not count)."""
    method = getattr(type(plugin), hook, None)
    if method is None:
        return callable(getattr(plugin, hook, None))
    return method is not getattr(DurableInstrumentationPlugin, hook, None)


class Plugins:
    """The plugins of one invocation; calls every hook of each, swallowing their errors.

    It also remembers which operations' end hooks ran in this invocation, so that each runs once.
    """

    def __init__(self, plugins: Sequence[Any]) -> None:
        self.plugins = list(plugins)
        self.records = any(_overrides(plugin, "on_operation_recorded") for plugin in self.plugins)
        """Whether any plugin wants ``on_operation_recorded`` (its info is only built then)."""
        self.changes = any(_overrides(plugin, "on_operation_change") for plugin in self.plugins)
        """Whether any plugin wants ``on_operation_change``."""
        self._ended: set[str] = set()
        self._replay_started: set[str] = set()
        self._lock = threading.Lock()

    @classmethod
    def create(cls, registered: Sequence[Any], info: InvocationStartInfo) -> Plugins:
        made = []
        for entry in (*registered, *_global_plugins):
            create = getattr(entry, "create_plugin", None)
            try:
                plugin = create(info) if callable(create) else entry
            except Exception:
                _log.exception("plugin factory %r failed; the plugin is skipped", entry)
                continue
            if plugin is not None:  # a factory may have nothing to do in this invocation
                made.append(plugin)
        return cls(made)

    def emit(self, hook: str, info: Any) -> None:
        for plugin in self.plugins:
            method = getattr(plugin, hook, None)
            if method is None:
                continue
            try:
                method(info)
            except Exception:
                _hook_failed(plugin, hook)

    def _first(self, ids: set[str], op_id: str) -> bool:
        with self._lock:
            if op_id in ids:
                return False
            ids.add(op_id)
            return True

    def operation_ended(self, op: Operation, arn: str) -> None:
        """``on_operation_end`` for the recorded terminal ``op``, unless it already ran in this invocation."""
        if self.plugins and self._first(self._ended, op.Id):
            self.emit("on_operation_end", OperationEndInfo.from_operation(op, execution_arn=arn))

    def operation_starting(self, update: OperationUpdate, previous: Operation | None, arn: str) -> None:
        """``on_operation_start`` before the START ``update`` is sent (``is_replayed`` when the operation
        was recorded before: a step's next attempt)."""
        self.emit("on_operation_start", OperationStartInfo(
            update.Id, OperationType(update.Type), update.SubType, update.Name, update.ParentId,
            _time(previous.StartTimestamp) if previous else None, previous is not None, OperationStatus.STARTED,
            execution_arn=arn))

    def operation_replayed(self, op: Operation, arn: str) -> None:
        """``on_operation_start`` (``is_replayed``) for an unfinished operation met on replay, once."""
        if self.plugins and self._first(self._replay_started, op.Id):
            self.emit("on_operation_start", OperationStartInfo.from_operation(op, is_replayed=True,
                                                                              execution_arn=arn))

    def propagation(self, info: PropagationInput) -> str | None:
        """The trace header to pass with a chained invoke: the first plugin's non-blank answer."""
        for plugin in self.plugins:
            provide = getattr(plugin, "provide_propagation_metadata", None)
            if provide is None:
                continue
            try:
                metadata = provide(info)
            except Exception:
                _hook_failed(plugin, "provide_propagation_metadata")
                continue
            header = getattr(metadata, "x_amzn_trace_id", None)
            if isinstance(header, str) and header.strip():
                return header.strip()
        return None

    def around_user_function(self, func: Callable[..., Any], info: UserFunctionStartInfo) -> Callable[..., Any]:
        """``func`` wrapped so the attempt hooks run on the thread (or task) that runs it."""
        if not self.plugins:
            return func

        def begin() -> UserFunctionStartInfo:
            started = dataclasses.replace(info, start_time=datetime.datetime.now(datetime.UTC))
            self.emit("on_user_function_start", started)
            return started

        def end(started: UserFunctionStartInfo, exc: BaseException | None) -> None:
            if exc is None:
                outcome, error = UserFunctionOutcome.SUCCEEDED, None
            elif isinstance(exc, Exception):
                outcome, error = UserFunctionOutcome.FAILED, ErrorObject.from_exception(exc)
            else:  # a suspension, or the invocation cut short
                outcome, error = UserFunctionOutcome.INCOMPLETE, None
            fields = {f.name: getattr(started, f.name) for f in dataclasses.fields(started)}
            self.emit("on_user_function_end", UserFunctionEndInfo(**{
                **fields, "end_time": datetime.datetime.now(datetime.UTC), "error": error, "outcome": outcome}))

        if inspect.iscoroutinefunction(func):
            async def run_async(*args: Any) -> Any:
                started = begin()
                try:
                    value = await func(*args)
                except BaseException as exc:
                    end(started, exc)
                    raise
                end(started, None)
                return value
            return run_async

        def run(*args: Any) -> Any:
            started = begin()
            try:
                value = func(*args)
            except BaseException as exc:
                end(started, exc)
                raise
            end(started, None)
            return value
        return run


def _hook_failed(plugin: Any, hook: str) -> None:
    """Log the exception being handled, raised by ``hook`` of ``plugin``."""
    cls = type(plugin)
    with _warned_lock:
        first = (cls, hook) not in _warned
        _warned.add((cls, hook))
    if first:
        _log.warning("plugin %s.%s: hook %s raised; ignored (later errors of this hook are logged at DEBUG)",
                     cls.__module__, cls.__qualname__, hook, exc_info=True)
    else:
        _log.debug("plugin %r: hook %s raised; ignored", plugin, hook, exc_info=True)


NO_PLUGINS = Plugins(())
