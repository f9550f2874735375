"""Handlers the dashboard tests look at, and a database with one execution of each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from durably import DurableContext, Duration, StepConfig, durable_execution
from durably.core.engine.engine import Engine
from durably.core.engine.functions import load_reference
from durably.core.retries import RetryStrategyConfig, create_retry_strategy

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
FAILURES: dict[str, int] = {}


def flaky(key: str) -> Any:
    def body(_: Any) -> str:
        FAILURES[key] = FAILURES.get(key, 0) + 1
        if FAILURES[key] < 3:
            raise ConnectionError(f"attempt {FAILURES[key]} of {key} failed")
        return "done"
    return body


@durable_execution
def retried(event: Any, ctx: DurableContext) -> Any:
    return ctx.step(flaky(event["key"]), name="flaky",
                    config=StepConfig(retry_strategy=create_retry_strategy(RetryStrategyConfig(max_attempts=5))))


@durable_execution
def hostile(event: Any, ctx: DurableContext) -> Any:
    """Every place a page shows user data gets markup: a name, a result, an error, a log line."""
    ctx.logger.warning("about to return %s", XSS)
    ctx.step(lambda _: XSS, name=XSS[:60])
    raise ValueError(XSS)


@durable_execution
def sign_off(event: Any, ctx: DurableContext) -> Any:
    answer = ctx.wait_for_callback(lambda callback_id, _: None, name="sign-off")
    return {"answer": answer}


@durable_execution
def fan_out(event: Any, ctx: DurableContext) -> Any:
    labels = ctx.map(["a", "b", "c"], lambda c, item, i, _: c.step(lambda _: item.upper(), name="label"),
                     name="labels")
    ctx.step(lambda _: "sent", name="send")
    return labels.get_results()


@durable_execution
def sleeper(event: Any, ctx: DurableContext) -> Any:
    ctx.wait(Duration.from_hours(1), name="nap")
    return "woke"


ORDER = load_reference(f"{EXAMPLES / 'order_fulfilment.py'}:handler")
REFUND_AGENT = load_reference(f"{EXAMPLES / 'refund_agent.py'}:handler")


@dataclass
class Shown:
    """The executions of :func:`populate`, by what each one shows."""

    rolled_back: str
    succeeded_order: str
    agent: str
    retried: str
    hostile: str
    sign_off: str
    fan_out: str


def populate(engine: Engine, tmp: Path) -> Shown:
    """One execution of each kind, run as far as it goes on ``engine`` (a skipping clock)."""
    FAILURES.clear()
    shop, ledger = str(tmp / "shop.db"), str(tmp / "refunds.db")
    rolled_back = engine.start_execution(ORDER, {"order_id": "A-2", "amount": 42, "fail": "shipment",
                                                 "ledger": shop}, name="order-A-2")
    succeeded = engine.start_execution(ORDER, {"order_id": "A-1", "amount": 42, "ledger": shop}, name="order-A-1")
    agent = engine.start_execution(REFUND_AGENT, {"order_id": "B-2", "question": "My lamp arrived broken.",
                                                  "ledger": ledger}, name="refund-B-2")
    shown = Shown(rolled_back, succeeded, agent,
                  engine.start_execution(retried, {"key": "r1"}, name="retried"),
                  engine.start_execution(hostile, {}, name="hostile"),
                  engine.start_execution(sign_off, {}, name="sign-off"),
                  engine.start_execution(fan_out, {}, name="fan-out"))
    for arn in (rolled_back, succeeded, shown.retried, shown.hostile, shown.fan_out):
        engine.run_until_complete(arn, skip_time=True)
    for arn in (agent, shown.sign_off):
        engine.run_until_suspended(arn)
    return shown
