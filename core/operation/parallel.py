"""``context.parallel``: run several functions ``f(ctx)`` concurrently.

Each branch is a child context (SubType ParallelBranch, named ``parallel-branch-<i>`` or by its
:class:`ParallelBranch` name). Replay returns the recorded :class:`BatchResult` without running
any branch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from durably.core.config import ParallelConfig
from durably.core.context_core import ContextCore, OpGen
from durably.core.operation.concurrent import BatchSpec, Branch, item_name, run_batch

T = TypeVar("T")


@dataclass(frozen=True)
class ParallelBranch(Generic[T]):
    """A parallel branch with its own name (None: ``parallel-branch-<i>``)."""

    func: Callable[..., T]
    name: str | None = None


def durable_parallel_branch(name: str | None = None) -> Callable[[Callable[..., T]], Callable[..., ParallelBranch[T]]]:
    """``@durable_parallel_branch(name="x") def f(ctx, a, b)``: ``f(a, b)`` makes a branch running
    ``f(ctx, a, b)``, named ``name`` (without one, ``parallel-branch-<i>`` as any unnamed branch)."""
    def decorator(func: Callable[..., T]) -> Callable[..., ParallelBranch[T]]:
        @functools.wraps(func)
        def make_branch(*args: Any, **kwargs: Any) -> ParallelBranch[T]:
            return ParallelBranch(lambda ctx: func(ctx, *args, **kwargs), name)
        return make_branch
    return decorator


def parallel(core: ContextCore, functions: Sequence[Callable[..., Any] | ParallelBranch[Any]], name: str | None,
             config: ParallelConfig | None) -> OpGen:
    config = config or ParallelConfig()
    branches = [Branch(item_name(f.name, "parallel-branch-", i), f.func) if isinstance(f, ParallelBranch)
                else Branch(f"parallel-branch-{i}", f) for i, f in enumerate(functions)]
    spec = BatchSpec("Parallel", "ParallelBranch", config.max_concurrency, config.completion_config,
                     config.serdes, config.item_serdes, config.summary_generator, config.nesting_type)
    return (yield from run_batch(core, spec, branches, name))
