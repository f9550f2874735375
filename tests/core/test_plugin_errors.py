"""A plugin hook that raises: the execution goes on, the operator hears of it once."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from durably import DurableContext, Duration, durable_execution
from durably.core.plugins import DurableInstrumentationPlugin, OperationInfo

from .conftest import MakeRunner


def test_a_failing_hook_warns_once_per_process_and_the_execution_succeeds(
        make_runner: MakeRunner, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str | None] = []

    class Broken(DurableInstrumentationPlugin):
        def on_operation_start(self, info: OperationInfo) -> None:
            calls.append(info.name)
            raise RuntimeError(f"broken at {info.name}")

    @durable_execution(plugins=[Broken()])
    def handler(event: Any, ctx: DurableContext) -> Any:
        first = ctx.step(lambda _: 1, name="one")
        ctx.wait(Duration(5), name="pause")
        return first + ctx.step(lambda _: 2, name="two")

    caplog.set_level(logging.DEBUG, logger="durably.plugins")
    results = [make_runner(handler).run({}) for _ in range(2)]  # four invocations over two Plugins instances

    assert [(r.status, r.value) for r in results] == [("SUCCEEDED", 3), ("SUCCEEDED", 3)]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "Broken" in message and "on_operation_start" in message and "DEBUG" in message
    assert warnings[0].exc_info is not None and "broken at one" in str(warnings[0].exc_info[1])
    later = [r for r in caplog.records if r.levelno == logging.DEBUG and "on_operation_start" in r.getMessage()]
    assert calls.count("two") == 2 and len(later) == len(calls) - 1


def test_each_hook_of_each_plugin_warns_on_its_own(make_runner: MakeRunner, caplog: pytest.LogCaptureFixture) -> None:
    class Starts(DurableInstrumentationPlugin):
        def on_operation_start(self, info: OperationInfo) -> None:
            raise RuntimeError("start")

        def on_operation_end(self, info: OperationInfo) -> None:
            raise RuntimeError("end")

    class AlsoStarts(DurableInstrumentationPlugin):
        def on_operation_start(self, info: OperationInfo) -> None:
            raise RuntimeError("start too")

    @durable_execution(plugins=[Starts(), AlsoStarts()])
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.step(lambda _: 1, name="one") + ctx.step(lambda _: 2, name="two")

    caplog.set_level(logging.WARNING, logger="durably.plugins")
    assert make_runner(handler).run({}).value == 3
    warned = sorted(str(r.exc_info[1]) for r in caplog.records if r.levelno == logging.WARNING and r.exc_info)
    assert warned == ["end", "start", "start too"]
