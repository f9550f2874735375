"""``context.wait_for_condition``: poll ``check(state, ctx)`` until the wait strategy stops.

It is one STEP (SubType WaitForCondition), named only by ``name`` (as AWS: never after the
check function), whose every poll is checkpointed with the new state:
a poll that continues is a RETRY carrying the state, and the invocation suspends until the next
poll is due. Replay: a finished wait returns its final state without polling again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from durably.core.context_core import ContextCore, OpGen, UserCall
from durably.core.errors import (
    ExecutionError,
    InvocationError,
    TimedSuspendExecution,
    WaitForConditionError,
)
from durably.core.logger import DurableLogger
from durably.core.model import ErrorObject, OperationStatus, OperationType
from durably.core.operation.step import decode_result, encode_result
from durably.core.plugins import UserFunctionStartInfo
from durably.core.serdes import JsonSerDes, SerDesContext
from durably.core.waits import WaitForConditionConfig

STEP = OperationType.STEP
SUB_TYPE = "WaitForCondition"


@dataclass(frozen=True)
class WaitForConditionCheckContext:
    logger: DurableLogger
    attempt: int


def wait_for_condition(core: ContextCore, check: Callable[..., Any], config: WaitForConditionConfig[Any],
                       name: str | None) -> OpGen:
    op_id = core.next_id()
    op = core.existing(op_id, STEP, SUB_TYPE, name)
    serdes = config.serdes or JsonSerDes()
    sctx = SerDesContext(op_id, core.arn)
    what = f"wait_for_condition {name!r}" if name else f"wait_for_condition {op_id[:12]}"
    details = op.StepDetails if op is not None else None
    if op is not None:
        if op.Status == "SUCCEEDED":
            return decode_result(serdes, details.Result if details else None, sctx)
        if op.Status == "FAILED":
            raise ((details.Error if details else None) or ErrorObject()).to_error(WaitForConditionError)
        if op.Status == "PENDING":
            due = (details.NextAttemptTimestamp or 0) / 1000 if details else time.time()
            raise TimedSuspendExecution(f"{what} polls again later", due)

    core.replaying = False
    if details is not None and details.Result is not None:
        state = decode_result(serdes, details.Result, sctx)
    else:
        state = decode_result(serdes, encode_result(serdes, config.initial_state, sctx, what), sctx)
    attempt = (details.Attempt if details else 0) + 1
    start = core.update(op_id, STEP, "START", SUB_TYPE, name)
    if op is None or op.Status == "READY":
        core.state.queue(start)
    else:
        core.state.rerun(start)

    def fail(exc: BaseException) -> None:
        err = ErrorObject.from_exception(exc)
        core.state.write(core.update(op_id, STEP, "FAIL", SUB_TYPE, name, Error=err))
        raise err.to_error(WaitForConditionError)

    assert core.logger is not None
    logger = core.logger.for_running_code(operationId=op_id, operationName=name, attempt=attempt)
    run = core.state.plugins.around_user_function(check, UserFunctionStartInfo(
        op_id, STEP, SUB_TYPE, name, core.parent_id, None, False, OperationStatus.STARTED, attempt=attempt,
        execution_arn=core.arn))
    try:
        new_state = yield UserCall(run, (state, WaitForConditionCheckContext(logger, attempt)))
        payload = encode_result(serdes, new_state, sctx, what)
        new_state = decode_result(serdes, payload, sctx)
        decision = config.wait_strategy(new_state, attempt)
    except (ExecutionError, InvocationError):
        raise
    except Exception as exc:
        fail(exc)
        raise  # unreachable: fail() raises
    if decision.should_continue:
        delay = max(decision.delay.seconds, 1)
        core.state.write(core.update(op_id, STEP, "RETRY", SUB_TYPE, name, Payload=payload,
                                     StepOptions={"NextAttemptDelaySeconds": delay}))
        raise TimedSuspendExecution(f"{what} polls again in {delay}s", time.time() + delay)
    core.state.write(core.update(op_id, STEP, "SUCCEED", SUB_TYPE, name, Payload=payload))
    return new_state
