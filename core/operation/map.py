"""``context.map``: run ``func(ctx, item, index, items)`` for every item, concurrently.

Each item is a child context (SubType MapIteration, named ``map-item-<i>`` unless an
``item_namer`` names it; its None means the default, its "" is kept) whose id derives from the
item's index, so ids do not depend on which item finished first. Replay returns the recorded
:class:`BatchResult` without running any item.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from durably.core.config import MapConfig
from durably.core.context_core import ContextCore, OpGen, default_name
from durably.core.operation.concurrent import BatchSpec, Branch, item_name, run_batch


def map_items(core: ContextCore, items: Sequence[Any], func: Callable[..., Any], name: str | None,
              config: MapConfig | None) -> OpGen:
    config = config or MapConfig()
    items = list(items)
    namer = config.item_namer
    branches = [Branch(item_name(namer(item, i) if namer else None, "map-item-", i), func, (item, i, items))
                for i, item in enumerate(items)]
    spec = BatchSpec("Map", "MapIteration", config.max_concurrency, config.completion_config, config.serdes,
                     config.item_serdes, config.summary_generator, config.nesting_type)
    return (yield from run_batch(core, spec, branches, name if name is not None else default_name(func)))
