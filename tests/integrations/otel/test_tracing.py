"""One trace per execution, built from the durable record: the span tree of a multi-invocation
execution, no duplicates after replay, attempts of a retried step, errors with their stack trace."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from durably import (
    DurableContext,
    Duration,
    RetryPresets,
    StepConfig,
    StepContext,
    durable_execution,
)
from durably.core import InvocationStartInfo, RetryDecision
from durably.integrations.otel import DurableTracing, instrument, span_id_of, trace_id_of, uninstrument
from durably.testing import DurableTestRunner
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from .spans import Spans

FLAKY: list[int] = []


def flaky(step: StepContext) -> str:
    FLAKY.append(step.attempt)
    if step.attempt < 3:
        raise ConnectionError(f"try {step.attempt} failed")
    return "ok"


def twice(item: int, ctx: Any = None) -> int:
    return item * 2


def handler_for(spans: Spans) -> Any:
    @durable_execution(plugins=[DurableTracing(spans.provider)])
    def handler(event: Any, ctx: DurableContext) -> Any:
        greeting = ctx.step(lambda step: "hello", name="greet")
        ctx.wait(Duration.from_seconds(30), name="pause")
        answer = ctx.wait_for_callback(lambda callback_id, _: None, name="approval")
        retry = StepConfig(retry_strategy=lambda error, attempt: RetryDecision.retry(Duration.from_seconds(2))
                           if attempt < 3 else RetryDecision.no_retry())
        fixed = ctx.step(flaky, name="flaky", config=retry)
        doubled = ctx.map([1, 2], lambda c, item, index, items: item * 2, name="double")
        return {"greeting": greeting, "answer": answer, "fixed": fixed, "doubled": doubled.get_results()}
    return handler


def test_a_multi_invocation_execution_is_one_trace_with_one_span_per_operation(spans: Spans) -> None:
    FLAKY.clear()
    with DurableTestRunner(handler_for(spans)) as runner:
        arn = runner.run_async()
        assert runner.resume(arn).status == "RUNNING"  # waits for the callback
        runner.send_callback_success(runner.callback_id(arn, "approval"), json.dumps("yes"))
        result = runner.resume(arn)
        assert result.status == "SUCCEEDED", result.error
        operations = {op.Name: op for op in result.operations if op.Name}

    found = spans.all
    assert {s.trace_id for s in found} == {trace_id_of(arn)}
    ids = [s.span_id for s in found]
    assert len(ids) == len(set(ids)), sorted(s.name for s in found)  # nothing twice, although it replayed

    execution = spans.one("execution " + arn.split(":function:")[1].split(":")[0])
    assert execution.parent_id is None and execution.span_id == span_id_of(arn, "execution")
    assert execution.kind == SpanKind.SERVER

    invocations = spans.named("invocation")
    assert len(invocations) >= 3 and all(s.parent_id == execution.span_id for s in invocations)
    assert [s.attrs["durable.invocation.first"] for s in invocations].count(True) == 1

    for name in ("greet", "pause", "approval", "flaky", "double"):
        span = spans.one(name)
        op = operations[name]
        assert span.span_id == span_id_of(arn, op.Id)
        assert span.parent_id == execution.span_id
        assert op.StartTimestamp is not None and op.EndTimestamp is not None
        assert span.start == op.StartTimestamp * 1_000_000 and span.end == op.EndTimestamp * 1_000_000
        assert span.attrs["durable.operation.id"] == op.Id
        assert span.attrs["durable.operation.type"] == op.Type
        assert span.attrs["durable.operation.status"] == "SUCCEEDED"
        assert span.attrs["openinference.span.kind"] == "CHAIN"
    assert spans.one("pause").end - spans.one("pause").start >= 30 * 10**9  # one span across invocations

    attempts = sorted((s for s in found if s.name.startswith("flaky attempt")), key=lambda s: s.start)
    assert [s.attrs["durable.attempt.number"] for s in attempts] == [1, 2, 3]
    assert [s.attrs["durable.attempt.outcome"] for s in attempts] == ["failed", "failed", "succeeded"]
    assert all(s.parent_id == spans.one("flaky").span_id for s in attempts)
    assert attempts[0].status == StatusCode.ERROR
    assert attempts[0].events[0][1]["exception.type"] == "ConnectionError"

    double = spans.one("double")
    items = spans.children(double)
    assert len(items) == 2 and all(s.attrs["durable.operation.subtype"] == "MapIteration" for s in items)


def test_a_failed_step_is_an_error_span_with_its_stored_stack_trace(spans: Spans) -> None:
    def broken(step: StepContext) -> None:
        raise ValueError("the warehouse is on fire")

    @durable_execution(plugins=[DurableTracing(spans.provider)])
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.step(broken, name="ship", config=StepConfig(retry_strategy=RetryPresets.none()))

    with DurableTestRunner(handler) as runner:
        result = runner.run()
    assert result.status == "FAILED"
    ship = spans.one("ship")
    assert ship.status == StatusCode.ERROR
    assert ship.description is not None and "the warehouse is on fire" in ship.description
    name, event = ship.events[0]
    assert name == "exception" and event["exception.type"] == "ValueError"
    assert "broken" in str(event["exception.stacktrace"])  # the frames the engine stored
    execution = next(s for s in spans.all if s.name.startswith("execution "))
    assert execution.status == StatusCode.ERROR


def test_tracing_is_off_until_an_sdk_provider_is_set() -> None:
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)  # nothing set in this process
    assert DurableTracing().create_plugin(InvocationStartInfo(None, "arn", True)) is None  # no plugin: no cost


def test_instrument_traces_every_handler_until_uninstrumented(spans: Spans) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.step(lambda step: "hi", name="greet")

    instrument(spans.provider)
    try:
        with DurableTestRunner(handler) as runner:
            assert runner.run().status == "SUCCEEDED"
    finally:
        uninstrument()
    assert len(spans.named("greet")) == 1
    with DurableTestRunner(handler) as runner:
        runner.run()
    assert len(spans.named("greet")) == 1


CALLER_TRACE, CALLER_SPAN = 0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7


def test_a_caller_traceparent_makes_the_execution_a_child_of_the_callers_span(spans: Spans) -> None:
    @durable_execution(plugins=[DurableTracing(spans.provider)])
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.step(lambda step: "hi", name="greet")

    with DurableTestRunner(handler) as runner:
        arn = runner.engine.start_execution(
            handler, {}, trace_context=f"00-{CALLER_TRACE:032x}-{CALLER_SPAN:016x}-01")
        assert runner.resume(arn).status == "SUCCEEDED"
    assert {s.trace_id for s in spans.all} == {CALLER_TRACE}
    execution = next(s for s in spans.all if s.name.startswith("execution "))
    assert execution.parent_id == CALLER_SPAN
    assert spans.one("greet").parent_id == execution.span_id


def test_an_invoked_execution_is_nested_under_the_invoking_operation(spans: Spans) -> None:
    tracing = DurableTracing(spans.provider)

    @durable_execution(plugins=[tracing])
    def child(event: Any, ctx: DurableContext) -> str:
        return ctx.step(lambda step: "stocked", name="count stock")

    @durable_execution(plugins=[tracing])
    def parent(event: Any, ctx: DurableContext) -> Any:
        return ctx.invoke("stock", {"sku": 1}, name="restock")

    with DurableTestRunner(parent) as runner:
        runner.register_durable_function("stock", child)
        result = runner.run()
    assert result.status == "SUCCEEDED"
    assert {s.trace_id for s in spans.all} == {trace_id_of(result.arn)}  # one trace for both executions
    restock = spans.one("restock")
    executions = {s.name: s for s in spans.all if s.name.startswith("execution ")}
    child_execution = executions["execution stock"]
    assert child_execution.parent_id == restock.span_id
    assert spans.one("count stock").parent_id == child_execution.span_id


def test_log_records_of_a_traced_execution_carry_its_trace_and_span_ids(spans: Spans,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    def greet(step: StepContext) -> str:
        step.logger.info("greeting")
        return "hi"

    @durable_execution(plugins=[DurableTracing(spans.provider)])
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.logger.info("starting")
        return ctx.step(greet, name="greet")

    with caplog.at_level(logging.INFO, logger="durably.workflow"), DurableTestRunner(handler) as runner:
        result = runner.run()
    records = {r.getMessage(): r for r in caplog.records if r.name == "durably.workflow"}
    trace_hex = f"{trace_id_of(result.arn):032x}"
    assert vars(records["starting"])["trace_id"] == trace_hex
    assert vars(records["starting"])["span_id"] == f"{span_id_of(result.arn, 'execution'):016x}"
    assert vars(records["greeting"])["trace_id"] == trace_hex
    assert vars(records["greeting"])["span_id"] == f"{spans.one('greet').span_id:016x}"
