"""Metrics from the durable record: executions started and ended, operation durations, retries,
open callbacks, and the GenAI token usage of an agent's model calls; each counted once although
the execution replays across invocations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from durably import DurableContext, Duration, RetryDecision, StepConfig, StepContext, durable_execution
from durably.agents import Agent
from durably.agents.testing import ScriptedChatModel
from durably.integrations.otel import DurableTracing
from durably.testing import DurableTestRunner
from langchain_core.messages import AIMessage
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from .spans import Spans


class Metrics:
    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])


@pytest.fixture
def reader() -> Iterator[Metrics]:
    found = Metrics()
    yield found
    found.provider.shutdown()


def points(reader: Metrics) -> dict[str, list[Any]]:
    data = reader.reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


def test_metrics_count_each_fact_once_across_invocations(spans: Spans, reader: Metrics) -> None:
    def flaky(step: StepContext) -> str:
        if step.attempt < 3:
            raise ConnectionError("try again")
        return "ok"

    retry = StepConfig(retry_strategy=lambda e, attempt: RetryDecision.retry(Duration.from_seconds(1))
                       if attempt < 3 else RetryDecision.no_retry())
    agent = Agent(ScriptedChatModel(script=[AIMessage("done", usage_metadata={
        "input_tokens": 40, "output_tokens": 2, "total_tokens": 42})]))

    @durable_execution(plugins=[DurableTracing(spans.provider, meter_provider=reader.provider)])
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.step(flaky, name="flaky", config=retry)
        ctx.wait_for_callback(lambda callback_id, _: None, name="approve")
        return agent.run(ctx, "hi").text

    with DurableTestRunner(handler) as runner:
        arn = runner.run_async()
        assert runner.resume(arn).status == "RUNNING"
        assert points(reader)["durably.callbacks.open"][0].value == 1
        runner.send_callback_success(runner.callback_id(arn, "approve"), '"yes"')
        assert runner.resume(arn).status == "SUCCEEDED"

    found = points(reader)
    assert [p.value for p in found["durably.executions.started"]] == [1]
    (ended,) = found["durably.executions.ended"]
    assert ended.value == 1 and ended.attributes["durable.execution.status"] == "SUCCEEDED"
    assert sum(p.value for p in found["durably.step.retries"]) == 2
    assert [p.value for p in found["durably.callbacks.open"]] == [0]
    steps = [p for p in found["durably.operation.duration"] if p.attributes["durable.operation.type"] == "STEP"]
    assert sum(p.count for p in steps) == len([s for s in spans.all if s.attrs.get("durable.operation.type") == "STEP"])
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in found["gen_ai.client.token.usage"]}
    assert tokens == {"input": 40, "output": 2}
    assert all(p.attributes["gen_ai.provider.name"] == "scriptedchatmodel" for p in found["gen_ai.client.token.usage"])
