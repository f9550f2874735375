"""The runtime's backend over boto3's ``lambda`` client: an invocation on AWS Lambda.

Every checkpoint carries a fresh client token, so botocore's own retries of a throttled, failed or
timed-out call cannot apply it twice. Timestamps come from boto3 as datetimes and are converted to
the runtime's epoch milliseconds here, at the boundary. Pages of the state are fetched until the
marker runs out, after the invocation's first read and after any checkpoint that answers with one.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from durably.core import (
    CheckpointError,
    CheckpointResponse,
    ExecutionError,
    ExecutionState,
    GetExecutionStateError,
    OperationUpdate,
)

RETRIES = Config(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=5, read_timeout=60,
                 user_agent_extra="durably")
"""botocore's standard retry mode (throttling, 5xx and connection errors, with jittered backoff)."""
STATE_PAGE = 1000


class CheckpointRefused(ExecutionError):
    """The service refused a checkpoint or state read for good (a 4xx that no retry can fix):
    the invocation ends FAILED with it, as AWS's SDK does."""


def _client_error(exc: ClientError, what: str, retryable: type[Exception]) -> Exception:
    """Fencing and transient errors end the invocation to be invoked again; the rest fail it."""
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    text = f"{what} failed: {code}: {message}"
    stale_token = code == "InvalidParameterValueException" and message.startswith("Invalid checkpoint token")
    if stale_token or status >= 500 or status == 429 or not 400 <= status < 500:
        return retryable(text)
    return CheckpointRefused(text)


def epoch_ms(value: Any) -> Any:
    """boto3's answer with every datetime as epoch milliseconds (and no ResponseMetadata)."""
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: epoch_ms(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [epoch_ms(v) for v in value]
    return value


class LambdaBackend:
    """:class:`~durably.core.backend.Backend` over a boto3 ``lambda`` client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def checkpoint(self, arn: str, token: str, updates: list[OperationUpdate]) -> CheckpointResponse:
        try:
            answer = self.client.checkpoint_durable_execution(
                DurableExecutionArn=arn, CheckpointToken=token, ClientToken=str(uuid.uuid4()),
                Updates=[u.to_wire() for u in updates])
        except ClientError as exc:
            raise _client_error(exc, f"checkpoint of {len(updates)} update(s)", CheckpointError) from exc
        except BotoCoreError as exc:
            raise CheckpointError(f"checkpoint failed: {exc}") from exc
        response = CheckpointResponse.model_validate(epoch_ms(answer))
        state = response.NewExecutionState
        while state.NextMarker and response.CheckpointToken:
            page = self.get_state(arn, response.CheckpointToken, state.NextMarker)
            state = ExecutionState(Operations=[*state.Operations, *page.Operations], NextMarker=page.NextMarker)
        response.NewExecutionState = state
        return response

    def get_state(self, arn: str, token: str, marker: str | None) -> ExecutionState:
        options = {"Marker": marker} if marker else {}
        try:
            answer = self.client.get_durable_execution_state(
                DurableExecutionArn=arn, CheckpointToken=token, MaxItems=STATE_PAGE, **options)
        except ClientError as exc:
            raise _client_error(exc, "reading the execution state", GetExecutionStateError) from exc
        except BotoCoreError as exc:
            raise GetExecutionStateError(f"reading the execution state failed: {exc}") from exc
        state = ExecutionState.model_validate(epoch_ms(answer))
        state.NextMarker = state.NextMarker or None
        return state
