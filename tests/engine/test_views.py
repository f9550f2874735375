"""journal.Views: what a process keeps folded between checkpoints, within a count and a size."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from durably import DurableContext, durable_execution
from durably.core.engine.engine import Engine
from durably.core.engine.journal import Views
from durably.core.engine.stores.base import StoreTx


@durable_execution
def padded_steps(event: Any, ctx: DurableContext) -> int:
    for i in range(event["n"]):
        ctx.step(lambda _: "x" * 1000, name=f"step {i}")
    return int(event["n"])


WATCHED: list[Views] = []
"""The views of the engine a test runs, for its steps to look at."""


@durable_execution
def watched_steps(event: Any, ctx: DurableContext) -> list[int]:
    sizes = []
    for i in range(event["n"]):
        ctx.step(lambda _: "x" * 1000, name=f"step {i}")
        sizes.append(ctx.step(lambda _: WATCHED[0]._size, name=f"size {i}"))
    return sizes


def _keys(engine: Engine, arns: list[str]) -> list[int]:
    return [engine.store.read(lambda tx, arn=arn: tx.execution(arn)).key for arn in arns]  # type: ignore[misc]


def _current(engine: Engine, views: Views, key: int) -> int:
    """Bring ``key``'s view up to date; its size in characters."""
    def read(tx: StoreTx) -> int:
        return views.current(tx, key, tx.journal_tail(key)).size
    return engine.store.read(read)


def test_views_beyond_the_budget_are_dropped_least_recently_used_first(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "x.db", synchronous="OFF")
    try:
        arns = [engine.start_execution(padded_steps, {"n": 5}) for _ in range(3)]
        for arn in arns:
            assert engine.run_until_complete(arn)["Status"] == "SUCCEEDED"
        keys = _keys(engine, arns)
        size = _current(engine, Views(), keys[0])
        assert size > 5 * 1000  # the five results are in it
        views = Views(budget=int(size * 2.5))
        for key in keys:
            _current(engine, views, key)
        assert set(views._views) == set(keys[1:])  # the first was dropped to stay within 2.5 views
        _current(engine, views, keys[1])  # used again: now the third is the least recently used
        _current(engine, views, keys[0])
        assert set(views._views) == {keys[1], keys[0]}
        assert views._size == sum(view.size for view in views._views.values())
        alone = Views(budget=size // 2)
        _current(engine, alone, keys[2])
        assert list(alone._views) == [keys[2]]  # the one in use is kept, though over the budget alone
    finally:
        engine.close()
        engine.store.close()


def test_a_view_grows_with_its_checkpoints_and_the_count_is_bounded(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "x.db", synchronous="OFF")
    try:
        WATCHED[:] = [engine.service._views]
        arn = engine.start_execution(watched_steps, {"n": 10})
        execution = engine.run_until_complete(arn)
        assert execution["Status"] == "SUCCEEDED"
        sizes = json.loads(execution["Result"])
        assert all(later - earlier >= 1000 for earlier, later in itertools.pairwise(sizes)), sizes  # grew per step
        assert engine.service._views._size == 0  # the execution ended: its view forgotten
        few = Views(capacity=2)
        arns = [engine.start_execution(padded_steps, {"n": 1}) for _ in range(3)]
        for other in arns:
            assert engine.run_until_complete(other)["Status"] == "SUCCEEDED"
        for key in _keys(engine, arns):
            _current(engine, few, key)
        assert list(few._views) == _keys(engine, arns)[1:]
    finally:
        engine.close()
        engine.store.close()
