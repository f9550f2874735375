"""Metrics from the same durable record: executions started and ended by status, operation
durations, step retries, open callbacks, and the GenAI client metrics of agents' model calls.
Reported once per fact, by the invocation that reports the matching span."""

from __future__ import annotations

from typing import Any

from durably.core import Operation
from durably.integrations.otel._record import ai_message

SECONDS = "s"


class Instruments:
    """The instruments of one meter (the global meter provider's unless one is given)."""

    def __init__(self, meter: Any) -> None:
        self.started = meter.create_counter(
            "durably.executions.started", unit="{execution}", description="Executions that began running")
        self.ended = meter.create_counter(
            "durably.executions.ended", unit="{execution}", description="Executions that ended, by status")
        self.duration = meter.create_histogram(
            "durably.operation.duration", unit=SECONDS, description="Durable operations, start to end")
        self.retries = meter.create_counter(
            "durably.step.retries", unit="{retry}", description="Step attempts that failed and are retried")
        self.open_callbacks = meter.create_up_down_counter(
            "durably.callbacks.open", unit="{callback}", description="Callbacks waiting for an answer")
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Tokens of agents' model calls")
        self.model_duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit=SECONDS, description="Agents' model calls, start to end")

    def operation_ended(self, function: str, op: Operation, provider: str | None) -> None:
        attributes = {"durable.function.name": function, "durable.operation.type": op.Type,
                      "durable.operation.status": op.Status}
        if op.SubType:
            attributes["durable.operation.subtype"] = op.SubType
        seconds = _seconds(op)
        if seconds is not None:
            self.duration.record(seconds, attributes)
        if op.Type == "CALLBACK":
            self.open_callbacks.add(-1, {"durable.function.name": function})
        message = ai_message(op) if provider is not None else None
        if message is None:
            return
        genai = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": provider}
        meta = message.get("response_metadata")
        model = meta.get("ls_model_name") or meta.get("model_name") if isinstance(meta, dict) else None
        if model:
            genai["gen_ai.request.model"] = str(model)
        if seconds is not None:
            self.model_duration.record(seconds, genai)
        usage = message.get("usage_metadata")
        for kind in ("input", "output"):
            count = usage.get(f"{kind}_tokens") if isinstance(usage, dict) else None
            if isinstance(count, int):
                self.tokens.record(count, {**genai, "gen_ai.token.type": kind})

    def operation_started(self, function: str, op: Operation) -> None:
        if op.Type == "CALLBACK":
            self.open_callbacks.add(1, {"durable.function.name": function})

    def retried(self, function: str, op: Operation) -> None:
        self.retries.add(1, {"durable.function.name": function, "durable.operation.name": op.Name or ""})


def _seconds(op: Operation) -> float | None:
    if op.StartTimestamp is None or op.EndTimestamp is None:
        return None
    return max(op.EndTimestamp - op.StartTimestamp, 0) / 1000
