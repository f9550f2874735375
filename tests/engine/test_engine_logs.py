"""The engine says what it does at INFO: invocations started and ended, step retries, takeovers."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from durably.core import DurableContext, Duration, RetryDecision, StepConfig, StepContext, durable_execution
from durably.core.engine.engine import Engine


@durable_execution
def flaky(event: Any, ctx: DurableContext) -> Any:
    def charge(step: StepContext) -> str:
        if step.attempt == 1:
            raise KeyError("card")
        return "charged"

    def twice(error: BaseException, attempt: int) -> RetryDecision:
        return RetryDecision.retry(Duration(3)) if attempt < 2 else RetryDecision.no_retry()

    return ctx.step(charge, name="charge", config=StepConfig(retry_strategy=twice))


def test_invocations_and_retries_are_logged_at_info(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="durably.engine"):
        arn = engine.start_execution(flaky, None)
        assert engine.run_until_complete(arn, skip_time=True)["Status"] == "SUCCEEDED"
    lines = [r.getMessage() for r in caplog.records if r.name == "durably.engine"]
    assert all(getattr(r, "executionArn", None) == arn for r in caplog.records if r.name == "durably.engine")
    assert lines[0] == f"invoking {arn}"
    assert lines[1] == f"step 'charge' of {arn} failed attempt 1 (KeyError: 'card'); retrying in 3 s"
    assert lines[2].startswith(f"invocation of {arn} ended PENDING in ")
    assert lines[3] == f"invoking {arn}"
    assert lines[4].startswith(f"invocation of {arn} ended SUCCEEDED in ") and lines[4].endswith(" ms")
    assert len(lines) == 5
