"""Sagas in ``async def`` handlers: the same behaviour with ``async with`` and ``await``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from durably import AsyncDurableContext, Duration, RetryDecision, StepConfig, StepContext, durable_execution
from durably.sagas import SagaConfig, SagaStep, Undo, saga
from durably.testing import DurableTestRunner

NO_RETRY = StepConfig(retry_strategy=lambda error, attempt: RetryDecision.no_retry())
QUICK = SagaConfig(compensation_retry=lambda error, attempt: (
    RetryDecision.retry(Duration(1)) if attempt < 2 else RetryDecision.no_retry()))


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[DurableTestRunner]:
    made = DurableTestRunner(db=tmp_path / "async-saga.db")
    yield made
    made.close()


def test_an_async_saga_rolls_back_in_reverse_across_invocations(runner: DurableTestRunner) -> None:
    runs: list[str] = []

    async def book(step: StepContext, what: str) -> str:
        runs.append(f"book {what}")
        return what

    async def cancel(step: StepContext, undo: Undo) -> None:
        runs.append(f"cancel {undo.result}")
        if undo.result == "car" and step.attempt == 1:
            raise ConnectionError("rental API down")  # retried after a suspension: a new invocation

    def fail(step: StepContext) -> None:
        runs.append("pay")
        raise ValueError("card declined")

    @durable_execution
    async def trip(event: Any, ctx: AsyncDurableContext) -> Any:
        async with saga(ctx, "trip", input=event, config=QUICK) as s:
            await s.step(book, "car", compensate=cancel, name="car")
            await ctx.wait(Duration(3), name="think")  # a suspension in the middle of the saga
            await s.parallel(SagaStep(book, ("flight",), compensate=cancel, name="flight"),
                             SagaStep(book, ("hotel",), compensate=cancel, name="hotel"), name="bookings")
            async with s.saga("extras") as extras:
                await extras.step(book, "tour", compensate=cancel, name="tour")
            await s.step(fail, name="pay", config=NO_RETRY)
        return "unreachable"

    runner.handler = trip
    result = runner.run({"who": "ada"})
    assert result.status == "FAILED"
    assert result.error is not None and result.error.ErrorType == "durably.sagas.SagaRolledBack"
    data = json.loads(result.error.ErrorData or "{}")
    assert data["error"]["ErrorMessage"] == "card declined"
    order = [c["step"] for c in data["compensated"]]
    assert order[0] == "tour" and sorted(order[1:3]) == ["flight", "hotel"] and order[3] == "car"
    assert data["compensated"][3]["attempts"] == 2
    assert runs.count("book car") == 1 and runs.count("pay") == 1  # replays ran no forward body again
    assert runs.count("cancel car") == 2 and runs.count("cancel tour") == 1
    assert result.get_context("trip").SubType == "Saga"
    assert result.get_context("rollback").SubType == "SagaRollback"


def test_an_async_saga_that_completes(runner: DurableTestRunner) -> None:
    @durable_execution
    async def order(event: Any, ctx: AsyncDurableContext) -> Any:
        async with saga(ctx, "order") as s:
            first = await s.step(lambda step: 1, compensate=lambda step, undo: None, name="one")
            second = await s.pivot(lambda step: 2, name="two")
        return first + second

    runner.handler = order
    result = runner.run()
    assert result.status == "SUCCEEDED" and result.value == 3
    assert [op.Name for op in result.operations if op.SubType == "Compensation"] == []
