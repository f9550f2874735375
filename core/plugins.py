"""The instrumentation plugin API: hooks around invocations, operations and user functions.

Register with ``@durable_execution(plugins=[factory_or_plugin, ...])``. A factory has
``create_plugin(info) -> plugin`` and is asked once per invocation; anything else is used as
the plugin itself. Every hook of every plugin is called; an exception raised by a hook is logged
and swallowed, so a plugin can never change an execution: the first one of each plugin class and
hook in this process at WARNING with its traceback, the later ones at DEBUG. Replay fires no
operation hooks for work that is only replayed.

``on_operation_recorded`` is durably's own hook (the others are AWS's): it fires once the engine
has recorded an operation's new state, with that record (its timestamps, attempt, error), so a
plugin can build what it reports from the durable record itself. Plugins registered with
:func:`register_global_plugin` join those of every handler in the process.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from durably.core.model import Operation

_log = logging.getLogger("durably.plugins")
_warned: set[tuple[type, str]] = set()
"""The (plugin class, hook) pairs whose error this process already logged at WARNING."""
_warned_lock = threading.Lock()


@dataclass(frozen=True)
class InvocationStartInfo:
    execution_arn: str
    is_first_invocation: bool
    updated_operation_ids: tuple[str, ...] = ()
    operations: tuple[Operation, ...] = ()
    """The execution's log as this invocation loaded it (durably's addition)."""
    trace_header: str | None = None
    """The trace context the execution was started with, on durably's engine: the caller's W3C
    ``traceparent``, or the X-Ray header a chained invoke passed (``XAmznTraceId``)."""


@dataclass(frozen=True)
class InvocationEndInfo:
    execution_arn: str
    status: str
    """SUCCEEDED, FAILED or PENDING."""
    error: Any = None


@dataclass(frozen=True)
class OperationInfo:
    execution_arn: str
    operation_id: str
    """Equal to the history event's ``Id``."""
    operation_type: str
    sub_type: str | None
    name: str | None
    parent_id: str | None
    status: str
    """STARTED for a start hook; the terminal status for an end hook."""
    is_replayed: bool = False


@dataclass(frozen=True)
class UserFunctionInfo:
    execution_arn: str
    operation_id: str
    operation_type: str
    name: str | None
    attempt: int
    outcome: str | None = None
    """SUCCEEDED or FAILED in the end hook."""
    error: BaseException | None = None


@dataclass(frozen=True)
class RecordedOperation:
    """An operation's state as the engine just recorded it (``on_operation_recorded``)."""

    execution_arn: str
    operation: Operation
    action: str
    """The update this invocation checkpointed: START, SUCCEED, FAIL, RETRY or CANCEL. (Operations the
    engine finished while the execution was suspended are ``InvocationStartInfo.updated_operation_ids``,
    their records in ``InvocationStartInfo.operations``.)"""


@dataclass(frozen=True)
class PropagationInput:
    """A chained invoke about to start (``provide_propagation_metadata``)."""

    execution_arn: str
    operation_id: str
    function_name: str
    parent_id: str | None


@dataclass(frozen=True)
class PropagationMetadata:
    """What a plugin passes to an invoked execution: the ``XAmznTraceId`` of its START."""

    x_amzn_trace_id: str | None = None


class DurableInstrumentationPlugin:
    """Base class with no-op hooks; override the ones you need."""

    def on_invocation_start(self, info: InvocationStartInfo) -> None: ...
    def on_invocation_end(self, info: InvocationEndInfo) -> None: ...
    def on_operation_start(self, info: OperationInfo) -> None: ...
    def on_operation_end(self, info: OperationInfo) -> None: ...
    def on_user_function_start(self, info: UserFunctionInfo) -> None: ...
    def on_user_function_end(self, info: UserFunctionInfo) -> None: ...
    def on_operation_recorded(self, info: RecordedOperation) -> None: ...
    def provide_propagation_metadata(self, info: PropagationInput) -> PropagationMetadata | None: ...


_global_plugins: list[Any] = []


def register_global_plugin(plugin: Any) -> None:
    """Add ``plugin`` (a plugin, or a factory with ``create_plugin``) to every handler's plugins in
    this process, after their own; registering the same object again does nothing."""
    if not any(entry is plugin for entry in _global_plugins):
        _global_plugins.append(plugin)


def unregister_global_plugin(plugin: Any) -> None:
    """Undo :func:`register_global_plugin` (nothing if ``plugin`` is not registered)."""
    _global_plugins[:] = [entry for entry in _global_plugins if entry is not plugin]


class Plugins:
    """The plugins of one invocation; calls every hook of each, swallowing their errors."""

    def __init__(self, plugins: Sequence[Any]) -> None:
        self.plugins = list(plugins)
        self.records = any(hasattr(plugin, "on_operation_recorded") for plugin in self.plugins)
        """Whether any plugin wants ``on_operation_recorded`` (its info is only built then)."""

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

    def around_user_function(self, func: Callable[..., Any], info: UserFunctionInfo) -> Callable[..., Any]:
        """``func`` wrapped so the attempt hooks run on the thread (or task) that runs it."""
        if not self.plugins:
            return func

        def end(outcome: str, error: BaseException | None) -> None:
            self.emit("on_user_function_end", UserFunctionInfo(
                info.execution_arn, info.operation_id, info.operation_type, info.name, info.attempt,
                outcome, error))

        if inspect.iscoroutinefunction(func):
            async def run_async(*args: Any) -> Any:
                self.emit("on_user_function_start", info)
                try:
                    value = await func(*args)
                except BaseException as exc:
                    end("FAILED", exc)
                    raise
                end("SUCCEEDED", None)
                return value
            return run_async

        def run(*args: Any) -> Any:
            self.emit("on_user_function_start", info)
            try:
                value = func(*args)
            except BaseException as exc:
                end("FAILED", exc)
                raise
            end("SUCCEEDED", None)
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
