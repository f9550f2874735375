"""Suite 7 (wait_for_callback): handlers written from the requirements' prose."""

from __future__ import annotations

from typing import Any

from durably import (
    CallbackError,
    CallbackTimeoutError,
    DurableContext,
    Duration,
    JitterStrategy,
    JsonSerDes,
    RetryStrategyConfig,
    WaitForCallbackConfig,
    WaitForCallbackContext,
    create_retry_strategy,
    durable_execution,
)

from .registry import requirement


def register_callback(callback_id: str, wait_context: WaitForCallbackContext) -> None:
    """A submitter that hands the id over (to nobody) and does nothing durable."""
    wait_context.logger.info(f"callback {callback_id} submitted")


@requirement("7-1")
@durable_execution
def wait_for_callback_basic(event: Any, context: DurableContext) -> Any:
    return context.wait_for_callback(register_callback, name=event)


@requirement("7-2")
@durable_execution
def wait_for_callback_static_name(event: Any, context: DurableContext) -> Any:
    return context.wait_for_callback(register_callback, name="approval")


@requirement("7-3")
@durable_execution
def wait_for_callback_anonymous(event: Any, context: DurableContext) -> Any:
    return context.wait_for_callback(lambda callback_id, wait_context: None)


@requirement("7-4")
@durable_execution
def wait_for_callback_failure(event: Any, context: DurableContext) -> Any:
    return context.wait_for_callback(register_callback, name=event)


@requirement("7-5")
@durable_execution
def wait_for_callback_timeout(event: Any, context: DurableContext) -> Any:
    return context.wait_for_callback(register_callback, name=event,
                                     config=WaitForCallbackConfig(timeout=Duration.from_seconds(3)))


@requirement("7-6")
@durable_execution
def wait_for_callback_failure_caught(event: Any, context: DurableContext) -> Any:
    try:
        return context.wait_for_callback(register_callback, name=event)
    except CallbackError:
        return "recovered"


@requirement("7-7")
@durable_execution
def wait_for_callback_submitter_exhausted(event: Any, context: DurableContext) -> Any:
    def failing_submitter(callback_id: str, wait_context: WaitForCallbackContext) -> None:
        raise RuntimeError("the submitter cannot reach the approver")
    retry = create_retry_strategy(RetryStrategyConfig(max_attempts=2, initial_delay=Duration.from_seconds(1),
                                                      jitter_strategy=JitterStrategy.NONE))
    return context.wait_for_callback(failing_submitter, name=event, config=WaitForCallbackConfig(retry_strategy=retry))


@requirement("7-8")
@durable_execution
def wait_for_callback_in_child(event: Any, context: DurableContext) -> Any:
    return context.run_in_child_context(lambda child: child.wait_for_callback(register_callback, name=event),
                                        name="wrapper")


@requirement("7-9")
@durable_execution
def wait_for_callback_twice(event: Any, context: DurableContext) -> Any:
    context.wait_for_callback(register_callback, name="first")
    return context.wait_for_callback(register_callback, name="second")


@requirement("7-10")
@durable_execution
def wait_for_callback_after_wait_and_step(event: Any, context: DurableContext) -> Any:
    context.wait(Duration.from_seconds(1))
    context.step(lambda _: {"fixed": "data"}, name="fixed-data")
    return context.wait_for_callback(register_callback, name=event)


@requirement("7-11")
@durable_execution
def wait_for_callback_json(event: Any, context: DurableContext) -> Any:
    result = context.wait_for_callback(register_callback, name=event, config=WaitForCallbackConfig(serdes=JsonSerDes()))
    return result["status"]


@requirement("7-12")
@durable_execution
def wait_for_callback_heartbeat_timeout(event: Any, context: DurableContext) -> Any:
    return context.wait_for_callback(register_callback, name=event,
                                     config=WaitForCallbackConfig(heartbeat_timeout=Duration.from_seconds(5)))


@requirement("7-13")
@durable_execution
def wait_for_callback_heartbeat(event: Any, context: DurableContext) -> Any:
    return context.wait_for_callback(register_callback, name=event,
                                     config=WaitForCallbackConfig(heartbeat_timeout=Duration.from_seconds(10)))


@requirement("7-14")
@durable_execution
def wait_for_callback_timeout_caught(event: Any, context: DurableContext) -> Any:
    try:
        return context.wait_for_callback(register_callback, name=event,
                                         config=WaitForCallbackConfig(timeout=Duration.from_seconds(3)))
    except CallbackTimeoutError:
        return "timed-out-handled"


@requirement("7-15")
@durable_execution
def wait_for_callback_empty(event: Any, context: DurableContext) -> Any:
    return context.wait_for_callback(register_callback, name=event)
