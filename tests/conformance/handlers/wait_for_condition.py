"""Suite 6 (wait_for_condition): handlers written from the requirements' prose."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from durably import (
    DurableContext,
    Duration,
    JitterStrategy,
    SerDes,
    SerDesContext,
    WaitForConditionCheckContext,
    WaitForConditionConfig,
    WaitForConditionError,
    WaitStrategyConfig,
    create_wait_strategy,
    durable_execution,
)

from .registry import requirement


def fixed_delay(should_continue: Callable[[Any], bool], seconds: int = 1,
                max_attempts: int = 60) -> Any:
    """A wait strategy polling every ``seconds`` (no backoff, no jitter) while ``should_continue``."""
    return create_wait_strategy(WaitStrategyConfig(
        should_continue_polling=should_continue, max_attempts=max_attempts,
        initial_delay=Duration.from_seconds(seconds), backoff_rate=1.0, jitter_strategy=JitterStrategy.NONE))


def increment(state: int, check_context: WaitForConditionCheckContext) -> int:
    return state + 1


def count_up(context: DurableContext, start: int, threshold: int, name: str | None = None) -> Any:
    config = WaitForConditionConfig(wait_strategy=fixed_delay(lambda s: s < threshold), initial_state=start)
    return context.wait_for_condition(increment, config, name=name)


@requirement("6-1")
@durable_execution
def wait_for_condition_basic(event: Any, context: DurableContext) -> Any:
    return count_up(context, 0, event)


@requirement("6-2")
@durable_execution
def wait_for_condition_immediate(event: Any, context: DurableContext) -> Any:
    config = WaitForConditionConfig(wait_strategy=fixed_delay(lambda s: s < 5), initial_state=5)
    return context.wait_for_condition(lambda state, check_context: state, config)


@requirement("6-3")
@durable_execution
def wait_for_condition_named(event: Any, context: DurableContext) -> Any:
    return count_up(context, 0, event, name="poll-status")


@requirement("6-4")
@durable_execution
def wait_for_condition_initial_state(event: Any, context: DurableContext) -> Any:
    return count_up(context, 5, event)


@requirement("6-5")
@durable_execution
def wait_for_condition_fixed_delay(event: Any, context: DurableContext) -> Any:
    config = WaitForConditionConfig(wait_strategy=fixed_delay(lambda s: s < event, seconds=2), initial_state=0)
    return context.wait_for_condition(increment, config)


@requirement("6-6")
@durable_execution
def wait_for_condition_exhausted(event: Any, context: DurableContext) -> Any:
    config = WaitForConditionConfig(wait_strategy=fixed_delay(lambda s: True, max_attempts=3), initial_state=event)
    return context.wait_for_condition(increment, config)


def failing_check(state: Any, check_context: WaitForConditionCheckContext) -> Any:
    raise RuntimeError("the status service is down")


@requirement("6-7")
@durable_execution
def wait_for_condition_check_raises(event: Any, context: DurableContext) -> Any:
    config = WaitForConditionConfig(wait_strategy=fixed_delay(lambda s: True), initial_state=0)
    return context.wait_for_condition(failing_check, config)


@requirement("6-8")
@durable_execution
def wait_for_condition_check_raises_caught(event: Any, context: DurableContext) -> Any:
    config = WaitForConditionConfig(wait_strategy=fixed_delay(lambda s: True), initial_state=0)
    try:
        return context.wait_for_condition(failing_check, config)
    except WaitForConditionError:
        return "recovered"


@requirement("6-9")
@durable_execution
def wait_for_condition_object_state(event: Any, context: DurableContext) -> Any:
    def check(state: dict[str, Any], check_context: WaitForConditionCheckContext) -> dict[str, Any]:
        attempts = state["attempts"] + 1
        return {"status": "DONE" if attempts >= 2 else "PENDING", "attempts": attempts}
    config = WaitForConditionConfig(wait_strategy=fixed_delay(lambda s: s["status"] == "PENDING"),
                                    initial_state={"status": "PENDING", "attempts": 0})
    return context.wait_for_condition(check, config)


@requirement("6-10")
@durable_execution
def wait_for_condition_null_state(event: Any, context: DurableContext) -> Any:
    config: WaitForConditionConfig[Any] = WaitForConditionConfig(
        wait_strategy=fixed_delay(lambda s: s is not None), initial_state=None)
    return context.wait_for_condition(lambda state, check_context: None, config)


class PrefixedSerDes(SerDes[str]):
    """Encodes the string state as ``enc:<state>`` and decodes it back."""

    PREFIX = "enc:"

    def serialize(self, value: str, serdes_context: SerDesContext) -> str:
        return self.PREFIX + value

    def deserialize(self, data: str, serdes_context: SerDesContext) -> str:
        if not data.startswith(self.PREFIX):
            raise ValueError(f"not an encoded state: {data!r}")
        return data[len(self.PREFIX):]


@requirement("6-11")
@durable_execution
def wait_for_condition_custom_serdes(event: Any, context: DurableContext) -> Any:
    config = WaitForConditionConfig(wait_strategy=fixed_delay(lambda s: len(s) < 2), initial_state="",
                                    serdes=PrefixedSerDes())
    return context.wait_for_condition(lambda state, check_context: state + "x", config)


@requirement("6-12")
@durable_execution
def wait_for_condition_then_step(event: Any, context: DurableContext) -> Any:
    value = count_up(context, 0, event)
    return context.step(lambda _: value * 10, name="multiply")


@requirement("6-13")
@durable_execution
def wait_for_condition_twice(event: Any, context: DurableContext) -> Any:
    first = count_up(context, 0, 2)
    return count_up(context, first, 4)
