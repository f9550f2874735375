"""What a span says about an operation: its name, attributes (AWS's ``durable.*`` names, the GenAI
semantic conventions on agents, the span-kind hints LLM backends read), kind and links."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from durably.core import Operation
from durably.integrations.otel._record import (
    AGENT_SUBTYPE,
    Record,
    ai_message,
    error_of,
    json_of,
    result_of,
    saga_outcome,
    tool_call,
    undone_step,
)
from durably.sagas import COMPENSATION_SUBTYPE
from opentelemetry.trace import SpanKind

OPENINFERENCE_KIND = "openinference.span.kind"
MLFLOW_KIND = "mlflow.spanType"
KIND_HINTS = {"chain": ("CHAIN", "CHAIN"), "llm": ("LLM", "CHAT_MODEL"), "tool": ("TOOL", "TOOL"),
              "agent": ("AGENT", "AGENT")}
"""Our kind -> (OpenInference's ``openinference.span.kind``, MLflow's ``mlflow.spanType``)."""


@dataclass
class Shape:
    name: str
    attributes: dict[str, Any]
    kind: SpanKind = SpanKind.INTERNAL
    link_to: list[str] = field(default_factory=list)
    """Operation ids whose spans this one links to (a compensation: the step it undoes)."""


@dataclass(frozen=True)
class Options:
    genai: bool = True
    """GenAI attributes and names on agent spans (off when LangChain's own instrumentation reports
    the model calls, so a call is not counted twice)."""
    capture_content: bool = False
    """Message content and tool arguments and results on GenAI spans."""


def hinted(attributes: dict[str, Any], kind: str) -> dict[str, Any]:
    openinference, mlflow = KIND_HINTS[kind]
    attributes[OPENINFERENCE_KIND] = openinference
    attributes[MLFLOW_KIND] = mlflow
    return attributes


def durable_attributes(arn: str, op: Operation) -> dict[str, Any]:
    attributes: dict[str, Any] = {"durable.execution.arn": arn, "durable.operation.id": op.Id,
                                  "durable.operation.type": op.Type, "durable.operation.status": op.Status}
    if op.SubType:
        attributes["durable.operation.subtype"] = op.SubType
    if op.Name:
        attributes["durable.operation.name"] = op.Name
    if op.StepDetails is not None and op.StepDetails.Attempt:
        attributes["durable.attempt.number"] = op.StepDetails.Attempt
    if op.CallbackDetails is not None and op.CallbackDetails.CallbackId:
        attributes["durable.callback.id"] = op.CallbackDetails.CallbackId
    return attributes


def shape_of(arn: str, op: Operation, record: Record, options: Options) -> Shape:
    """The span of a finished operation."""
    attributes = durable_attributes(arn, op)
    name = op.Name or op.Type.lower()
    if options.genai:
        message = ai_message(op)
        if message is not None and record.nearest(op, AGENT_SUBTYPE) is not None:
            return _chat(attributes, message, options)
        call = tool_call(op, record)
        if call is not None:
            return _tool(attributes, op, *call, options)
        if op.Type == "CONTEXT" and op.SubType == AGENT_SUBTYPE:
            return _agent(attributes, op, name, record)
    if op.SubType == COMPENSATION_SUBTYPE:
        undone = undone_step(op, record)
        attributes["durably.compensation"] = True
        attributes["durably.compensation.undoes"] = op.Name or ""
        return Shape(f"undo {name}", hinted(attributes, "chain"), link_to=[undone.Id] if undone else [])
    outcome = saga_outcome(op)
    if outcome is not None:
        attributes["durably.saga.outcome"] = outcome
    return Shape(name, hinted(attributes, "chain"))


def _metadata(message: dict[str, Any]) -> dict[str, Any]:
    meta = message.get("response_metadata")
    return meta if isinstance(meta, dict) else {}


def _chat(attributes: dict[str, Any], message: dict[str, Any], options: Options) -> Shape:
    meta = _metadata(message)
    response_model = meta.get("model_name") or meta.get("model")
    request_model = meta.get("ls_model_name") or response_model
    attributes.update({"gen_ai.operation.name": "chat", "gen_ai.provider.name": _provider(message)})
    if request_model:
        attributes["gen_ai.request.model"] = str(request_model)
    if response_model:
        attributes["gen_ai.response.model"] = str(response_model)
    if message.get("id"):
        attributes["gen_ai.response.id"] = str(message["id"])
    finish = meta.get("finish_reason") or meta.get("stop_reason") or meta.get("done_reason")
    if finish:
        attributes["gen_ai.response.finish_reasons"] = [str(finish)]
    usage = message.get("usage_metadata")
    if isinstance(usage, dict):
        for key in ("input_tokens", "output_tokens"):
            if isinstance(usage.get(key), int):
                attributes[f"gen_ai.usage.{key}"] = usage[key]
    if options.capture_content:
        attributes["gen_ai.output.messages"] = json.dumps([_output_message(message, finish)])
    name = f"chat {request_model}" if request_model else "chat"
    return Shape(name, hinted(attributes, "llm"), SpanKind.CLIENT)


def _provider(message: dict[str, Any]) -> str:
    meta = _metadata(message)
    return str(meta.get("model_provider") or meta.get("ls_provider") or "unknown")


def _agent_provider(op: Operation, record: Record) -> str:
    """The provider of the agent's model, read from its model steps (the run itself records none)."""
    for candidate in record.ops.values():
        message = ai_message(candidate)
        agent = record.nearest(candidate, AGENT_SUBTYPE) if message is not None else None
        if message is not None and agent is not None and agent.Id == op.Id:
            return _provider(message)
    return "unknown"


def _output_message(message: dict[str, Any], finish: Any) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, str) and content:
        parts.append({"type": "text", "content": content})
    elif isinstance(content, list):
        parts += [{"type": "text", "content": b.get("text", "")} for b in content
                  if isinstance(b, dict) and b.get("type") == "text"]
    for call in message.get("tool_calls") or []:
        if isinstance(call, dict):
            parts.append({"type": "tool_call", "id": call.get("id"), "name": call.get("name"),
                          "arguments": call.get("args")})
    out: dict[str, Any] = {"role": "assistant", "parts": parts}
    if finish:
        out["finish_reason"] = str(finish)
    return out


def _tool(attributes: dict[str, Any], op: Operation, tool: str, call_id: str, recorded: dict[str, Any],
          options: Options) -> Shape:
    attributes.update({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool,
                       "gen_ai.tool.call.id": call_id, "gen_ai.tool.type": "function"})
    outcome = recorded.get("outcome")
    if outcome:
        attributes["durably.tool.outcome"] = str(outcome)
    if outcome == "error":
        attributes["error.type"] = "tool_error"
    if options.capture_content:
        if "args" in recorded:
            attributes["gen_ai.tool.call.arguments"] = json.dumps(recorded["args"])
        if "content" in recorded:
            attributes["gen_ai.tool.call.result"] = str(recorded["content"])
    return Shape(f"execute_tool {tool}", hinted(attributes, "tool"))


def _agent(attributes: dict[str, Any], op: Operation, name: str, record: Record) -> Shape:
    attributes.update({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name,
                       "gen_ai.provider.name": _agent_provider(op, record)})
    result = json_of(result_of(op))
    usage = result.get("usage") if isinstance(result, dict) else None
    if isinstance(usage, dict):
        for key in ("input_tokens", "output_tokens"):
            if isinstance(usage.get(key), int):
                attributes[f"gen_ai.usage.{key}"] = usage[key]
    error = error_of(op)
    if error is not None and error.ErrorType:
        attributes["error.type"] = error.ErrorType
    return Shape(f"invoke_agent {name}", hinted(attributes, "agent"))
