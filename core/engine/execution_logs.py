"""The log records of the handlers an engine runs, kept with their executions (``logs`` rows).

A record logged through a durable logger (``context.logger``, a step's ``step_context.logger``)
while this engine runs that execution's invocation is buffered, and written when the invocation
ends (or when many are waiting), in one transaction. Records of a replayed part are not logged
again (the logger drops them), so each line is kept once; a process killed mid-invocation loses
that invocation's records, as its output would be.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Collection
from typing import Any

from durably.core.engine.clock import Clock
from durably.core.engine.stores.base import Store
from durably.core.logger import add_record_sink, remove_record_sink

FLUSH_AT = 500
"""Records buffered before they are written without waiting for the invocation's end."""
_MAX_MESSAGE = 64 * 1024


class ExecutionLogs:
    def __init__(self, store: Store, clock: Clock, running: Callable[[], Collection[str]]) -> None:
        self._store = store
        self._clock = clock
        self._running = running
        self._lock = threading.Lock()
        self._pending: list[tuple[str, int, str, str, str]] = []
        add_record_sink(self._keep)

    def _keep(self, level: int, message: str, fields: dict[str, Any]) -> None:
        arn = fields.get("executionArn")
        if not isinstance(arn, str) or arn not in self._running():
            return
        kept = {k: v for k, v in fields.items() if k != "executionArn" and v is not None}
        row = (arn, self._clock.now_ms(), logging.getLevelName(level), message[:_MAX_MESSAGE],
               json.dumps(kept, default=str))
        with self._lock:
            self._pending.append(row)
            full = len(self._pending) >= FLUSH_AT
        if full:
            self.flush()

    def flush(self) -> None:
        """Write the buffered records (of executions still in the database)."""
        with self._lock:
            rows, self._pending = self._pending, []
        if not rows:
            return

        self._store.transact(lambda tx: tx.add_logs(rows))

    def close(self) -> None:
        remove_record_sink(self._keep)
        self.flush()
