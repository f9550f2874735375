"""Plugins as AWS's SDK 3.0 has them: the info dataclasses and enums, factories and instances,
and end hooks for operations the engine finished while the execution was suspended."""

from __future__ import annotations

import dataclasses
import datetime
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import aws_durable_execution_sdk_python.plugin as aws_plugin
import pytest
from durably import (
    DurableContext,
    DurableInstrumentationPlugin,
    Duration,
    InvocationEndInfo,
    InvocationStartInfo,
    JitterStrategy,
    OperationChangeInfo,
    OperationEndInfo,
    OperationStartInfo,
    OperationStatus,
    OperationType,
    PluginLoadError,
    RetryStrategyConfig,
    StepConfig,
    UserFunctionEndInfo,
    UserFunctionOutcome,
    create_retry_strategy,
    durable_execution,
)
from durably.core import plugins as durably_plugins
from durably.core.engine.clock import SkippingClock
from durably.core.engine.engine import Engine

from .conftest import MakeRunner

INFO_CLASSES = ["OperationInfo", "OperationStartInfo", "OperationEndInfo", "OperationChangeInfo",
                "UserFunctionStartInfo", "UserFunctionEndInfo", "InvocationInfo", "InvocationStartInfo",
                "InvocationEndInfo", "PropagationInput", "PropagationMetadata"]
DURABLY_ADDITIONS = {"execution_arn", "records", "trace_header"}


@pytest.mark.parametrize("name", INFO_CLASSES)
def test_info_dataclasses_have_aws_fields_in_aws_order(name: str) -> None:
    def shape(cls: Any) -> list[tuple[str, Any]]:
        return [(f.name, f.kw_only) for f in dataclasses.fields(cls)]

    ours = [entry for entry in shape(getattr(durably_plugins, name))
            if entry[0] not in DURABLY_ADDITIONS or entry[0] in dict(shape(getattr(aws_plugin, name)))]
    assert ours == shape(getattr(aws_plugin, name))


@pytest.mark.parametrize(("ours", "theirs"), [(durably_plugins.InvocationStatus, aws_plugin.InvocationStatus),
                                              (UserFunctionOutcome, aws_plugin.UserFunctionOutcome),
                                              (OperationType, aws_plugin.OperationType)])
def test_plugin_enums_have_aws_members(ours: Any, theirs: Any) -> None:
    assert {m.name: m.value for m in ours} == {m.name: m.value for m in theirs}


class Log(DurableInstrumentationPlugin):
    """Records every operation and invocation hook with the invocation it came in."""

    def __init__(self, invocation: list[int], seen: list[tuple[int, str, Any]], lock: threading.Lock) -> None:
        self.invocation, self.seen, self.lock = invocation, seen, lock

    def _add(self, hook: str, info: Any) -> None:
        with self.lock:
            self.seen.append((self.invocation[0], hook, info))

    def on_invocation_start(self, info: InvocationStartInfo) -> None:
        with self.lock:
            self.invocation[0] += 1
        self._add("invocation_start", info)

    def on_invocation_end(self, info: InvocationEndInfo) -> None:
        self._add("invocation_end", info)

    def on_operation_start(self, info: OperationStartInfo) -> None:
        self._add("start", info)

    def on_operation_end(self, info: OperationEndInfo) -> None:
        self._add("end", info)

    def on_operation_change(self, info: OperationChangeInfo) -> None:
        self._add("change", info)

    def on_user_function_end(self, info: UserFunctionEndInfo) -> None:
        self._add("user_end", info)


class LogFactory:
    def __init__(self) -> None:
        self.invocation = [0]
        self.seen: list[tuple[int, str, Any]] = []
        self.lock = threading.Lock()
        self.created = 0

    def create_plugin(self, info: InvocationStartInfo) -> Log:
        self.created += 1
        return Log(self.invocation, self.seen, self.lock)

    def ends(self) -> list[tuple[int, OperationEndInfo]]:
        return [(n, info) for n, hook, info in self.seen if hook == "end"]


def test_factories_and_plugin_instances_both_work(make_runner: MakeRunner) -> None:
    factory = LogFactory()
    instance = Log([0], [], threading.Lock())

    @durable_execution(plugins=[factory, instance])
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.wait(Duration(1), name="pause")
        return ctx.step(lambda _: "ok", name="work")

    result = make_runner(handler).run(None)
    assert result.value == "ok"
    assert factory.created == 2  # once per invocation
    for seen in (factory.seen, instance.seen):
        assert [hook for _, hook, _ in seen if hook.startswith("invocation")] == ["invocation_start",
                                                                                  "invocation_end"] * 2
    (end,) = [info for _, hook, info in factory.seen if hook == "invocation_end" and info.execution_result]
    assert end.status is durably_plugins.InvocationStatus.SUCCEEDED and end.execution_result == '"ok"'
    assert end.operations[result.get_step("work").Id].status is OperationStatus.SUCCEEDED


class PluginClass(DurableInstrumentationPlugin):
    pass


class FactoryClass:
    def create_plugin(self, info: InvocationStartInfo) -> PluginClass:
        return PluginClass()


class StaticFactory:
    @staticmethod
    def create_plugin(info: InvocationStartInfo) -> PluginClass:
        return PluginClass()


@pytest.mark.parametrize(("entry", "why"), [
    (PluginClass, "plugins[1] is the class PluginClass, not an instance"),
    (FactoryClass, "plugins[1] is the factory class FactoryClass, not an instance of it"),
    (lambda info: PluginClass(), "which has no plugin hooks"),
    (object(), "which has no plugin hooks"),
], ids=["plugin-class", "factory-class", "lambda", "object"])
def test_unusable_plugin_entries_are_refused_when_decorating(entry: Any, why: str) -> None:
    with pytest.raises(PluginLoadError, match=re.escape(why)):
        durable_execution(plugins=[LogFactory(), entry])(lambda event, ctx: None)


def test_a_factory_class_with_a_static_create_plugin_is_a_factory() -> None:
    durable_execution(plugins=[StaticFactory])(lambda event, ctx: None)


def test_end_hooks_fire_once_for_operations_finished_while_suspended_on_the_embedded_engine(tmp_path: Path) -> None:
    factory = LogFactory()
    once_more = create_retry_strategy(RetryStrategyConfig(max_attempts=2, initial_delay=Duration(1),
                                                          jitter_strategy=JitterStrategy.NONE))
    attempts: list[int] = []

    def flaky(_: Any) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("first attempt fails")
        return "second attempt"

    @durable_execution(plugins=[factory])
    def handler(event: Any, ctx: DurableContext) -> Any:
        def notify(child: DurableContext) -> str:
            return child.create_callback(name="fyi").callback_id  # never awaited

        ctx.run_in_child_context(notify, name="notify")
        ctx.wait(Duration(1), name="pause")
        retried = ctx.step(flaky, name="flaky", config=StepConfig(retry_strategy=once_more))
        answer = ctx.wait_for_callback(lambda cid, wctx: None, name="approval")
        ctx.wait(Duration(1), name="after")
        return [retried, answer]

    engine = Engine(tmp_path / "engine.db", synchronous="OFF", clock=SkippingClock())
    try:
        arn = engine.start_execution(handler, None, name="plugins")

        def drive() -> dict[str, Any]:
            return engine.run_until_complete(arn, timeout=30, skip_time=True, stop_when_blocked=True)

        assert drive()["Status"] == "RUNNING"  # waits on "approval"
        callback_ids = {op.Name: op.CallbackDetails.CallbackId for op in engine.service.all_operations(arn)
                        if op.CallbackDetails and op.CallbackDetails.CallbackId}
        engine.send_callback_success(callback_ids["fyi"], "noted")
        engine.send_callback_success(callback_ids["approval create callback id"], "yes")
        done = drive()
        ops = {op.Name: op for op in engine.service.all_operations(arn) if op.Name and op.Type != "EXECUTION"}
    finally:
        engine.close()
        engine.store.close()
    assert done["Status"] == "SUCCEEDED", done
    ends = factory.ends()
    per_op = Counter(info.operation_id for _, info in ends)
    assert per_op and set(per_op.values()) == {1}  # every end hook once, over all the invocations
    when = {info.name: n for n, info in ends}
    invocations = factory.invocation[0]
    assert invocations == 5  # pause, flaky's retry timer, approval, after
    assert when["pause"] == 2 and when["flaky"] == 3
    assert when["approval create callback id"] == when["approval"] == 4  # nested, answered while suspended
    assert when["fyi"] == 4  # answered while suspended, in a child no code re-runs: before invocation_end
    assert set(per_op) == {op.Id for op in ops.values() if op.Status in ("SUCCEEDED", "FAILED")}
    (fyi,) = [info for _, info in ends if info.name == "fyi"]
    assert (fyi.operation_type, fyi.status, fyi.result) == (OperationType.CALLBACK, OperationStatus.SUCCEEDED,
                                                            "noted")
    assert isinstance(fyi.end_time, datetime.datetime) and fyi.start_time and fyi.end_time >= fyi.start_time
    assert fyi.parent_id == ops["notify"].Id and fyi.is_replayed is False
    last = [hook for n, hook, _ in factory.seen if n == 4]
    assert last.index("invocation_end") == len(last) - 1
    (pause,) = [info for _, info in ends if info.name == "pause"]
    assert pause.operation_type is OperationType.WAIT and pause.end_time is not None
    restarts = [info for n, hook, info in factory.seen if hook == "start" and info.name == "flaky"]
    assert [info.is_replayed for info in restarts] == [False, True]  # the second attempt's START
    (failed_attempt, _) = [info for _, hook, info in factory.seen if hook == "user_end" and info.name == "flaky"]
    assert failed_attempt.outcome is UserFunctionOutcome.FAILED
    assert failed_attempt.error and failed_attempt.error.type == "ConnectionError"
    assert any(hook == "change" for _, hook, _ in factory.seen)
