"""``DurableContext`` (for ``def`` handlers) and ``AsyncDurableContext`` (for ``async def``).

Every method is a durable operation: its result is checkpointed, and when the handler runs
again from the top after a suspension or a crash, a completed operation returns its recorded
result without running anything. Code between operations runs again on every replay, so it must
be deterministic: put time, randomness, ids and I/O inside steps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from durably.core.batch import BatchResult
from durably.core.config import (
    CallbackConfig,
    ChildConfig,
    Duration,
    InvokeConfig,
    MapConfig,
    ParallelConfig,
    StepConfig,
)
from durably.core.context_core import ContextCore, drive_async, drive_sync
from durably.core.logger import DurableLogger
from durably.core.operation import callback, child, invoke, step, wait
from durably.core.operation import map as map_op
from durably.core.operation import parallel as parallel_op
from durably.core.operation import wait_for_condition as wfc
from durably.core.operation.child_block import ChildContextBlock
from durably.core.waits import WaitForConditionConfig

T = TypeVar("T")


@dataclass(frozen=True)
class ExecutionContext:
    durable_execution_arn: str


class _Base:
    def __init__(self, core: ContextCore) -> None:
        self._core = core

    @property
    def logger(self) -> DurableLogger:
        """Replay-aware logger: lines logged while replaying are not emitted again."""
        assert self._core.logger is not None
        return self._core.logger

    def set_logger(self, logger: logging.Logger | logging.LoggerAdapter[Any]) -> None:
        """Send this context's records to ``logger`` instead of ``durably.workflow``."""
        self.logger.base = logger

    def configure_logger(self, logger: logging.Logger | logging.LoggerAdapter[Any] | None = None, *,
                         mode_aware: bool = True) -> None:
        """Set this context's log target and whether lines are dropped while replaying.

        With ``mode_aware=False`` a line logged outside a step is emitted again each time the
        handler replays over it (useful to observe re-execution). Child contexts created after
        this call inherit both settings.
        """
        if logger is not None:
            self.logger.base = logger
        self.logger.mode_aware = mode_aware

    @property
    def lambda_context(self) -> Any:
        return self._core.lambda_context

    @property
    def execution_context(self) -> ExecutionContext:
        return ExecutionContext(self._core.arn)

    @property
    def context_id(self) -> str | None:
        """The operation id of this child context (None for the handler's own context): stable
        across replays, unique in the execution."""
        return self._core.prefix

    def is_replaying(self) -> bool:
        """True while the handler runs over operations a previous invocation recorded."""
        return self._core.is_replaying()


class DurableContext(_Base):
    """The context a ``def`` handler receives."""

    def _run(self, gen: Any) -> Any:
        return drive_sync(gen, DurableContext)

    def step(self, func: Callable[[step.StepContext], T], name: str | None = None,
             config: StepConfig | None = None) -> T:
        """Run ``func(step_context)`` and checkpoint its result.

        Replay returns the recorded result (or raises the recorded :class:`StepError`) without
        running ``func``. A failed attempt is retried per ``config.retry_strategy`` (default:
        6 attempts, exponential backoff) by suspending until the retry is due.
        """
        return self._run(step.step(self._core, func, name, config))  # type: ignore[no-any-return]

    def wait(self, duration: Duration, name: str | None = None) -> None:
        """Suspend for ``duration`` (whole seconds, at least 1). Replay of a finished wait is free."""
        self._run(wait.wait(self._core, duration, name))

    def create_callback(self, name: str | None = None,
                        config: CallbackConfig | None = None) -> callback.Callback:
        """Register a callback; send ``callback_id`` to the outside world, then call ``result()``."""
        return self._run(callback.create_callback(self._core, name, config))  # type: ignore[no-any-return]

    def wait_for_callback(self, submitter: Callable[[str, callback.WaitForCallbackContext], Any],
                          name: str | None = None, config: CallbackConfig | None = None) -> Any:
        """Create a callback, hand its id to ``submitter`` (run as a step), and wait for the answer."""
        return self._run(callback.wait_for_callback(self._core, submitter, name, config))

    def invoke(self, function_name: str, payload: Any, name: str | None = None,
               config: InvokeConfig[Any, Any] | None = None) -> Any:
        """Run ``function_name`` as its own execution and return its result."""
        return self._run(invoke.invoke(self._core, function_name, payload, name, config))

    def run_in_child_context(self, func: Callable[[DurableContext], T], name: str | None = None,
                             config: ChildConfig[T] | None = None) -> T:
        """Run ``func(child_context)``; its result is checkpointed as one operation."""
        config = config or ChildConfig()
        return self._run(child.run_in_child_context(  # type: ignore[no-any-return]
            self._core, func, name, sub_type=config.sub_type or "RunInChildContext",
            serdes=config.serdes, summary_generator=config.summary_generator))

    def in_child_context(self, name: str | None = None, *,
                         sub_type: str = "RunInChildContext") -> ChildContextBlock[DurableContext]:
        """``with context.in_child_context(name) as child:`` checkpoints the block's operations
        (made on ``child``) under one child context. The block runs again on replay, its operations
        returning their recorded results; an error raised in it propagates unchanged."""
        return ChildContextBlock(self._core, name, sub_type, DurableContext)

    def wait_for_condition(self, check: Callable[[T, wfc.WaitForConditionCheckContext], T],
                           config: WaitForConditionConfig[T], name: str | None = None) -> T:
        """Poll ``check(state, ctx)`` until ``config.wait_strategy`` stops; return the final state.

        Each poll is checkpointed with its state; between polls the invocation suspends.
        """
        return self._run(wfc.wait_for_condition(self._core, check, config, name))  # type: ignore[no-any-return]

    def map(self, inputs: Sequence[Any], func: Callable[[DurableContext, Any, int, Sequence[Any]], T],
            name: str | None = None, config: MapConfig | None = None) -> BatchResult[T]:
        """Run ``func(ctx, item, index, inputs)`` for every item concurrently, each in a child context.

        Replay returns the recorded BatchResult; items run in threads (``max_concurrency`` at a time).
        """
        return self._run(map_op.map_items(self._core, inputs, func, name, config))  # type: ignore[no-any-return]

    def parallel(self, functions: Sequence[Callable[[DurableContext], Any] | parallel_op.ParallelBranch[Any]],
                 name: str | None = None, config: ParallelConfig | None = None) -> BatchResult[Any]:
        """Run each ``f(ctx)`` concurrently, each in a child context; the BatchResult is in input order."""
        return self._run(parallel_op.parallel(self._core, functions, name, config))  # type: ignore[no-any-return]


class AsyncDurableContext(_Base):
    """The context an ``async def`` handler receives: the same operations, as coroutines."""

    async def _run(self, gen: Any) -> Any:
        return await drive_async(gen, AsyncDurableContext, DurableContext)

    async def step(self, func: Callable[[step.StepContext], Any], name: str | None = None,
                   config: StepConfig | None = None) -> Any:
        """As :meth:`DurableContext.step`; a plain ``func`` runs in a worker thread."""
        return await self._run(step.step(self._core, func, name, config))

    async def wait(self, duration: Duration, name: str | None = None) -> None:
        """As :meth:`DurableContext.wait`."""
        await self._run(wait.wait(self._core, duration, name))

    async def create_callback(self, name: str | None = None,
                              config: CallbackConfig | None = None) -> callback.Callback:
        """As :meth:`DurableContext.create_callback`."""
        return await self._run(callback.create_callback(self._core, name, config))  # type: ignore[no-any-return]

    async def wait_for_callback(self, submitter: Callable[..., Any], name: str | None = None,
                                config: CallbackConfig | None = None) -> Any:
        """As :meth:`DurableContext.wait_for_callback`."""
        return await self._run(callback.wait_for_callback(self._core, submitter, name, config))

    async def invoke(self, function_name: str, payload: Any, name: str | None = None,
                     config: InvokeConfig[Any, Any] | None = None) -> Any:
        """As :meth:`DurableContext.invoke`."""
        return await self._run(invoke.invoke(self._core, function_name, payload, name, config))

    async def run_in_child_context(self, func: Callable[..., Any], name: str | None = None,
                                   config: ChildConfig[Any] | None = None) -> Any:
        """As :meth:`DurableContext.run_in_child_context`; ``func`` may be ``async def``."""
        config = config or ChildConfig()
        return await self._run(child.run_in_child_context(
            self._core, func, name, sub_type=config.sub_type or "RunInChildContext",
            serdes=config.serdes, summary_generator=config.summary_generator))

    def in_child_context(self, name: str | None = None, *,
                         sub_type: str = "RunInChildContext") -> ChildContextBlock[AsyncDurableContext]:
        """As :meth:`DurableContext.in_child_context`, with ``async with``."""
        return ChildContextBlock(self._core, name, sub_type, AsyncDurableContext)

    async def wait_for_condition(self, check: Callable[..., Any], config: WaitForConditionConfig[Any],
                                 name: str | None = None) -> Any:
        """As :meth:`DurableContext.wait_for_condition`."""
        return await self._run(wfc.wait_for_condition(self._core, check, config, name))

    async def map(self, inputs: Sequence[Any], func: Callable[..., Any], name: str | None = None,
                  config: MapConfig | None = None) -> BatchResult[Any]:
        """As :meth:`DurableContext.map`; async items run as tasks."""
        return await self._run(map_op.map_items(self._core, inputs, func, name, config))  # type: ignore[no-any-return]

    async def parallel(self, functions: Sequence[Any], name: str | None = None,
                       config: ParallelConfig | None = None) -> BatchResult[Any]:
        """As :meth:`DurableContext.parallel`; async branches run as tasks."""
        return await self._run(parallel_op.parallel(self._core, functions, name, config))  # type: ignore[no-any-return]


__all__ = ["AsyncDurableContext", "DurableContext", "ExecutionContext"]
