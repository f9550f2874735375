"""The Lambda durable REST routes (API version 2025-12-01) over the engine's service.

Timestamps are stored as epoch milliseconds and sent as the rest-json protocol's epoch seconds.
Errors are AWS's JSON error shape (``__type`` and ``message``, with ``x-amzn-errortype``) and the
status of the exception botocore maps them to; a body that is not JSON is a 400, an oversize one a
413, anything unforeseen a 500 that names no internals.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from durably.core.engine.engine import Engine
from durably.core.engine.errors import InvalidParameterValueException, RequestTooLargeException, ServiceError
from durably.core.engine.history import render_timestamps
from durably.core.limits import MAX_EXECUTION_RESULT
from durably.core.model import ErrorObject, OperationUpdate
from durably.server._client_tokens import ClientTokens
from durably.server._invoke import SYNC_INVOKE_SECONDS, invoke
from durably.server._sigv4 import AccessKey, verify
from durably.server.dashboard import dashboard_routes
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API = "/2025-12-01"
MAX_BODY = 3 * MAX_EXECUTION_RESULT + 1024 * 1024
"""The largest request body accepted: room for a checkpoint of the largest execution result with
every byte escaped (``\\u00e9`` is six bytes of JSON for two of UTF-8) and the request's other fields.
The fields themselves are held to their own limits by the engine."""
_log = logging.getLogger("durably.server")
Handler = Callable[[Request], Awaitable[Response]]


def _error(code: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"__type": code, "message": message}, status_code=status,
                        headers={"x-amzn-errortype": code})


def _json(value: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(render_timestamps(value, "epoch"), status_code=status)


async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise RequestTooLargeException(f"the request body is {len(body)} bytes, over the {MAX_BODY}-byte limit")
    return body


async def _json_body(request: Request) -> Any:
    body = await _body(request)
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except ValueError as exc:
        raise InvalidParameterValueException(f"the request body is not JSON: {exc}") from None


def _flag(request: Request, name: str, default: bool) -> bool:
    value = request.query_params.get(name)
    return default if value is None else value.lower() == "true"


def _int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidParameterValueException(f"{name} must be an integer, not {value!r}") from None


def _epoch_ms(request: Request, name: str) -> int | None:
    """A query timestamp as botocore sends it (ISO 8601) or as epoch seconds, in epoch ms."""
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        return int(float(value) * 1000)
    except ValueError:
        pass
    try:
        return int(dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        raise InvalidParameterValueException(f"{name} must be a timestamp, not {value!r}") from None


def _error_object(data: Any) -> ErrorObject | None:
    if data in ({}, None):
        return None
    try:
        return ErrorObject.model_validate(data)
    except ValidationError as exc:
        raise InvalidParameterValueException(f"the Error is not an ErrorObject: {exc.errors()[0]['msg']}") from None


def _signed_url(request: Request) -> str:
    """The URL as the client sent (and signed) it: raw path, raw query."""
    url = f"{request.url.scheme}://{request.headers.get('host', '')}{request.scope['raw_path'].decode('latin-1')}"
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{url}?{query}" if query else url


def create_app(engine: Engine, *, access_key: AccessKey | None = None,
               sync_invoke_seconds: float = SYNC_INVOKE_SECONDS) -> Starlette:
    """The ASGI application of ``durably serve`` on ``engine``'s database.

    With ``access_key``, every request must be signed with it (AWS Signature Version 4): unsigned
    or wrongly signed requests get a 403. ``sync_invoke_seconds``: how long a ``RequestResponse``
    ``Invoke`` waits for its execution to end.
    """
    service = engine.service
    client_tokens = ClientTokens()

    def guarded(handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            try:
                if access_key is not None:
                    verify(access_key, request.method, _signed_url(request),
                           {k.lower(): v for k, v in request.headers.items()}, await _body(request))
                return await handler(request)
            except ServiceError as exc:
                return _error(exc.code, str(exc), exc.status)
            except Exception:
                _log.exception("%s %s failed", request.method, request.url.path)
                return _error("ServiceException", "the server could not handle the request", 500)
        return run

    async def get_execution(request: Request) -> Response:
        out = service.get_execution(request.path_params["arn"])
        if not _flag(request, "IncludeExecutionData", True):
            out = {k: v for k, v in out.items() if k not in ("InputPayload", "Result")}
        return _json(out)

    async def get_history(request: Request) -> Response:
        return _json(service.get_history(
            request.path_params["arn"], request.query_params.get("Marker"), _int(request, "MaxItems") or 1000,
            _flag(request, "ReverseOrder", False), _flag(request, "IncludeExecutionData", True)))

    async def get_state(request: Request) -> Response:
        state = service.get_state(request.path_params["arn"], request.query_params.get("CheckpointToken"),
                                  request.query_params.get("Marker"), _int(request, "MaxItems") or 1000)
        return _json(state.model_dump(exclude_none=True))

    async def checkpoint(request: Request) -> Response:
        data = await _json_body(request)
        token = data.get("CheckpointToken") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise InvalidParameterValueException("CheckpointToken is required")
        try:
            updates = [OperationUpdate.model_validate(u) for u in data.get("Updates") or []]
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InvalidParameterValueException(
                f"Updates: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        arn, client_token = request.path_params["arn"], data.get("ClientToken")
        if isinstance(client_token, str) and (answer := client_tokens.answered(arn, client_token, token)) is not None:
            return _json(answer)
        answer = engine.checkpoint(arn, token, updates).model_dump(exclude_none=True)
        if isinstance(client_token, str):
            client_tokens.remember(arn, client_token, token, answer)
        return _json(answer)

    async def list_by_function(request: Request) -> Response:
        statuses = request.query_params.getlist("Statuses") or None
        return _json(service.list_executions(
            request.path_params["function"], request.query_params.get("DurableExecutionName"), statuses,
            _epoch_ms(request, "StartedAfter"), _epoch_ms(request, "StartedBefore"),
            _flag(request, "ReverseOrder", True), request.query_params.get("Marker"),
            _int(request, "MaxItems") or 100))

    async def stop(request: Request) -> Response:
        error = _error_object(await _json_body(request))
        return _json(service.stop_execution(request.path_params["arn"], error))

    async def callback_success(request: Request) -> Response:
        body = await _body(request)
        try:
            result = body.decode() if body else None
        except UnicodeDecodeError:
            raise InvalidParameterValueException("the callback result must be UTF-8 text") from None
        service.send_callback_success(request.path_params["callback_id"], result)
        return _json({})

    async def callback_failure(request: Request) -> Response:
        error = _error_object(await _json_body(request)) or ErrorObject()
        service.send_callback_failure(request.path_params["callback_id"], error)
        return _json({})

    async def callback_heartbeat(request: Request) -> Response:
        service.send_callback_heartbeat(request.path_params["callback_id"])
        return _json({})

    async def start(request: Request) -> Response:
        return await invoke(engine, request, await _body(request), sync_invoke_seconds)

    async def unknown(request: Request) -> Response:
        return _error("UnknownOperationException", f"no route for {request.method} {request.url.path}", 404)

    routes = [
        *dashboard_routes(engine, access_key),
        Route(f"{API}/durable-executions/{{arn:path}}/history", guarded(get_history), methods=["GET"]),
        Route(f"{API}/durable-executions/{{arn:path}}/state", guarded(get_state), methods=["GET"]),
        Route(f"{API}/durable-executions/{{arn:path}}/checkpoint", guarded(checkpoint), methods=["POST"]),
        Route(f"{API}/durable-executions/{{arn:path}}/stop", guarded(stop), methods=["POST"]),
        Route(f"{API}/durable-executions/{{arn:path}}", guarded(get_execution), methods=["GET"]),
        Route(f"{API}/functions/{{function}}/durable-executions", guarded(list_by_function), methods=["GET"]),
        Route(f"{API}/durable-execution-callbacks/{{callback_id}}/succeed", guarded(callback_success),
              methods=["POST"]),
        Route(f"{API}/durable-execution-callbacks/{{callback_id}}/fail", guarded(callback_failure), methods=["POST"]),
        Route(f"{API}/durable-execution-callbacks/{{callback_id}}/heartbeat", guarded(callback_heartbeat),
              methods=["POST"]),
        Route("/2015-03-31/functions/{function}/invocations", guarded(start), methods=["POST"]),
        Route("/{rest:path}", guarded(unknown), methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ]
    return Starlette(routes=routes)
