"""Idempotent checkpoints: a request repeated with its ``ClientToken`` gets the first answer again.

A client that lost the answer to a checkpoint (a timeout, a dropped connection) sends it again
with the same client token; the token it checkpointed with is spent by then, so without this the
retry would be refused as stale. As on Lambda, answers are kept for 15 minutes (and here, for the
most recent :data:`KEPT` requests of this server process).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

WINDOW_SECONDS = 15 * 60
KEPT = 10_000


class ClientTokens:
    def __init__(self, window: float = WINDOW_SECONDS, kept: int = KEPT) -> None:
        self._answers: OrderedDict[tuple[str, str, str], tuple[float, Any]] = OrderedDict()
        self._window, self._kept = window, kept
        self._lock = threading.Lock()

    def answered(self, arn: str, client_token: str, checkpoint_token: str) -> Any | None:
        """The answer already given to this request, if it came within the window."""
        with self._lock:
            found = self._answers.get((arn, client_token, checkpoint_token))
            return found[1] if found is not None and time.monotonic() - found[0] < self._window else None

    def remember(self, arn: str, client_token: str, checkpoint_token: str, answer: Any) -> None:
        with self._lock:
            self._answers[(arn, client_token, checkpoint_token)] = (time.monotonic(), answer)
            while len(self._answers) > self._kept:
                self._answers.popitem(last=False)
