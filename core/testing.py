"""An in-process test runner with time skipping.

Waits and retry delays take no wall time: when nothing can run, the runner's clock jumps to the
next wait end or retry. Callback timeouts are not skipped on their own (the test decides when to
answer, or calls :meth:`DurableTestRunner.advance_time`). Operations are looked up by name.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from durably.core.engine.clock import SkippingClock
from durably.core.engine.engine import Engine
from durably.core.execution import DurableFunction
from durably.core.model import ErrorObject, Operation


@dataclass
class TestResult:
    """The state of an execution after the runner stopped driving it."""

    __test__ = False

    arn: str
    status: str
    result: str | None
    error: ErrorObject | None
    operations: list[Operation]
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def value(self) -> Any:
        """The result parsed from JSON (None when there is none)."""
        return None if self.result is None else json.loads(self.result)

    def get_operations(self, name: str, type: str | None = None, parent: str | None = None) -> list[Operation]:
        """Every operation called ``name`` (of ``type``; directly inside an operation called
        ``parent``, if given), in start order; possibly none."""
        parents = None if parent is None else {op.Id for op in self.operations if op.Name == parent}
        return [op for op in self.operations if op.Name == name and (type is None or op.Type == type)
                and (parents is None or op.ParentId in parents)]

    def get_operation(self, name: str, type: str | None = None, parent: str | None = None) -> Operation:
        """The one operation called ``name`` (see :meth:`get_operations`); KeyError if none, or if
        several share the name (then pick with ``parent=`` or use :meth:`get_operations`)."""
        found = self.get_operations(name, type, parent)
        if len(found) == 1:
            return found[0]
        kind = (type or "operation").lower().replace("_", " ")
        where = f" named {name!r}" + (f" in {parent!r}" if parent else "")
        if found:
            raise KeyError(f"{len(found)} {kind}s{where} (ids {', '.join(op.Id[:12] for op in found)}): "
                           "use get_operations() for all of them, or parent= to pick one")
        known = sorted({op.Name for op in self.operations if op.Name})
        raise KeyError(f"no {kind}{where}; named operations: {known}")

    def get_step(self, name: str, parent: str | None = None) -> Operation:
        return self.get_operation(name, "STEP", parent)

    def get_wait(self, name: str, parent: str | None = None) -> Operation:
        return self.get_operation(name, "WAIT", parent)

    def get_context(self, name: str, parent: str | None = None) -> Operation:
        return self.get_operation(name, "CONTEXT", parent)

    def get_callback(self, name: str, parent: str | None = None) -> Operation:
        return self.get_operation(name, "CALLBACK", parent)

    def get_invoke(self, name: str, parent: str | None = None) -> Operation:
        return self.get_operation(name, "CHAINED_INVOKE", parent)

    def events(self, event_type: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.history if (event_type is None or e["EventType"] == event_type)
                and (name is None or e.get("Name") == name)]


class DurableTestRunner:
    """Run a durable handler to completion in-process, on a throwaway database.

    ``with DurableTestRunner(handler) as runner: result = runner.run({"x": 1})``
    """

    __test__ = False

    def __init__(self, handler: DurableFunction | None = None, *, db: str | Path | None = None,
                 skip_time: bool = True, region: str = "us-east-1") -> None:
        self._tmp = None if db is not None else tempfile.mkdtemp(prefix="durably-test-")
        path = db if db is not None else Path(self._tmp or ".") / "test.db"
        self.skip_time = skip_time
        self.engine = Engine(path, synchronous="OFF", region=region, clock=SkippingClock() if skip_time else None)
        self.handler = handler

    def register_durable_function(self, name: str, handler: DurableFunction, **kwargs: Any) -> None:
        self.engine.register_durable_function(name, handler, **kwargs)

    def register_function(self, name: str, fn: Any) -> None:
        self.engine.register_function(name, fn)

    def run(self, input: Any = None, *, name: str | None = None, timeout: float = 60) -> TestResult:
        """Start an execution and drive it until it ends or only an outside event can move it."""
        return self.resume(self.run_async(input, name=name), timeout=timeout)

    def run_async(self, input: Any = None, *, name: str | None = None) -> str:
        """Start an execution without driving it; answer its ARN."""
        if self.handler is None:
            raise ValueError("this runner has no handler; pass one to DurableTestRunner(...)")
        return self.engine.start_execution(self.handler, input, name=name)

    def resume(self, arn: str, *, timeout: float = 60) -> TestResult:
        """Drive ``arn`` again (after a callback was answered, or time was advanced)."""
        self.engine.run_until_complete(arn, timeout=timeout, skip_time=self.skip_time,
                                       stop_when_blocked=True)
        return self.result(arn)

    def result(self, arn: str) -> TestResult:
        execution = self.engine.get_execution(arn)
        error = execution.get("Error")
        return TestResult(
            arn=arn, status=execution["Status"], result=execution.get("Result"),
            error=ErrorObject.model_validate(error) if error else None,
            operations=[op for op in self.engine.service.all_operations(arn) if op.Type != "EXECUTION"],
            history=self.engine.get_history(arn),
        )

    def callback_id(self, arn: str, name: str | None = None) -> str:
        """The id of the latest callback started, called ``name`` if given.

        For ``wait_for_callback(..., name="x")`` the name is the operation's, ``"x"``.
        """
        waiters = {op.Id for op in self.engine.service.all_operations(arn)
                   if op.Type == "CONTEXT" and op.SubType == "WaitForCallback" and op.Name == name}
        for event in reversed(self.engine.get_history(arn)):
            if event["EventType"] == "CallbackStarted" and (
                    name is None or event.get("Name") == name or event.get("ParentId") in waiters):
                return str(event["CallbackStartedDetails"]["CallbackId"])
        raise KeyError(f"no callback{' named ' + repr(name) if name else ''} started in {arn}")

    def send_callback_success(self, callback_id: str, result: str | bytes | None = None) -> None:
        self.engine.send_callback_success(callback_id, result)

    def send_callback_failure(self, callback_id: str, error: ErrorObject | None = None) -> None:
        self.engine.send_callback_failure(callback_id, error)

    def send_callback_heartbeat(self, callback_id: str) -> None:
        self.engine.send_callback_heartbeat(callback_id)

    def advance_time(self, seconds: float) -> None:
        """Move the clock forward; timers that fall due fire on the next :meth:`resume`."""
        self.engine.advance_time(seconds)

    def close(self) -> None:
        self.engine.close()
        self.engine.store.close()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> DurableTestRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
