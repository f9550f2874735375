"""Suite 5 (invoke): handlers and their invoke targets, written from the requirements' prose."""

from __future__ import annotations

import json
from typing import Any

from durably import (
    DurableContext,
    Duration,
    InvokeConfig,
    InvokeError,
    SerDes,
    SerDesContext,
    durable_execution,
)

from .registry import requirement

ECHO = "conformance-echo"
ECHO_2 = "conformance-echo-2"
FAIL = "conformance-fail"
SUMMARISE = "conformance-summarise"


@durable_execution
def echo(event: Any, context: DurableContext) -> Any:
    """A durable target that returns whatever it receives."""
    return event


def echo_plain(payload: Any) -> Any:
    """A plain (non-durable) target that returns whatever it receives."""
    return payload


def fail_plain(payload: Any) -> Any:
    """A plain target that always throws."""
    raise RuntimeError("the invoked function failed")


def summarise_plain(payload: Any) -> Any:
    """A plain target that processes a large payload and returns a small summary."""
    return {"received_bytes": len(payload["data"]), "id": payload["id"]}


ECHO_TARGET = {ECHO: echo}
FAIL_TARGET = {FAIL: fail_plain}


@requirement("5-1", targets=ECHO_TARGET)
@durable_execution
def invoke_basic(event: Any, context: DurableContext) -> Any:
    return context.invoke(ECHO, event)


@requirement("5-2", targets=ECHO_TARGET)
@durable_execution
def invoke_with_name(event: Any, context: DurableContext) -> Any:
    return context.invoke(ECHO, event["payload"], name=event["name"])


@requirement("5-3", targets=ECHO_TARGET)
@durable_execution
def invoke_complex(event: Any, context: DurableContext) -> Any:
    return context.invoke(ECHO, event)


@requirement("5-4", targets=ECHO_TARGET)
@durable_execution
def invoke_null(event: Any, context: DurableContext) -> Any:
    return context.invoke(ECHO, None)


@requirement("5-5", targets=FAIL_TARGET)
@durable_execution
def invoke_target_fails(event: Any, context: DurableContext) -> Any:
    return context.invoke(FAIL, None)


@requirement("5-6", targets=FAIL_TARGET)
@durable_execution
def invoke_target_fails_caught(event: Any, context: DurableContext) -> Any:
    try:
        return context.invoke(FAIL, None)
    except InvokeError:
        return "fallback"


LARGE_PAYLOAD_BYTES = 200 * 1000


@requirement("5-7", targets={SUMMARISE: summarise_plain})
@durable_execution
def invoke_large_payload(event: Any, context: DurableContext) -> Any:
    return context.invoke(SUMMARISE, {"id": "large", "data": "x" * LARGE_PAYLOAD_BYTES})


@requirement("5-8", targets=ECHO_TARGET)
@durable_execution
def invoke_with_tenant(event: Any, context: DurableContext) -> Any:
    return context.invoke(ECHO, event["payload"], config=InvokeConfig(tenant_id=event["tenantId"]))


@requirement("5-9", targets=ECHO_TARGET)
@durable_execution
def invoke_then_wait(event: Any, context: DurableContext) -> Any:
    result = context.invoke(ECHO, "cached")
    context.wait(Duration.from_seconds(1))
    return result


@requirement("5-10", targets=FAIL_TARGET)
@durable_execution
def invoke_failure_then_wait(event: Any, context: DurableContext) -> Any:
    try:
        outcome = context.invoke(FAIL, None)
    except InvokeError as exc:
        outcome = f"caught: {exc.message}"
    context.wait(Duration.from_seconds(1))
    return outcome


@requirement("5-11", targets=ECHO_TARGET)
@durable_execution
def step_then_invoke(event: Any, context: DurableContext) -> Any:
    value = context.step(lambda _: "from-step", name="produce")
    return context.invoke(ECHO, value)


@requirement("5-12", targets=ECHO_TARGET)
@durable_execution
def invoke_then_step(event: Any, context: DurableContext) -> Any:
    result = context.invoke(ECHO, "from-invoke")
    return context.step(lambda _: f"processed {result}", name="process")


@requirement("5-13", targets=ECHO_TARGET)
@durable_execution
def invoke_in_child(event: Any, context: DurableContext) -> Any:
    return context.run_in_child_context(lambda child: child.invoke(ECHO, "inside-child"), name="invoker")


@requirement("5-14", targets={ECHO: echo, ECHO_2: echo_plain})
@durable_execution
def invokes_sequential(event: Any, context: DurableContext) -> Any:
    first = context.invoke(ECHO, "first")
    second = context.invoke(ECHO_2, "second")
    return [first, second]


class UppercasePayloadSerDes(SerDes[Any]):
    """Sends every string value uppercased, as JSON."""

    def serialize(self, value: Any, serdes_context: SerDesContext) -> str:
        if isinstance(value, dict):
            value = {k: v.upper() if isinstance(v, str) else v for k, v in value.items()}
        elif isinstance(value, str):
            value = value.upper()
        return json.dumps(value)

    def deserialize(self, data: str, serdes_context: SerDesContext) -> Any:
        return json.loads(data)


@requirement("5-15", targets=ECHO_TARGET)
@durable_execution
def invoke_payload_serdes(event: Any, context: DurableContext) -> Any:
    return context.invoke(ECHO, event, config=InvokeConfig(serdes_payload=UppercasePayloadSerDes()))


class UppercaseResultSerDes(SerDes[str]):
    """Returns the raw result text uppercased, without parsing it."""

    def serialize(self, value: str, serdes_context: SerDesContext) -> str:
        return value

    def deserialize(self, data: str, serdes_context: SerDesContext) -> str:
        return data.upper()


@requirement("5-16", targets=ECHO_TARGET)
@durable_execution
def invoke_result_serdes(event: Any, context: DurableContext) -> Any:
    return context.invoke(ECHO, event, config=InvokeConfig(serdes_result=UppercaseResultSerDes()))
