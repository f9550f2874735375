"""The registry of conformance handlers: one durable handler per requirement id.

Each suite module decorates its handlers with :func:`requirement`; ``targets`` are the
functions a handler invokes (registered on the engine under those names), and ``crash`` marks
a handler that kills its worker process (the harness runs those in subprocesses).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from durably import DurableFunction

WORKER_ENV = "DURABLY_CONFORMANCE_WORKER"
"""Set in the crash worker processes; a crashing handler refuses to kill any other process."""
STATE_ENV = "DURABLY_CONFORMANCE_STATE"
"""A directory for state that must survive a crash (the stand-in for 3-12's DynamoDB table)."""


@dataclass(frozen=True)
class Case:
    req_id: str
    handler: DurableFunction
    targets: Mapping[str, Any] = field(default_factory=dict)
    crash: bool = False


REGISTRY: dict[str, Case] = {}


def requirement(req_id: str, *, targets: Mapping[str, Any] | None = None,
                crash: bool = False) -> Callable[[DurableFunction], DurableFunction]:
    """Register the decorated durable handler as the implementation of ``req_id``."""
    def register(handler: DurableFunction) -> DurableFunction:
        if req_id in REGISTRY:
            raise ValueError(f"requirement {req_id} has two handlers")
        REGISTRY[req_id] = Case(req_id, handler, dict(targets or {}), crash)
        return handler
    return register


def crash_process() -> None:
    """Die like a Lambda runtime crash (``process.exit``): no cleanup, no exception handling."""
    if os.environ.get(WORKER_ENV) != "1":
        raise RuntimeError("a crash handler must run in a conformance worker process, not in the test process")
    os._exit(17)
