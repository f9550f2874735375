"""AWS's test-runner API (``aws_durable_execution_sdk_python_testing`` 1.4.0) on durably's engine.

A test written for AWS's ``DurableFunctionTestRunner`` runs on durably after changing its imports
(``from durably.testing import DurableFunctionTestRunner``, ``from durably import InvocationStatus``)::

    with DurableFunctionTestRunner(handler=handler) as runner:
        arn = runner.run_async(input='{"order": "A-1"}')
        runner.send_callback_success(runner.wait_for_callback(arn), b'"yes"')
        result = runner.wait_for_result(arn)
    assert result.status is InvocationStatus.SUCCEEDED   # or == "SUCCEEDED"
    assert result.get_step("price").result == "42"

Where it differs from AWS's runner, on purpose:

* Executions are driven in the calling thread, not on background threads: ``run_async`` returns
  once the execution has ended or waits for something only the test can give (a callback), and
  ``wait_for_callback`` / ``wait_for_result`` drive it further. A callback answered from another
  thread while ``run`` or ``wait_for_result`` blocks is noticed at once.
* ``execution_timeout`` bounds the wall time ``run`` waits (``TimeoutError`` after it); the
  execution itself gets the engine's own timeout, so skipped waits never time it out.
* Without ``execution_name`` an execution gets a fresh random name: durably's engine treats a
  name as an idempotency key (AWS's default is ``"execution-name"``).
* ``wait_for_callback(arn, name)`` also accepts the name of a ``wait_for_callback`` operation
  (AWS's needs its inner callback's, ``"<name> create callback id"``; both work here).
* ``store`` is a database path (a throwaway one by default); ``max_invocation_page_bytes`` and
  ``invocation_timeout`` are accepted and have no effect (the engine invokes in-process);
  ``account_id`` is accepted, the ARN keeps the engine's account. ``get_execution_history``
  answers the GetDurableExecutionHistory response shape, ``{"Events": [...]}`` with AWS's
  PascalCase keys. There is no ``pause_execution`` / ``resume_execution`` (experimental on AWS).
* Results keep durably's payloads: step and context results are durably's plain JSON, not the
  tagged envelope of AWS's ``ExtendedTypeSerDes``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from durably.core.engine.engine import TERMINAL
from durably.core.engine.errors import InvalidParameterValueException
from durably.core.execution import DurableFunction, durable_execution
from durably.core.model import ErrorObject, ExecutionStatus, InvocationStatus
from durably.core.serdes import dumps
from durably.core.testing import DurableTestRunner
from durably.core.testing_operations import (
    CallbackOperation,
    ContextOperation,
    DurableFunctionsTestError,
    ExecutionOperation,
    InvokeOperation,
    Operation,
    StepOperation,
    WaitOperation,
    create_operation,
    find_by_name,
)

__all__ = ["DurableChildContextTestRunner", "DurableFunctionTestResult", "DurableFunctionTestRunner"]

_CALLBACK_ENDS = frozenset({"CallbackSucceeded", "CallbackFailed", "CallbackTimedOut"})


@dataclass(frozen=True)
class DurableFunctionTestResult:
    """An ended execution: ``status`` (InvocationStatus), ``result`` (JSON text), ``error``, and its
    top-level ``operations``, each with its ``child_operations``."""

    status: InvocationStatus
    operations: list[Operation] = field(default_factory=list)
    result: str | None = None
    error: ErrorObject | None = None
    execution_status: ExecutionStatus | None = None

    def get_operation_by_name(self, name: str) -> Operation:
        return find_by_name(self.operations, name, Operation, "top-level")

    def get_step(self, name: str) -> StepOperation:
        return find_by_name(self.operations, name, StepOperation, "top-level")

    def get_wait(self, name: str) -> WaitOperation:
        return find_by_name(self.operations, name, WaitOperation, "top-level")

    def get_context(self, name: str) -> ContextOperation:
        return find_by_name(self.operations, name, ContextOperation, "top-level")

    def get_callback(self, name: str) -> CallbackOperation:
        return find_by_name(self.operations, name, CallbackOperation, "top-level")

    def get_invoke(self, name: str) -> InvokeOperation:
        return find_by_name(self.operations, name, InvokeOperation, "top-level")

    def get_execution(self, name: str) -> ExecutionOperation:
        return find_by_name(self.operations, name, ExecutionOperation, "top-level")

    def get_all_operations(self) -> list[Operation]:
        """Every operation, nested ones included (depth first)."""
        found: list[Operation] = []
        pending = list(reversed(self.operations))
        while pending:
            op = pending.pop()
            found.append(op)
            pending.extend(reversed(getattr(op, "child_operations", [])))
        return found


def _input_text(value: Any) -> str:
    """JSON text stays as it is; anything else (plain text, a dict) is encoded as JSON, as AWS's runner does."""
    if isinstance(value, str):
        try:
            json.loads(value)
            return value
        except ValueError:
            pass
    try:
        return dumps(value)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterValueException(f"the input cannot be encoded as JSON: {exc}") from exc


class DurableFunctionTestRunner:
    """Run a ``@durable_execution`` handler in-process, waits and retry delays skipped (``skip_time``)."""

    def __init__(self, handler: DurableFunction, poll_interval: float = 1.0,
                 max_invocation_page_bytes: int | None = None, execution_timeout: int = 300,
                 invocation_timeout: int = 900, store: str | Path | None = None, skip_time: bool = True,
                 region: str = "us-west-2") -> None:
        if not isinstance(handler, DurableFunction):
            raise InvalidParameterValueException("the handler must be decorated with @durable_execution")
        if poll_interval <= 0 or execution_timeout <= 0:
            raise InvalidParameterValueException("poll_interval and execution_timeout must be positive")
        self.poll_interval = poll_interval
        self._execution_timeout = execution_timeout
        self._runner = DurableTestRunner(handler, db=store, skip_time=skip_time, region=region)
        self.engine = self._runner.engine
        self._skip_time = skip_time

    def register_durable_function(self, function_name: str, handler: DurableFunction,
                                  execution_timeout: int | None = None,
                                  retention_period_days: int | None = None) -> DurableFunctionTestRunner:
        """Make ``handler`` the durable target of ``context.invoke(function_name, ...)``."""
        self.engine.register_durable_function(function_name, handler, execution_timeout, retention_period_days)
        return self

    def register_function(self, function_name: str, handler: Callable[..., Any]) -> DurableFunctionTestRunner:
        """Make a plain function the target of ``context.invoke(function_name, ...)``."""
        self.engine.register_function(function_name, handler)
        return self

    def run(self, input: Any = None, execution_timeout: int | None = None, timeout: int | None = None,
            function_name: str = "test-function", execution_name: str | None = None,
            account_id: str = "123456789012", tenant_id: str | None = None) -> DurableFunctionTestResult:
        """Start an execution and wait until it ends; ``TimeoutError`` after ``execution_timeout`` seconds."""
        limit = execution_timeout or timeout or self._execution_timeout
        began = time.monotonic()
        arn = self.run_async(input, limit, function_name=function_name, execution_name=execution_name,
                             account_id=account_id, tenant_id=tenant_id)
        return self.wait_for_result(arn, timeout=max(limit - (time.monotonic() - began), 0.001))

    def run_async(self, input: Any = None, execution_timeout: int | None = None, timeout: int | None = None,
                  function_name: str = "test-function", execution_name: str | None = None,
                  account_id: str = "123456789012", tenant_id: str | None = None) -> str:
        """Start an execution, drive it until it ends or waits on the test, and answer its ARN."""
        arn = self.engine.start_execution(self._runner.handler, _input_text(input), name=execution_name,
                                           function_name=function_name, input_is_json=True, tenant_id=tenant_id)
        self._drive(arn, execution_timeout or timeout or self._execution_timeout)
        return arn

    def wait_for_result(self, execution_arn: str, timeout: float = 60) -> DurableFunctionTestResult:
        """Drive ``execution_arn`` until it ends; ``TimeoutError`` if it has not within ``timeout`` seconds."""
        execution = self.engine.run_until_complete(execution_arn, timeout=timeout, skip_time=self._skip_time)
        if execution["Status"] not in TERMINAL:
            raise TimeoutError(f"Execution did not complete within timeout ({timeout} s): {execution_arn}")
        return self._result(execution_arn, execution)

    def wait_for_callback(self, execution_arn: str, name: str | None = None, timeout: float = 60) -> str:
        """The id of an open callback (called ``name``, else the latest) once the invocation that
        created it has ended; ``DurableFunctionsTestError`` if the named one already completed."""
        deadline = time.monotonic() + timeout
        while True:
            callback_id = self._open_callback(execution_arn, name)
            if callback_id is not None:
                return callback_id
            if time.monotonic() >= deadline:
                raise TimeoutError(f"Callback{' ' + repr(name) if name else ''} did not become available "
                                   f"within {timeout}s in {execution_arn}")
            self._drive(execution_arn, min(self.poll_interval, max(deadline - time.monotonic(), 0.001)))

    def send_callback_success(self, callback_id: str, result: bytes | str | None = None) -> None:
        self.engine.send_callback_success(callback_id, result)

    def send_callback_failure(self, callback_id: str, error: ErrorObject | None = None) -> None:
        self.engine.send_callback_failure(callback_id, error)

    def send_callback_heartbeat(self, callback_id: str) -> None:
        self.engine.send_callback_heartbeat(callback_id)

    def get_execution_history(self, execution_arn: str, include_execution_data: bool = False) -> dict[str, Any]:
        """The execution's events (``{"Events": [...]}``), payloads only with ``include_execution_data``."""
        return {"Events": self.engine.get_history(execution_arn, include_data=include_execution_data)}

    def close(self) -> None:
        self._runner.close()

    def __enter__(self) -> DurableFunctionTestRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _drive(self, arn: str, timeout: float) -> None:
        self.engine.run_until_complete(arn, timeout=timeout, skip_time=self._skip_time, stop_when_blocked=True)

    def _open_callback(self, arn: str, name: str | None) -> str | None:
        events = self.engine.get_history(arn)
        ended = {e.get("Id") for e in events if e["EventType"] in _CALLBACK_ENDS}
        waiters = {e.get("Id") for e in events if e["EventType"] == "ContextStarted"
                   and e.get("SubType") == "WaitForCallback" and e.get("Name") == name}
        candidates = []
        for index, event in enumerate(events):
            if event["EventType"] != "CallbackStarted":
                continue
            if name is not None and event.get("Name") != name and event.get("ParentId") not in waiters:
                continue
            if name is not None and event.get("Id") in ended:
                raise DurableFunctionsTestError(
                    f"Callback {name} has already completed (succeeded/failed/timed out)")
            settled = any(e["EventType"] == "InvocationCompleted" for e in events[index + 1:])
            if event.get("Id") not in ended and settled:
                candidates.append(str(event["CallbackStartedDetails"]["CallbackId"]))
        return candidates[-1] if candidates else None

    def _result(self, arn: str, execution: dict[str, Any]) -> DurableFunctionTestResult:
        operations = self.engine.service.all_operations(arn)
        error = execution.get("Error")
        status = execution["Status"]
        return DurableFunctionTestResult(
            status=InvocationStatus.SUCCEEDED if status == "SUCCEEDED" else InvocationStatus.FAILED,
            operations=[create_operation(op, operations) for op in operations
                        if op.ParentId is None and op.Type != "EXECUTION"],
            result=execution.get("Result"),
            error=ErrorObject.model_validate(error) if error else None,
            execution_status=ExecutionStatus(status),
        )


class DurableChildContextTestRunner(DurableFunctionTestRunner):
    """Test a ``@durable_with_child_context`` function on its own: ``DurableChildContextTestRunner(fn, *args)``."""

    def __init__(self, context_function: Callable[..., Callable[..., Any]], *args: Any, skip_time: bool = True,
                 **kwargs: Any) -> None:
        @durable_execution
        def handler(event: Any, context: Any) -> Any:
            return context_function(*args, **kwargs)(context)

        super().__init__(handler, skip_time=skip_time)
