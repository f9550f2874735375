"""Sagas on durable execution: compensations rolled back in reverse (and in parallel), a pivot,
escalation to a person.

.. code-block:: python

    from durably.sagas import saga

    with saga(context, "order", input=event) as s:
        reservation = s.step(reserve, event, compensate=release)
        payment = s.step(charge, event, compensate=refund, compensate_on_failure=True)
        shipment = s.pivot(ship, reservation)      # no rollback after this
        s.step(confirm, shipment)

In an ``async def`` handler: ``async with saga(context, "order") as s:`` and ``await s.step(...)``.
Built on ``durably.core``'s public API only: a saga is a child context with SubType ``Saga``, its
rollback a child context (SubType ``SagaRollback``) inside it, a compensation a step with SubType
``Compensation`` named after the step it undoes.
"""

from durably.sagas._config import Escalation, EscalationRequest, SagaConfig, patient_retry
from durably.sagas._outcomes import SagaCompensationFailed, SagaError, SagaForwardRecoveryFailed, SagaRolledBack
from durably.sagas._saga import (
    COMPENSATION_SUBTYPE,
    ROLLBACK_SUBTYPE,
    SAGA_SUBTYPE,
    AsyncSaga,
    Compensation,
    Saga,
    SagaStep,
    Undo,
    compensable,
    saga,
)

__all__ = [
    "COMPENSATION_SUBTYPE",
    "ROLLBACK_SUBTYPE",
    "SAGA_SUBTYPE",
    "AsyncSaga",
    "Compensation",
    "Escalation",
    "EscalationRequest",
    "Saga",
    "SagaCompensationFailed",
    "SagaConfig",
    "SagaError",
    "SagaForwardRecoveryFailed",
    "SagaRolledBack",
    "SagaStep",
    "Undo",
    "compensable",
    "patient_retry",
    "saga",
]
