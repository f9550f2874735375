"""``context.wait``: suspend for a whole number of seconds; the engine holds the timer.

Replay: a completed wait returns at once; a wait still running suspends the invocation again.
"""

from __future__ import annotations

import time

from durably.core.config import Duration
from durably.core.context_core import ContextCore, OpGen
from durably.core.errors import TimedSuspendExecution, ValidationError
from durably.core.limits import MAX_WAIT_SECONDS
from durably.core.model import OperationType

WAIT = OperationType.WAIT


def wait(core: ContextCore, duration: Duration, name: str | None) -> OpGen:
    if not isinstance(duration, Duration):
        raise ValidationError(f"wait() takes a Duration, not {type(duration).__qualname__}")
    seconds = duration.to_seconds()
    if not 1 <= seconds <= MAX_WAIT_SECONDS:
        raise ValidationError(f"a wait lasts 1 to {MAX_WAIT_SECONDS} seconds, not {seconds}")
    op_id = core.next_id()
    op = core.existing(op_id, WAIT, "Wait", name)
    if op is None:
        core.replaying = False
        core.state.write(core.update(op_id, WAIT, "START", "Wait", name, WaitOptions={"WaitSeconds": seconds}))
        op = core.state.get(op_id)
    if op is not None and op.Status in ("SUCCEEDED", "CANCELLED"):
        return None
    end = op.WaitDetails.ScheduledEndTimestamp if op and op.WaitDetails else None
    due = end / 1000 if end else time.time() + seconds
    core.replaying = False
    raise TimedSuspendExecution(f"wait {name or op_id[:12]} until {due:.3f}", due)
    yield  # pragma: no cover - makes this function a generator like every operation
