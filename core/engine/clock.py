"""Time for the engine, in epoch milliseconds. The test runner swaps in a clock it can skip."""

from __future__ import annotations

import threading
import time


class Clock:
    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def sleep_until(self, due_ms: int, wake: threading.Event, cap_s: float) -> None:
        """Block until ``due_ms``, ``wake`` is set, or ``cap_s`` passes, whichever comes first."""
        delay = min(max(due_ms - self.now_ms(), 0) / 1000, cap_s)
        if delay > 0:
            wake.wait(delay)


class SkippingClock(Clock):
    """Real time plus an offset that the driver advances to skip over waits and retry delays."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.offset_ms

    def advance_to(self, due_ms: int) -> None:
        gap = due_ms - self.now_ms()
        if gap > 0:
            self.offset_ms += gap
