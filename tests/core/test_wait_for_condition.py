"""wait_for_condition's operation name: the ``name`` given, else none (as AWS records it)."""

from __future__ import annotations

from typing import Any

import pytest
from durably import (
    DurableContext,
    Duration,
    JitterStrategy,
    WaitForConditionCheckContext,
    WaitForConditionConfig,
    WaitStrategyConfig,
    create_wait_strategy,
    durable_execution,
)

from .conftest import MakeRunner


def count_up(state: int, _check: WaitForConditionCheckContext) -> int:
    return state + 1


@pytest.mark.parametrize("name", [None, "poll-status"])
def test_the_operation_is_named_by_name_only_never_after_the_check(make_runner: MakeRunner,
                                                                   name: str | None) -> None:
    """Three polls (two suspensions, so two replays) of a named ``def`` check."""
    @durable_execution
    def handler(_event: Any, ctx: DurableContext) -> int:
        strategy = create_wait_strategy(WaitStrategyConfig(
            should_continue_polling=lambda s: s < 3, initial_delay=Duration.from_seconds(1), backoff_rate=1.0,
            jitter_strategy=JitterStrategy.NONE))
        return ctx.wait_for_condition(count_up, WaitForConditionConfig(strategy, initial_state=0), name=name)

    result = make_runner(handler).run(None)
    assert result.value == 3
    (op,) = [op for op in result.operations if op.SubType == "WaitForCondition"]
    assert op.Name == name and op.StepDetails is not None and op.StepDetails.Attempt == 3
    assert {event.get("Name") for event in result.events() if event["EventType"].startswith("Step")} == {name}
