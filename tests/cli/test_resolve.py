"""An execution named by its ARN, its name or the start of its id."""

from __future__ import annotations

from typing import Any

import pytest
from durably import DurableContext, durable_execution
from durably.cli.resolve import execution_arn, quoted
from durably.core.engine.engine import Engine
from durably.core.engine.errors import InvalidParameterValueException, ResourceNotFoundException


@durable_execution
def noop(event: Any, ctx: DurableContext) -> Any:
    return None


@durable_execution
def other(event: Any, ctx: DurableContext) -> Any:
    return None


def test_an_arn_a_name_or_an_id_prefix_finds_the_execution(engine: Engine) -> None:
    arn = engine.start_execution(noop, {}, name="order-7")
    service = engine.service
    assert execution_arn(service, arn) == arn
    assert execution_arn(service, "order-7") == arn
    assert execution_arn(service, arn.rsplit("/", 1)[-1][:8]) == arn


def test_what_matches_nothing_or_several_says_so(engine: Engine) -> None:
    first = engine.start_execution(noop, {}, name="same")
    engine.start_execution(other, {}, name="same")
    with pytest.raises(InvalidParameterValueException, match="matches 2 executions") as several:
        execution_arn(engine.service, "same")
    assert quoted(first) in str(several.value)
    with pytest.raises(ResourceNotFoundException, match="at least 6 characters"):
        execution_arn(engine.service, first.rsplit("/", 1)[-1][:3])
    with pytest.raises(ResourceNotFoundException, match="no execution is named 'nope'"):
        execution_arn(engine.service, "nope")


def test_an_arn_that_lost_its_latest_to_the_shell_is_explained(engine: Engine) -> None:
    arn = engine.start_execution(noop, {}, name="x")
    with pytest.raises(ResourceNotFoundException, match="single quotes"):
        execution_arn(engine.service, arn.replace("$LATEST", ""))


def test_quoted_survives_the_shell() -> None:
    assert quoted("arn:a:$LATEST/it's") == "'arn:a:$LATEST/it'\\''s'"
