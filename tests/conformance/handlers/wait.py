"""Suite 2 (wait): handlers written from the requirements' prose."""

from __future__ import annotations

from typing import Any

from durably import DurableContext, Duration, durable_execution

from .registry import requirement


@requirement("2-1")
@durable_execution
def wait_basic(event: Any, context: DurableContext) -> Any:
    context.wait(Duration.from_seconds(2))
    return "done"


@requirement("2-2")
@durable_execution
def wait_with_name(event: Any, context: DurableContext) -> Any:
    context.wait(Duration.from_seconds(2), name="custom_wait_name")
    return "done"


@requirement("2-3")
@durable_execution
def sequential_waits(event: Any, context: DurableContext) -> Any:
    context.wait(Duration.from_seconds(2), name="wait-1")
    context.wait(Duration.from_seconds(2), name="wait-2")
    return {"completedWaits": 2}


@requirement("2-4")
@durable_execution
def wait_in_minutes(event: Any, context: DurableContext) -> Any:
    context.wait(Duration.from_minutes(1))
    return "done"


@requirement("2-5")
@durable_execution
def wait_one_hour(event: Any, context: DurableContext) -> Any:
    context.wait(Duration.from_hours(1))
    return "done"
