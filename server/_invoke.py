"""Lambda ``Invoke`` of a durable function: how the service starts an execution.

``RequestResponse`` (the default) waits for the whole execution to end, as Lambda does for a
durable function, up to a limit (Lambda's is 15 minutes); ``Event`` answers 202 at once;
``DryRun`` checks the request and starts nothing. Every answer names the execution in
``X-Amz-Durable-Execution-Arn``. The execution runs on whatever workers use the database (``durably
serve --worker`` runs some in the server itself).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from durably.core.engine.engine import TERMINAL, Engine
from durably.core.engine.errors import InvalidParameterValueException, ResourceNotFoundException, ServiceError
from starlette.requests import Request
from starlette.responses import Response

SYNC_INVOKE_SECONDS = 900.0
"""How long a ``RequestResponse`` invoke waits for its execution (Lambda's synchronous limit)."""
_POLL_SECONDS = 0.02
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")


class InvalidRequestContentException(ServiceError):
    code = "InvalidRequestContentException"
    status = 400


def function_and_qualifier(function: str, qualifier: str | None) -> tuple[str, str | None]:
    """The function name and qualifier of a name, ``name:qualifier`` or a function ARN."""
    if function.startswith("arn:"):
        parts = function.split(":")
        if len(parts) not in (7, 8) or parts[5] != "function":
            raise InvalidParameterValueException(f"{function!r} is not a Lambda function ARN")
        name, named = parts[6], parts[7] if len(parts) == 8 else None
    else:
        name, _, rest = function.partition(":")
        named = rest or None
    if named and qualifier and named != qualifier:
        raise InvalidParameterValueException(
            f"the function is qualified {named!r} and the Qualifier is {qualifier!r}; give one")
    return name, named or qualifier


async def invoke(engine: Engine, request: Request, body: bytes, sync_seconds: float) -> Response:
    name, qualifier = function_and_qualifier(request.path_params["function"], request.query_params.get("Qualifier"))
    if qualifier not in (None, "$LATEST"):
        raise ResourceNotFoundException(
            f"function {name}:{qualifier} not found: this engine runs $LATEST only")
    kind = request.headers.get("x-amz-invocation-type", "RequestResponse")
    if kind not in INVOCATION_TYPES:
        raise InvalidParameterValueException(f"X-Amz-Invocation-Type must be one of {', '.join(INVOCATION_TYPES)}")
    spec = engine.service.stored_function(name)
    if spec is None or not spec.durable:
        raise ResourceNotFoundException(
            f"no durable function {name!r} in this database: start one with `durably run` or register it first")
    text = body.decode("utf-8", errors="replace") if body.strip() else "null"
    try:
        json.loads(text)
    except ValueError as exc:
        raise InvalidRequestContentException(f"could not parse the request body as JSON: {exc}") from None
    if kind == "DryRun":
        return Response(status_code=204)
    arn = engine.start_execution(name, text, name=request.headers.get("x-amz-durable-execution-name"),
                                 input_is_json=True)
    headers = {"X-Amz-Durable-Execution-Arn": arn, "X-Amz-Executed-Version": "$LATEST"}
    if kind == "Event":
        return Response(status_code=202, headers=headers)
    execution = await _ended(engine, arn, sync_seconds)
    if execution["Status"] == "SUCCEEDED":
        return Response(execution.get("Result") or "null", headers=headers, media_type="application/json")
    if execution["Status"] in TERMINAL:
        error = execution.get("Error") or {}
        failure = {"errorType": error.get("ErrorType") or execution["Status"],
                   "errorMessage": error.get("ErrorMessage") or f"the execution ended {execution['Status']}"}
        if error.get("StackTrace"):
            failure["stackTrace"] = error["StackTrace"]
    else:
        failure = {"errorType": "Sandbox.Timedout",
                   "errorMessage": f"{arn} is still {execution['Status']} after {sync_seconds:g} s; it goes on "
                                   "(invoke it with InvocationType Event for long executions)"}
    return Response(json.dumps(failure), headers={**headers, "X-Amz-Function-Error": "Unhandled"},
                    media_type="application/json")


async def _ended(engine: Engine, arn: str, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        execution = engine.service.get_execution(arn)
        if execution["Status"] in TERMINAL or time.monotonic() >= deadline:
            return execution
        await asyncio.sleep(_POLL_SECONDS)
