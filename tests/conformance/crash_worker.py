"""A worker process for the crash requirements: ``python -m conformance.crash_worker DB REQ_ID ARN``.

It registers the requirement's handler under its function name, takes over the invocation of a
dead worker if there is one, and drives the execution to its end (skipping waits and retry
delays). Workflow log records are printed to stdout as JSON lines for the parent to read. When
the handler crashes, this process dies with ``os._exit`` in the middle of the invocation.
"""

from __future__ import annotations

import logging
import sys

from durably import Engine, JsonFormatter
from durably.core.engine.clock import SkippingClock

from .handlers import REGISTRY
from .harness import WORKFLOW_LOGGER, function_name


def main(argv: list[str]) -> int:
    db, req_id, arn = argv
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(WORKFLOW_LOGGER)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    engine = Engine(db, synchronous="NORMAL", clock=SkippingClock())
    try:
        engine.register_durable_function(function_name(req_id), REGISTRY[req_id].handler)
        execution = engine.run_until_complete(arn, timeout=30, skip_time=True)
    finally:
        engine.close()
        engine.store.close()
    return 0 if execution["Status"] in ("SUCCEEDED", "FAILED") else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
