"""The on_operation_recorded seam: each operation's recorded state reaches plugins once, with its
timestamps, from the invocation that recorded it; what the engine finished while the execution was
suspended is in the next invocation's start info (updated ids and the loaded records)."""

from __future__ import annotations

from typing import Any

from durably import DurableContext, Duration, StepContext, durable_execution
from durably.core import (
    DurableInstrumentationPlugin,
    InvocationStartInfo,
    RecordedOperation,
    register_global_plugin,
    unregister_global_plugin,
)
from durably.testing import DurableTestRunner


class Recorder(DurableInstrumentationPlugin):
    def __init__(self) -> None:
        self.seen: list[tuple[str | None, str, str | None]] = []
        self.loaded: list[int] = []
        self.updated: list[list[tuple[str | None, str]]] = []

    def on_invocation_start(self, info: InvocationStartInfo) -> None:
        self.loaded.append(len(info.operations))
        self.updated.append([(op.name, op.status) for op in info.updated_operations.values()])

    def on_operation_recorded(self, info: RecordedOperation) -> None:
        op = info.operation
        assert op.StartTimestamp is not None
        assert op.EndTimestamp is not None or not op.is_terminal
        self.seen.append((op.Name, op.Status, info.action))


def greet(step: StepContext) -> str:
    return "hi"


def test_each_record_reaches_the_plugin_once_across_a_suspension(make_runner: Any) -> None:
    recorder = Recorder()

    @durable_execution(plugins=[recorder])
    def handler(event: Any, ctx: DurableContext) -> str:
        first = ctx.step(greet, name="greet")
        ctx.wait(Duration.from_seconds(5), name="pause")
        return first + ctx.step(greet, name="again")

    result = make_runner(handler).run()
    assert result.status == "SUCCEEDED", result.error
    finished = [(name, status, action) for name, status, action in recorder.seen if status != "STARTED"]
    assert finished == [("greet", "SUCCEEDED", "SUCCEED"), ("again", "SUCCEEDED", "SUCCEED")]
    assert recorder.updated == [[], [("pause", "SUCCEEDED")]]  # the wait ended while suspended
    assert recorder.loaded[0] == 1 and recorder.loaded[1] > 1  # the second invocation loaded the log


def test_a_global_plugin_joins_every_handler() -> None:
    recorder = Recorder()

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> str:
        return ctx.step(greet, name="greet")

    register_global_plugin(recorder)
    register_global_plugin(recorder)  # once only
    try:
        with DurableTestRunner(handler) as runner:
            assert runner.run().status == "SUCCEEDED"
    finally:
        unregister_global_plugin(recorder)
    assert [s for s in recorder.seen if s[1] == "SUCCEEDED"] == [("greet", "SUCCEEDED", "SUCCEED")]
    with DurableTestRunner(handler) as runner:
        runner.run()
    assert len([s for s in recorder.seen if s[1] == "SUCCEEDED"]) == 1
