"""Invoking a handler through the Lambda invocation contract, as Lambda does.

The handler gets the durable envelope (``DurableExecutionArn``, ``CheckpointToken``,
``InitialExecutionState`` with timestamps in epoch milliseconds, ``UpdatedOperationIds``) and a
Lambda context object, and answers ``{"Status", "Result", "Error"}``. Its checkpoints and state
reads do not come back through this process: they go over the Lambda API to the endpoint its
client is given (``AWS_ENDPOINT_URL_LAMBDA``: ``durably serve`` on this database). Handlers written
with AWS's own SDK run this way; a durably handler does when the engine is asked to.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from durably.core.engine.errors import HandlerImportError
from durably.core.engine.service import Claim, Service
from durably.core.errors import InvocationError
from durably.core.model import InvocationOutput
from pydantic import ValidationError

ENVELOPE_PAGE = 1000
"""Operations carried in the envelope itself; the handler pages the rest with GetDurableExecutionState."""
INVOCATION_TIMEOUT_MS = 900_000
"""The time an invocation is told it has (Lambda's maximum function timeout)."""
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL")


def is_aws_sdk_handler(obj: Any) -> bool:
    """Whether ``obj`` is a handler wrapped by AWS's SDK (``aws_durable_execution_sdk_python``)."""
    code = getattr(obj, "__code__", None)
    return callable(obj) and "aws_durable_execution_sdk_python" in getattr(code, "co_filename", "")


def check_endpoint(function_name: str) -> None:
    """Refuse (for another worker to take) when checkpoints would not reach this database."""
    if not any(os.environ.get(name) for name in ENDPOINT_VARIABLES):
        raise HandlerImportError(
            f"function {function_name!r} runs through the Lambda invocation contract: its checkpoints go over the "
            "Lambda API, so this worker needs AWS_ENDPOINT_URL_LAMBDA set to `durably serve` on this database "
            "(`durably serve --workers N` runs such handlers with it set)")


@dataclass
class LambdaContext:
    """The context object a Lambda handler receives, with the fields AWS's runtime gives it."""

    function_name: str
    invoked_function_arn: str
    function_version: str = "$LATEST"
    memory_limit_in_mb: str = "1024"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""
    deadline_ms: int = field(default_factory=lambda: int(time.time() * 1000) + INVOCATION_TIMEOUT_MS)

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))


def envelope(service: Service, claim: Claim) -> dict[str, Any]:
    """The event Lambda would send for this invocation."""
    page = service.get_state(claim.arn, claim.token, None, ENVELOPE_PAGE)
    return {"DurableExecutionArn": claim.arn, "CheckpointToken": claim.token,
            "InitialExecutionState": {"Operations": [op.to_wire() for op in page.Operations],
                                      "NextMarker": page.NextMarker or ""},
            "UpdatedOperationIds": list(claim.updated_ids)}


def invoke(handler: Any, service: Service, claim: Claim) -> InvocationOutput:
    """Call ``handler(envelope, context)`` and read its output; an unreadable one is an invocation error."""
    arn = service.function_arn(claim.function_name)
    answer = handler(envelope(service, claim), LambdaContext(claim.function_name, arn))
    try:
        return InvocationOutput.model_validate(answer)
    except ValidationError as exc:
        raise InvocationError(
            f"the handler returned {str(answer)[:200]!r}, not a durable invocation output "
            f"({{'Status': 'SUCCEEDED' | 'FAILED' | 'PENDING', ...}}): {exc.errors()[0]['msg']}") from None
