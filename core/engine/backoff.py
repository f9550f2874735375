"""Backing off from work that keeps failing, and saying so at a bounded rate."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


def capped_delay(failures: int, first: float, cap: float) -> float:
    """``first`` doubled for each failure after the first, at most ``cap`` (seconds)."""
    return float(min(first * 2.0 ** max(failures - 1, 0), cap))


class RepeatedErrors:
    """A loop's run of consecutive errors: how long to pause after each, and when to log it.

    The first error of a run is logged with its traceback; while the run goes on, at most one
    line per ``log_every`` seconds says how many errors it has seen; the first success after it
    says that the loop recovered.
    """

    def __init__(self, logger: logging.Logger, what: str, first: float = 0.05, cap: float = 5.0,
                 log_every: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.what = what
        self.first = first
        self.cap = cap
        self.log_every = log_every
        self.clock = clock
        self.count = 0
        self._logged_at = 0.0

    def failed(self, exc: BaseException) -> float:
        """Count ``exc``, log it if it is time to, and answer the pause before the next try."""
        self.count += 1
        now = self.clock()
        if self.count == 1:
            self.logger.error("%s failed: %s: %s; retrying with backoff", self.what, type(exc).__name__, exc,
                              exc_info=exc)
            self._logged_at = now
        elif now - self._logged_at >= self.log_every:
            self.logger.error("%s still failing (%d errors in a row): %s: %s", self.what, self.count,
                              type(exc).__name__, exc)
            self._logged_at = now
        return capped_delay(self.count, self.first, self.cap)

    def succeeded(self) -> None:
        """End the run of errors, if there was one."""
        if self.count:
            self.logger.warning("%s recovered after %d errors in a row", self.what, self.count)
            self.count = 0
