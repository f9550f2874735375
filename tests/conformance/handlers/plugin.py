"""Suite 10 (instrumentation plugins): handlers and plugins written from the requirements' prose.

Every plugin prints one JSON object per hook to plain stdout, stamped with the
``durableExecutionArn`` it received in its invocation-start hook.
"""

from __future__ import annotations

import json
from typing import Any

from durably import (
    DurableContext,
    DurableInstrumentationPlugin,
    Duration,
    InvocationEndInfo,
    InvocationStartInfo,
    JitterStrategy,
    OperationEndInfo,
    OperationStartInfo,
    RetryStrategyConfig,
    StepConfig,
    StepContext,
    UserFunctionEndInfo,
    UserFunctionStartInfo,
    create_retry_strategy,
    durable_execution,
    durable_step,
)
from durably import RetryPresets as Presets

from .registry import requirement


def _token(value: Any) -> str:
    return str(getattr(value, "value", value))


class ConformancePlugin(DurableInstrumentationPlugin):
    """Logs the hooks it is asked to (invocation, operation and attempt hooks; step operations only)."""

    def __init__(self, label: str, hooks: frozenset[str], faulty: bool = False) -> None:
        self.label = label
        self.hooks = hooks
        self.faulty = faulty
        self.arn: str | None = None

    def _log(self, hook: str, **fields: Any) -> None:
        """Print the hook's record (a faulty plugin prints only its name and hook, then raises)."""
        if hook in self.hooks:
            record = {"plugin": self.label, "hook": hook, **({} if self.faulty else fields)}
            print(json.dumps({**record, "durableExecutionArn": self.arn}), flush=True)
        if self.faulty:
            raise RuntimeError(f"{self.label} {hook} hook fails on purpose")

    def on_invocation_start(self, info: InvocationStartInfo) -> None:
        self.arn = info.execution_arn
        self._log("invocation-start", first=info.is_first_invocation)

    def on_invocation_end(self, info: InvocationEndInfo) -> None:
        self._log("invocation-end", status=_token(info.status))

    def on_operation_start(self, info: OperationStartInfo) -> None:
        if _token(info.operation_type) == "STEP":
            self._log("operation-start", op=info.operation_id)

    def on_operation_end(self, info: OperationEndInfo) -> None:
        if _token(info.operation_type) == "STEP":
            self._log("operation-end", op=info.operation_id, status=_token(info.status))

    def on_user_function_start(self, info: UserFunctionStartInfo) -> None:
        if _token(info.operation_type) == "STEP":
            self._log("attempt-start", n=info.attempt, op=info.operation_id)

    def on_user_function_end(self, info: UserFunctionEndInfo) -> None:
        if _token(info.operation_type) == "STEP":
            self._log("attempt-end", n=info.attempt, outcome=_token(info.outcome), op=info.operation_id)


class PluginFactory:
    """The SDK's plugin factory shape: ``create_plugin(info)`` once per invocation."""

    def __init__(self, label: str, *hooks: str, faulty: bool = False) -> None:
        self.label = label
        self.hooks = frozenset(hooks)
        self.faulty = faulty

    def create_plugin(self, info: InvocationStartInfo) -> DurableInstrumentationPlugin:
        return ConformancePlugin(self.label, self.hooks, self.faulty)


INVOCATION_HOOKS = ("invocation-start", "invocation-end")
ALL_HOOKS = ("invocation-start", "invocation-end", "operation-start", "operation-end", "attempt-start",
             "attempt-end")


@durable_step
def greet(step_context: StepContext, name: str) -> str:
    step_context.logger.info(f"Greeting step running for: {name}")
    return f"Hello, {name}!"


@requirement("10-1")
@durable_execution(plugins=[PluginFactory("CONFPLUGIN", *INVOCATION_HOOKS)])
def plugin_invocation_hooks(event: Any, context: DurableContext) -> Any:
    return context.step(greet(event))


@requirement("10-2")
@durable_execution(plugins=[PluginFactory("CONFPLUGIN", "operation-start", "operation-end")])
def plugin_operation_hooks(event: Any, context: DurableContext) -> Any:
    return context.step(greet(event))


@requirement("10-3")
@durable_execution(plugins=[PluginFactory("CONFPLUGIN", "attempt-start", "attempt-end")])
def plugin_attempt_hooks(event: Any, context: DurableContext) -> Any:
    def unreliable_func(step_context: StepContext) -> str:
        if step_context.attempt == 1:
            raise RuntimeError("first attempt fails")
        return "Operation succeeded"
    retry = create_retry_strategy(RetryStrategyConfig(max_attempts=3, initial_delay=Duration.from_seconds(1),
                                                      jitter_strategy=JitterStrategy.NONE))
    return context.step(unreliable_func, config=StepConfig(retry_strategy=retry))


@requirement("10-4")
@durable_execution(plugins=[PluginFactory("CONFPLUGIN-FAULTY", *ALL_HOOKS, faulty=True)])
def plugin_faulty(event: Any, context: DurableContext) -> Any:
    return context.step(greet(event))


@requirement("10-5")
@durable_execution(plugins=[PluginFactory("CONFPLUGIN-A", *INVOCATION_HOOKS),
                            PluginFactory("CONFPLUGIN-B", *INVOCATION_HOOKS)])
def plugin_two_plugins(event: Any, context: DurableContext) -> Any:
    return context.step(greet(event))


@requirement("10-6")
@durable_execution(plugins=[PluginFactory("CONFPLUGIN", *INVOCATION_HOOKS)])
def plugin_first_invocation(event: Any, context: DurableContext) -> Any:
    context.wait(Duration.from_seconds(2))
    return "waited"


@requirement("10-7")
@durable_execution(plugins=[PluginFactory("CONFPLUGIN", *INVOCATION_HOOKS)])
def plugin_failed_execution(event: Any, context: DurableContext) -> Any:
    def failing_func(_: StepContext) -> str:
        raise RuntimeError("this step always fails")
    return context.step(failing_func, config=StepConfig(retry_strategy=Presets.none()))
