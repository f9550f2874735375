"""Handlers run the same way on the embedded engine, through the Lambda API against durably serve,
and under AWS's own emulator: the step / retry / wait / map / invoke / callback basics."""

from __future__ import annotations

from typing import Any

from durably import (
    DurableContext,
    Duration,
    RetryStrategyConfig,
    StepConfig,
    create_retry_strategy,
    durable_execution,
)
from durably.core.engine.engine import Engine

ATTEMPTS: dict[str, int] = {}


def flaky(order: str) -> str:
    ATTEMPTS[order] = ATTEMPTS.get(order, 0) + 1
    if ATTEMPTS[order] < 2:
        raise ConnectionError(f"payment service busy ({ATTEMPTS[order]})")
    return f"paid {order}"


@durable_execution
def pricing(event: Any, ctx: DurableContext) -> Any:
    return ctx.step(lambda _: len(event["items"]) * 10, name="price")


@durable_execution
def basics(event: Any, ctx: DurableContext) -> Any:
    retry = StepConfig(retry_strategy=create_retry_strategy(RetryStrategyConfig(
        max_attempts=3, initial_delay=Duration.from_seconds(1))))
    paid = ctx.step(lambda _: flaky(event["order"]), name="pay", config=retry)
    ctx.wait(Duration.from_seconds(5), name="cool-off")
    packed = ctx.map(event["items"], lambda c, item, i, items: c.step(lambda _: item.upper(), name="pack"),
                     name="pack items")
    price = ctx.invoke("pricing", {"items": event["items"]}, name="price")
    answer = ctx.wait_for_callback(lambda callback_id, _: None, name="approve")
    return {"paid": paid, "packed": packed.get_results(), "price": price, "answer": answer}


def shape(events: list[dict[str, Any]]) -> tuple[list[tuple[str, str | None, str | None]], list[tuple[str, ...]]]:
    """What a history says happened, without times, ids and the invocations that did it: the
    top-level events in order, and every event (map items run concurrently, in any order)."""
    kept = [e for e in events if e["EventType"] != "InvocationCompleted"]
    top = [(e["EventType"], e.get("SubType"), e.get("Name")) for e in kept if not e.get("ParentId")]
    return top, sorted((e["EventType"], e.get("SubType") or "", e.get("Name") or "") for e in kept)


def run_answering_callbacks(engine: Engine, handler: Any, event: dict[str, Any],
                            name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run an execution to its end on ``engine`` (time skipped), answering each callback ``"ok"``;
    answer the execution and its history."""
    arn = engine.start_execution(handler, event, name=name)
    while True:
        execution = engine.run_until_complete(arn, skip_time=True, stop_when_blocked=True)
        if execution["Status"] != "RUNNING":
            return execution, engine.get_history(arn)
        callback = next(e for e in engine.get_history(arn) if e["EventType"] == "CallbackStarted"
                        and not any(d["EventType"] == "CallbackSucceeded" and d["Id"] == e["Id"]
                                    for d in engine.get_history(arn)))
        engine.send_callback_success(callback["CallbackStartedDetails"]["CallbackId"], '"ok"')
