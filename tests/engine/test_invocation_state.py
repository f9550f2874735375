"""The service's reads for diagnosis: how an execution stands with the workers, its open callbacks."""

from __future__ import annotations

from typing import Any

import pytest
from durably.core import DurableContext, ErrorObject, ResourceNotFoundException, durable_execution
from durably.core.engine.engine import Engine
from durably.core.engine.functions import FunctionSpec


@durable_execution
def gate(event: Any, ctx: DurableContext) -> Any:
    return ctx.create_callback(name="gate").result()


def test_invocation_state_through_claim_and_failed_invocation(engine: Engine) -> None:
    service = engine.service
    arn, _ = service.start_execution(FunctionSpec("far", True, "far_away:handler"), "{}")
    assert service.invocation_state(arn) == {"HandlerReference": "far_away:handler", "Ready": True,
                                             "FailedInvocations": 0, "Invocation": None,
                                             "NextInvocationTimestamp": None}
    claim = service.claim(lease_ms=30_000, arn=arn)
    assert claim is not None
    leased = service.invocation_state(arn)
    assert leased["Ready"] is False and leased["Invocation"] == {
        "Worker": service.owner, "StartTimestamp": claim.started, "LeaseExpiry": claim.started + 30_000}
    assert service.complete_invocation(claim, None, ErrorObject(ErrorType="Crash"), retry_delay_ms=2_000)
    failed = service.invocation_state(arn)
    assert failed["FailedInvocations"] == 1 and failed["Invocation"] is None
    assert failed["NextInvocationTimestamp"] is not None and failed["NextInvocationTimestamp"] >= claim.started + 2_000


def test_invocation_state_of_an_unknown_execution(engine: Engine) -> None:
    with pytest.raises(ResourceNotFoundException):
        engine.service.invocation_state("arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST/"
                                        "durable-execution/n/0123")


def test_open_callbacks_of_one_execution(engine: Engine) -> None:
    arns = [engine.start_execution(gate, None) for _ in range(2)]
    for arn in arns:
        assert engine.run_until_suspended(arn)["Status"] == "RUNNING"
    assert {cb.arn for cb in engine.service.open_callbacks()} == set(arns)
    for arn in arns:
        assert [cb.arn for cb in engine.service.open_callbacks(arn=arn)] == [arn]
