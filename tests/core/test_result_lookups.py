"""Looking operations up by name in a test result: one, all, or one inside a parent."""

from __future__ import annotations

from typing import Any

import pytest
from durably import DurableContext, durable_execution

from .conftest import MakeRunner


@durable_execution
def twice(event: Any, ctx: DurableContext) -> Any:
    ctx.step(lambda _: 1, name="charge")
    ctx.run_in_child_context(lambda child: child.step(lambda _: 2, name="charge"), name="retry block")
    return None


def test_an_ambiguous_name_is_an_error_not_the_first_match(make_runner: MakeRunner) -> None:
    result = make_runner(twice).run(None)
    with pytest.raises(KeyError, match=r"2 steps named 'charge' \(ids .*get_operations"):
        result.get_step("charge")
    assert [op.StepDetails.Result for op in result.get_operations("charge") if op.StepDetails] == ["1", "2"]
    inner = result.get_step("charge", parent="retry block")
    assert inner.StepDetails is not None and inner.StepDetails.Result == "2"
    assert result.get_operations("charge", type="WAIT") == []
    with pytest.raises(KeyError, match="no step named 'nope'"):
        result.get_step("nope")
