"""Order fulfilment as a durable workflow: reserve, charge (a flaky gateway, retried), cool off, ship.

Run it:  durably run examples/order_fulfilment.py:handler --input '{"order_id": "A-1", "amount": 42}'

Every step's result is checkpointed. Kill the process at any point and run ``durably worker``:
the execution resumes where it stopped, and completed steps do not run again.
"""

from __future__ import annotations

from typing import Any

from durably import (
    DurableContext,
    Duration,
    RetryStrategyConfig,
    StepConfig,
    StepContext,
    create_retry_strategy,
    durable_execution,
    durable_step,
)


@durable_step
def reserve_inventory(step: StepContext, order_id: str) -> dict[str, Any]:
    step.logger.info("reserving stock for %s", order_id)
    return {"order_id": order_id, "reservation": f"res-{order_id}"}


@durable_step
def charge_payment(step: StepContext, order_id: str, amount: int) -> dict[str, Any]:
    if step.attempt == 1:  # the gateway times out once; the step is retried after a delay
        raise TimeoutError("payment gateway timed out")
    return {"order_id": order_id, "charged": amount, "attempt": step.attempt}


@durable_step
def ship(step: StepContext, order_id: str) -> str:
    return f"shipment-{order_id}"


@durable_execution
def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    order_id = event["order_id"]
    reservation = context.step(reserve_inventory(order_id))
    payment = context.step(
        charge_payment(order_id, event.get("amount", 0)),
        config=StepConfig(retry_strategy=create_retry_strategy(
            RetryStrategyConfig(max_attempts=3, initial_delay=Duration(1), max_delay=Duration(1)))),
    )
    context.wait(Duration.from_seconds(1), name="cool-off")
    shipment = context.step(ship(order_id))
    context.logger.info("order %s shipped", order_id)
    return {"reservation": reservation["reservation"], "payment": payment, "shipment": shipment}
