"""Which operations an execution has, remembered between its checkpoints.

Only a checkpoint creates operations, and every checkpoint and every claim replaces the
execution's token. So while the token a checkpoint presents is the one recorded here, the
recorded map of operation id to type is complete: an id missing from it is a new operation,
known without reading the database, and a parent's type is known without reading its row.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

CAPACITY = 1024
"""Executions remembered at once (those whose invocations run in this process)."""


class KnownOperations:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, tuple[str, dict[str, str]]] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, arn: str, token: str) -> dict[str, str] | None:
        """The id -> type map of ``arn`` if it is current for ``token`` (do not mutate it)."""
        entry = self._entries.get(arn)
        return entry[1] if entry is not None and entry[0] == token else None

    def record(self, arn: str, token: str | None, types: dict[str, str]) -> None:
        """After a committed checkpoint: ``types`` is complete as of ``token``."""
        with self._lock:
            if token is None:
                self._entries.pop(arn, None)
                return
            self._entries[arn] = (token, types)
            self._entries.move_to_end(arn)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)

    def forget(self, arn: str) -> None:
        with self._lock:
            self._entries.pop(arn, None)
