"""Order fulfilment as a saga: reserve stock, charge the card, ship (the pivot), send a confirmation.

Run it:  durably run examples/order_fulfilment.py:handler --input '{"order_id": "A-1", "amount": 42}'

Each step calls a fake service (``shop.py`` next to this file) that keeps its effects in a SQLite
ledger (``.durably/shop.db``; ``python examples/shop.py`` shows it). When a step fails before the
shipment exists, the saga undoes what was done, in reverse: the charge is refunded, the stock
released. Once the shipment exists (the pivot) there is no going back: a later failure is
retried forward. A refund that keeps failing asks a person, through a callback:

    durably callback success CALLBACK_ID --payload '{"decision": "retry"}'      # or "resolved", "abort"

Add ``"fail": "payment" | "shipment" | "confirmation" | "refund-once" | "refund-always" | ...`` to
the input to see each path (``shop.py`` lists the faults). Every step's result is checkpointed:
kill the process at any point and run ``durably worker``; the execution resumes where it stopped.
A step body may run again after a crash, so each service call carries the step's idempotency key,
and a charge repeated with the same key is not charged twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from durably import (
    DurableContext,
    Duration,
    JitterStrategy,
    RetryStrategyConfig,
    StepConfig,
    StepContext,
    create_retry_strategy,
    durable_execution,
)
from durably.sagas import Escalation, SagaConfig, Undo, compensable, saga

if TYPE_CHECKING:  # mypy, run at the repository's root, sees this folder inside the package
    from .shop import Shop, ledger_path
else:  # run, the file is loaded by its path, with its folder on sys.path
    from shop import Shop, ledger_path


def retrying(attempts: int) -> StepConfig:
    """Retry what a network does (time-outs, refused connections) every second; a refusal is final at once."""
    return StepConfig(retry_strategy=create_retry_strategy(RetryStrategyConfig(
        max_attempts=attempts, initial_delay=Duration(1), max_delay=Duration(1), jitter_strategy=JitterStrategy.NONE,
        retryable_error_types=[TimeoutError, ConnectionError])))


ORDER_SAGA = SagaConfig(
    # compensations retry three times a second apart (a real shop would keep trying for hours) ...
    compensation_retry=create_retry_strategy(RetryStrategyConfig(
        max_attempts=3, initial_delay=Duration(1), max_delay=Duration(1), jitter_strategy=JitterStrategy.NONE)),
    # ... then a person is asked; the default notification logs the callback id and how to answer
    escalation=Escalation(timeout=Duration.from_days(1)),
)


# ---------------------------------------------------------------------------- compensations
def release_inventory(step: StepContext, undo: Undo) -> dict[str, Any]:
    order = undo.args[0]
    return Shop(order).warehouse.release(undo.result["reservation_id"], order["order_id"],
                                         key=step.idempotency_key, execution=step.execution_arn)


def refund_payment(step: StepContext, undo: Undo) -> dict[str, Any]:
    """Refund what this execution was charged: also after a charge that timed out (``undo.result`` is None
    then), since the gateway may have taken it; the gateway finds it by the execution's reference."""
    order = undo.args[0]
    return Shop(order).payments.refund(order["order_id"], key=step.idempotency_key, execution=step.execution_arn)


# ---------------------------------------------------------------------------- forward steps
@compensable(release_inventory, config=retrying(3))
def reserve_inventory(step: StepContext, order: dict[str, Any]) -> dict[str, Any]:
    step.logger.info("reserving stock for %s", order["order_id"])
    return Shop(order).warehouse.reserve(order["order_id"], int(order.get("quantity", 1)),
                                         key=step.idempotency_key, execution=step.execution_arn)


@compensable(refund_payment, compensate_on_failure=True, config=retrying(3))
def charge_payment(step: StepContext, order: dict[str, Any]) -> dict[str, Any]:
    # the gateway times out once after taking the charge: the retry carries the same key, and is not charged again
    return Shop(order).payments.charge(order["order_id"], int(order.get("amount", 0)),
                                       key=step.idempotency_key, execution=step.execution_arn)


def create_shipment(step: StepContext, order: dict[str, Any], reservation: dict[str, Any]) -> dict[str, Any]:
    return Shop(order).carrier.ship(order["order_id"], reservation["reservation_id"],
                                    key=step.idempotency_key, execution=step.execution_arn)


def send_confirmation(step: StepContext, order: dict[str, Any], shipment: dict[str, Any]) -> dict[str, Any]:
    return Shop(order).mailer.send(order["order_id"], order.get("email", "customer@example.com"),
                                   f"Order {order['order_id']} shipped: {shipment['tracking']}",
                                   key=step.idempotency_key, execution=step.execution_arn)


@durable_execution
def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    order = {**event, "ledger": ledger_path(event)}
    with saga(context, "order", input=order, config=ORDER_SAGA) as s:
        reservation = s.step(reserve_inventory, order)
        payment = s.step(charge_payment, order)
        shipment = s.pivot(create_shipment, order, reservation, config=retrying(3))  # no rollback after this
        confirmation = s.step(send_confirmation, order, shipment, config=retrying(4))
    context.logger.info("order %s shipped: %s", order["order_id"], shipment["tracking"])
    return {"order_id": order["order_id"], "reservation": reservation["reservation_id"],
            "charge": payment["charge_id"], "shipment": shipment["shipment_id"],
            "tracking": shipment["tracking"], "confirmation": confirmation["email_id"]}
