"""Suite 4 (create_callback): handlers written from the requirements' prose."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from durably import (
    CallbackConfig,
    CallbackError,
    CallbackTimeoutError,
    DurableContext,
    Duration,
    SerDes,
    SerDesContext,
    durable_execution,
)

from .registry import requirement


@requirement("4-1")
@durable_execution
def callback_basic(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event)
    return callback.result()


@requirement("4-2")
@durable_execution
def callback_named(event: Any, context: DurableContext) -> Any:
    return context.create_callback(name="approval").result()


@requirement("4-3")
@durable_execution
def callback_timeout(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event, config=CallbackConfig(timeout=Duration.from_seconds(5)))
    return callback.result()


@requirement("4-4")
@durable_execution
def callback_heartbeat_timeout(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event, config=CallbackConfig(heartbeat_timeout=Duration.from_seconds(5)))
    return callback.result()


@requirement("4-5")
@durable_execution
def callback_heartbeat_kept_alive(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event, config=CallbackConfig(heartbeat_timeout=Duration.from_seconds(10)))
    return callback.result()


@requirement("4-6")
@durable_execution
def callback_failure(event: Any, context: DurableContext) -> Any:
    return context.create_callback(name=event).result()


@requirement("4-7")
@durable_execution
def callback_step_then_failure(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event)
    context.step(lambda _: "side work", name="side-work")
    return callback.result()


@requirement("4-8")
@durable_execution
def callback_step_then_timeout(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event, config=CallbackConfig(timeout=Duration.from_seconds(5)))
    context.step(lambda _: "side work", name="side-work")
    return callback.result()


@requirement("4-9")
@durable_execution
def callback_during_wait(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event)
    context.wait(Duration.from_seconds(5))
    return callback.result()


@requirement("4-10")
@durable_execution
def callback_failure_during_wait(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event)
    context.wait(Duration.from_seconds(5))
    return callback.result()


@requirement("4-11")
@durable_execution
def callback_timeout_during_wait(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event, config=CallbackConfig(timeout=Duration.from_seconds(3)))
    context.wait(Duration.from_seconds(6))
    return callback.result()


@requirement("4-12")
@durable_execution
def callback_then_wait(event: Any, context: DurableContext) -> Any:
    result = context.create_callback(name=event).result()
    context.wait(Duration.from_seconds(2))
    return result


@requirement("4-13")
@durable_execution
def callback_failure_caught_then_wait(event: Any, context: DurableContext) -> Any:
    try:
        message = context.create_callback(name=event).result()
    except CallbackError as exc:
        message = f"callback failed: {exc.message}"
    context.wait(Duration.from_seconds(2))
    return message


@requirement("4-14")
@durable_execution
def callback_timeout_caught_then_wait(event: Any, context: DurableContext) -> Any:
    try:
        message = context.create_callback(name=event, config=CallbackConfig(timeout=Duration.from_seconds(3))).result()
    except CallbackTimeoutError as exc:
        message = f"callback timed out: {exc.error_type}"
    context.wait(Duration.from_seconds(2))
    return message


@dataclass(frozen=True)
class Received:
    id: str
    message: str
    timestamp: dt.datetime


class ReceivedSerDes(SerDes[Received]):
    """Parses the raw JSON text into a :class:`Received` with a real datetime."""

    def serialize(self, value: Received, serdes_context: SerDesContext) -> str:
        return json.dumps({"id": value.id, "message": value.message,
                           "timestamp": value.timestamp.isoformat().replace("+00:00", "Z")})

    def deserialize(self, data: str, serdes_context: SerDesContext) -> Received:
        raw = json.loads(data)
        stamp = dt.datetime.fromisoformat(raw["timestamp"].replace("Z", "+00:00"))
        return Received(raw["id"], raw["message"], stamp)


@requirement("4-15")
@durable_execution
def callback_typed_serdes(event: Any, context: DurableContext) -> Any:
    received: Received = context.create_callback(name=event, config=CallbackConfig(serdes=ReceivedSerDes())).result()
    return {"received": {"id": received.id, "message": received.message,
                         "timestamp": int(received.timestamp.timestamp())}}


class IntSerDes(SerDes[int]):
    def serialize(self, value: int, serdes_context: SerDesContext) -> str:
        return str(value)

    def deserialize(self, data: str, serdes_context: SerDesContext) -> int:
        return int(data)


@requirement("4-16")
@durable_execution
def callback_number_serdes(event: Any, context: DurableContext) -> Any:
    count: int = context.create_callback(name=event, config=CallbackConfig(serdes=IntSerDes())).result()
    return {"count": count, "doubled": count * 2}


@requirement("4-17")
@durable_execution
def callbacks_sequential(event: Any, context: DurableContext) -> Any:
    a = context.create_callback(name=event[0]).result()
    b = context.create_callback(name=event[1]).result()
    return [a, b]


@requirement("4-18")
@durable_execution
def callbacks_a_b_wait_a_b(event: Any, context: DurableContext) -> Any:
    callback_a = context.create_callback(name=event[0])
    callback_b = context.create_callback(name=event[1])
    a = callback_a.result()
    b = callback_b.result()
    return [a, b]


@requirement("4-19")
@durable_execution
def callbacks_a_b_wait_b_a(event: Any, context: DurableContext) -> Any:
    callback_a = context.create_callback(name=event[0])
    callback_b = context.create_callback(name=event[1])
    b = callback_b.result()
    a = callback_a.result()
    return [a, b]
