"""UpdatedOperationIds: an invocation is told what the engine finished while the execution was
suspended, and after an invocation that was lost (a crash, an invocation error) the next one is told
again, with what ended during the lost one, so a tracing plugin can still report it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from durably.core import DurableContext, durable_execution
from durably.core.engine.clock import SkippingClock
from durably.core.engine.engine import Engine
from durably.core.engine.service import Claim
from durably.core.model import ErrorObject, InvocationOutput, InvocationStatus, OperationUpdate, WaitOptions


@durable_execution
def idle(event: Any, ctx: DurableContext) -> Any:
    return None


def pending() -> InvocationOutput:
    return InvocationOutput(Status=InvocationStatus.PENDING)


def after_a_wait(engine: Engine, clock: SkippingClock) -> tuple[str, Claim]:
    """An execution whose first invocation started a 5 s wait, claimed again once the wait ended:
    the claim is told the wait was updated."""
    arn = engine.start_execution(idle, {})
    claim = engine.service.claim(arn=arn)
    assert claim is not None and claim.updated_ids == []
    engine.service.checkpoint(arn, claim.token, [OperationUpdate(
        Id="w", Type="WAIT", Action="START", WaitOptions=WaitOptions(WaitSeconds=5))])
    assert engine.service.complete_invocation(claim, pending())
    clock.advance_to(clock.now_ms() + 6000)
    engine.service.fire_due_timers()
    again = engine.service.claim(arn=arn)
    assert again is not None and again.updated_ids == ["w"]
    return arn, again


def test_updated_ids_reach_the_next_invocation_once(tmp_path: Path) -> None:
    clock = SkippingClock()
    with Engine(tmp_path / "e.db", clock=clock) as engine:
        arn, second = after_a_wait(engine, clock)
        assert engine.service.complete_invocation(second, pending())
        row = engine.store.read(lambda tx: tx.execution(arn))
        assert row is not None and row.updated_ids == []  # delivered to an invocation that ended cleanly: gone


def test_after_a_lost_invocation_the_next_one_is_told_again(tmp_path: Path) -> None:
    clock = SkippingClock()
    with Engine(tmp_path / "e.db", clock=clock) as engine:
        arn, lost = after_a_wait(engine, clock)
        engine.service.checkpoint(arn, lost.token, [
            OperationUpdate(Id="s", Type="STEP", Action="START"),
            OperationUpdate(Id="s", Type="STEP", Action="SUCCEED", Payload="1"),
            OperationUpdate(Id="t", Type="STEP", Action="START")])
        crash = ErrorObject(ErrorType="Runtime.ExitError", ErrorMessage="the worker died")
        assert engine.service.complete_invocation(lost, None, crash, retry_delay_ms=0)
        again = engine.service.claim(arn=arn)
        assert again is not None and again.updated_ids == ["w", "s"]  # t never ended
