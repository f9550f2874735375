"""The sync branch runner: concurrency limits, no start after completion, reused threads, fork."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from durably import CompletionConfig, DurableContext, MapConfig, durable_execution

from .conftest import MakeRunner


def test_branches_run_concurrently_up_to_max_concurrency(make_runner: MakeRunner) -> None:
    lock = threading.Lock()
    running: list[int] = [0, 0]  # now, most at once

    def item(ctx: DurableContext, value: int, _index: int, _items: Any) -> int:
        with lock:
            running[0] += 1
            running[1] = max(running)
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return ctx.step(lambda _: value * 2, name="double")

    @durable_execution
    def handler(_event: Any, ctx: DurableContext) -> list[int]:
        return ctx.map(list(range(8)), item, config=MapConfig(max_concurrency=3)).get_results()

    assert make_runner(handler).run(None).value == [v * 2 for v in range(8)]
    assert running[1] == 3


def test_no_branch_starts_once_the_batch_is_complete(make_runner: MakeRunner) -> None:
    started: list[int] = []

    def item(_ctx: DurableContext, value: int, _index: int, _items: Any) -> int:
        started.append(value)
        return value

    @durable_execution
    def handler(_event: Any, ctx: DurableContext) -> list[int]:
        config = MapConfig(max_concurrency=1, completion_config=CompletionConfig(min_successful=2))
        return ctx.map(list(range(10)), item, config=config).get_results()

    assert make_runner(handler).run(None).value == [0, 1]
    assert started == [0, 1]


def test_branch_threads_are_reused_by_the_next_batch(make_runner: MakeRunner) -> None:
    threads: list[set[int]] = [set(), set()]

    def item(_ctx: DurableContext, batch: int, _index: int, _items: Any) -> int:
        threads[batch].add(threading.get_ident())
        time.sleep(0.01)
        return batch

    @durable_execution
    def handler(_event: Any, ctx: DurableContext) -> int:
        first = ctx.map([0] * 4, item, name="first")
        second = ctx.map([1] * 4, item, name="second")
        return len(first.all) + len(second.all)

    assert make_runner(handler).run(None).value == 8
    assert threads[1] & threads[0]


def _returning(value: int) -> Callable[[DurableContext], int]:
    return lambda _ctx: value


def test_a_forked_child_runs_branches_in_threads_of_its_own(make_runner: MakeRunner) -> None:
    @durable_execution
    def handler(_event: Any, ctx: DurableContext) -> list[int]:
        return ctx.parallel([_returning(i) for i in range(4)]).get_results()

    assert make_runner(handler).run(None).value == [0, 1, 2, 3]
    pid = os.fork()
    if pid == 0:  # the child reports through its exit status
        code = 1
        try:
            code = 0 if make_runner(handler).run(None, timeout=20).value == [0, 1, 2, 3] else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
