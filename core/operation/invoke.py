"""``context.invoke``: run another function as its own execution and wait for its result.

The payload and result are plain JSON unless serdes are configured. Replay: a finished invoke
returns its stored result (or raises :class:`InvokeError`) without invoking the target again.
"""

from __future__ import annotations

import json
from typing import Any

from durably.core.config import InvokeConfig
from durably.core.context_core import ContextCore, OpGen
from durably.core.errors import InvokeError, SerDesError, SuspendExecution, ValidationError
from durably.core.limits import MAX_OPERATION_PAYLOAD, utf8_size
from durably.core.model import ErrorObject, Operation, OperationType
from durably.core.plugins import PropagationInput
from durably.core.serdes import SerDesContext, dumps

CHAINED_INVOKE = OperationType.CHAINED_INVOKE


def _invoke_error(op: Operation) -> InvokeError:
    error = (op.ChainedInvokeDetails.Error if op.ChainedInvokeDetails else None) or ErrorObject()
    message = error.ErrorMessage or f"invoked function ended {op.Status}"
    return InvokeError(message, error.ErrorType, error.ErrorData, error.StackTrace)


def invoke(core: ContextCore, function_name: str, payload: Any, name: str | None,
           config: InvokeConfig[Any, Any] | None) -> OpGen:
    config = config or InvokeConfig()
    if not function_name:
        raise ValidationError("invoke() needs a function name")
    op_id = core.next_id()
    op = core.existing(op_id, CHAINED_INVOKE, "ChainedInvoke", name)
    sctx = SerDesContext(op_id, core.arn)
    if op is None:
        try:
            text = (config.serdes_payload.serialize(payload, sctx) if config.serdes_payload
                    else dumps(payload))
        except (TypeError, ValueError) as exc:
            raise SerDesError(f"invoke {function_name!r}: cannot serialise the payload: {exc}") from exc
        if utf8_size(text) > MAX_OPERATION_PAYLOAD:
            raise ValidationError(f"invoke {function_name!r}: the payload is {utf8_size(text)} bytes, "
                                  f"over the {MAX_OPERATION_PAYLOAD}-byte limit")
        options: dict[str, Any] = {"FunctionName": function_name}
        if config.tenant_id:
            options["TenantId"] = config.tenant_id
        header = core.state.plugins.propagation(PropagationInput(core.arn, op_id, function_name, core.parent_id))
        if header is not None:
            options["XAmznTraceId"] = header
        core.replaying = False
        core.state.write(core.update(op_id, CHAINED_INVOKE, "START", "ChainedInvoke", name,
                                     Payload=text, ChainedInvokeOptions=options))
        op = core.state.get(op_id)
    if op is not None and op.Status == "SUCCEEDED":
        raw = op.ChainedInvokeDetails.Result if op.ChainedInvokeDetails else None
        if config.serdes_result is not None:
            return None if raw is None else config.serdes_result.deserialize(raw, sctx)
        return None if raw is None else json.loads(raw)
    if op is not None and op.Status in ("FAILED", "TIMED_OUT", "STOPPED"):
        raise _invoke_error(op)
    core.replaying = False
    raise SuspendExecution(f"waiting for invoked function {function_name!r}")
    yield  # pragma: no cover
