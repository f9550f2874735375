"""Tracing the layers: an agent run as GenAI spans (invoke_agent, chat, execute_tool), content only
when asked, and a saga's compensations marked and linked to the steps they undo."""

from __future__ import annotations

import json
from typing import Any

import pytest
from durably import DurableContext, RetryDecision, StepConfig, StepContext, durable_execution
from durably.agents import Agent, require_approval
from durably.agents.testing import ScriptedChatModel
from durably.integrations.otel import DurableTracing
from durably.sagas import SagaRolledBack, Undo, saga
from durably.testing import DurableTestRunner
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from opentelemetry.trace import SpanKind, StatusCode

from .spans import Spans


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order."""
    return json.dumps({"order_id": order_id, "total": 250})


@tool
def refund(order_id: str, amount: int) -> str:
    """Refund part of an order."""
    return f"refunded {amount} on {order_id}"


def usage(total: int) -> dict[str, int]:
    return {"input_tokens": total - 10, "output_tokens": 10, "total_tokens": total}


def call(name: str, call_id: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


def agent_handler(spans: Spans, **tracing: Any) -> Any:
    script = [AIMessage("", tool_calls=[call("lookup_order", "c1", order_id="A-1")],
                                 usage_metadata=usage(100), response_metadata={"finish_reason": "tool_calls"}),
              AIMessage("", tool_calls=[call("refund", "r1", order_id="A-1", amount=200),
                                                 call("lookup_order", "c2", order_id="B-2")],
                                 usage_metadata=usage(150)),
              AIMessage("Refunded.", usage_metadata=usage(200), response_metadata={"finish_reason": "stop"})]
    agent = Agent(ScriptedChatModel(script=script), [lookup_order, refund], name="desk",
                  approval=require_approval("refund"))

    @durable_execution(plugins=[DurableTracing(spans.provider, **tracing)])
    def handler(event: Any, ctx: DurableContext) -> Any:
        return agent.run(ctx, "refund A-1").to_json()
    return handler


def run_agent(handler: Any) -> None:
    with DurableTestRunner(handler) as runner:
        arn = runner.run_async()
        assert runner.resume(arn).status == "RUNNING"
        runner.send_callback_success(runner.callback_id(arn, "approve refund"), '{"decision": "approve"}')
        assert runner.resume(arn).status == "SUCCEEDED"


def test_an_agent_run_is_genai_spans(spans: Spans) -> None:
    run_agent(agent_handler(spans))
    agent = spans.one("invoke_agent desk")
    assert agent.attrs["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attrs["gen_ai.agent.name"] == "desk"
    assert agent.attrs["gen_ai.provider.name"] == "scriptedchatmodel"
    assert (agent.attrs["gen_ai.usage.input_tokens"], agent.attrs["gen_ai.usage.output_tokens"]) == (420, 30)
    assert (agent.attrs["openinference.span.kind"], agent.attrs["mlflow.spanType"]) == ("AGENT", "AGENT")

    chats = sorted(spans.named("chat scripted"), key=lambda s: s.start)
    assert len(chats) == 3 and all(s.parent_id == agent.span_id for s in chats)
    first = chats[0]
    assert first.kind == SpanKind.CLIENT
    assert first.attrs["gen_ai.operation.name"] == "chat"
    assert first.attrs["gen_ai.request.model"] == "scripted"
    assert first.attrs["gen_ai.provider.name"] == "scriptedchatmodel"
    assert first.attrs["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert (first.attrs["gen_ai.usage.input_tokens"], first.attrs["gen_ai.usage.output_tokens"]) == (90, 10)
    assert (first.attrs["openinference.span.kind"], first.attrs["mlflow.spanType"]) == ("LLM", "CHAT_MODEL")

    calls = {s.attrs["gen_ai.tool.call.id"]: s for s in spans.all if s.name.startswith("execute_tool ")}
    assert sorted(calls) == ["c1", "c2", "r1"]
    assert calls["r1"].name == "execute_tool refund" and calls["r1"].attrs["gen_ai.tool.name"] == "refund"
    assert calls["r1"].attrs["durably.tool.outcome"] == "ran"
    assert all(s.attrs["openinference.span.kind"] == "TOOL" for s in calls.values())
    assert {s.name for s in spans.children(calls["r1"])} >= {"refund", "approve refund"}  # the step, its approval
    assert not any(key in s.attrs for s in spans.all for key in
                   ("gen_ai.output.messages", "gen_ai.tool.call.arguments", "gen_ai.tool.call.result"))
    ids = [s.span_id for s in spans.all]
    assert len(ids) == len(set(ids))  # three invocations, nothing reported twice


def test_content_is_on_the_spans_only_when_asked(spans: Spans, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    run_agent(agent_handler(spans))
    last = max(spans.named("chat scripted"), key=lambda s: s.start)
    assert json.loads(last.attrs["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Refunded."}], "finish_reason": "stop"}]
    tool = next(s for s in spans.all if s.attrs.get("gen_ai.tool.call.id") == "r1")
    assert json.loads(tool.attrs["gen_ai.tool.call.arguments"]) == {"order_id": "A-1", "amount": 200}
    assert tool.attrs["gen_ai.tool.call.result"] == "refunded 200 on A-1"


def test_without_genai_the_model_call_is_a_plain_step_span(spans: Spans) -> None:
    run_agent(agent_handler(spans, genai=False))  # as when LangChain's own instrumentation reports model calls
    assert len(spans.named("model")) == 3 and spans.named("chat scripted") == []
    assert not any(key.startswith("gen_ai.") for s in spans.all for key in s.attrs)


def test_compensations_are_marked_and_linked_to_the_steps_they_undo(spans: Spans) -> None:
    def reserve(step: StepContext) -> str:
        return "reserved"

    def release(step: StepContext, undo: Undo) -> None:
        pass

    def charge(step: StepContext) -> str:
        return "charged"

    def refund_charge(step: StepContext, undo: Undo) -> None:
        pass

    def ship(step: StepContext) -> None:
        raise RuntimeError("no courier")

    @durable_execution(plugins=[DurableTracing(spans.provider)])
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            with saga(ctx, "order") as order:
                order.step(reserve, compensate=release)
                order.step(charge, compensate=refund_charge)
                order.step(ship, config=StepConfig(retry_strategy=lambda e, a: RetryDecision.no_retry()))
        except SagaRolledBack:
            return "rolled back"

    with DurableTestRunner(handler) as runner:
        assert runner.run().value == "rolled back"
    for forward in ("reserve", "charge"):
        undo = spans.one(f"undo {forward}")
        assert undo.attrs["durably.compensation"] is True
        assert undo.attrs["durable.operation.subtype"] == "Compensation"
        assert undo.links == [(spans.one(forward).span_id, {"durably.link": "undoes"})]
    order = spans.one("order")
    assert order.attrs["durably.saga.outcome"] == "rolled_back" and order.status == StatusCode.ERROR
    assert spans.one("ship").status == StatusCode.ERROR
