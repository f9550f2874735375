"""``context.parallel``: run several functions ``f(ctx)`` concurrently.

Each branch is a child context (SubType ParallelBranch, named ``parallel-branch-<i>`` or by its
:class:`ParallelBranch` name). Replay returns the recorded :class:`BatchResult` without running
any branch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from durably.core.config import ParallelConfig
from durably.core.context_core import ContextCore, OpGen
from durably.core.operation.concurrent import BatchSpec, Branch, run_batch

T = TypeVar("T")


@dataclass(frozen=True)
class ParallelBranch(Generic[T]):
    """A parallel branch with its own name."""

    func: Callable[..., T]
    name: str | None = None


def durable_parallel_branch(name: str | None = None) -> Callable[[Callable[..., T]], ParallelBranch[T]]:
    """``@durable_parallel_branch(name="x") def f(ctx)``: ``f`` becomes a named branch."""
    def wrap(func: Callable[..., T]) -> ParallelBranch[T]:
        return ParallelBranch(func, name or func.__name__)
    return wrap


def parallel(core: ContextCore, functions: Sequence[Callable[..., Any] | ParallelBranch[Any]], name: str | None,
             config: ParallelConfig | None) -> OpGen:
    config = config or ParallelConfig()
    branches = []
    for i, f in enumerate(functions):
        if isinstance(f, ParallelBranch):
            branches.append(Branch(f.name or f"parallel-branch-{i}", f.func))
        else:
            branches.append(Branch(f"parallel-branch-{i}", f))
    spec = BatchSpec("Parallel", "ParallelBranch", config.max_concurrency, config.completion_config,
                     config.serdes, config.item_serdes, config.summary_generator, config.nesting_type)
    return (yield from run_batch(core, spec, branches, name))
