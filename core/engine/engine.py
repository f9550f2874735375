"""The embedded engine: the service API, function resolution, and the workers that invoke handlers.

Use it in-process (``Engine(db).run(handler, input)``) or as a long-running worker
(``Engine(db).serve()``). Several engines (threads or processes) may share one database: an
execution is advanced by one invocation at a time, fenced by its checkpoint token, and the
invocation of a worker that died is taken over and recorded as crashed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from durably.core.engine import code_versions, functions, lambda_contract
from durably.core.engine.backoff import RepeatedErrors, capped_delay
from durably.core.engine.clock import Clock, SkippingClock
from durably.core.engine.errors import (
    HandlerImportError,
    InvalidParameterValueException,
    ResourceNotFoundException,
    ServiceError,
)
from durably.core.engine.execution_logs import ExecutionLogs
from durably.core.engine.functions import FunctionSpec
from durably.core.engine.service import Claim, Service, Takeover
from durably.core.engine.stores import open_store
from durably.core.engine.version_worker import VersionWorkers, WorkerExited
from durably.core.errors import CheckpointError, GetExecutionStateError
from durably.core.execution import DurableFunction, InvocationInput
from durably.core.model import (
    CheckpointResponse,
    ErrorObject,
    ExecutionState,
    InvocationStatus,
    OperationUpdate,
)
from durably.core.serdes import dumps

DEFAULT_DB = Path(".durably") / "durably.db"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"})
POLL_SECONDS = 0.05
LISTENING_POLL_SECONDS = 1.0
"""The poll's period when the database tells of new work (PostgreSQL's notifications): a safety net."""
SKIPPABLE_TIMERS = ("wait", "retry", "reinvoke")
TAKEOVER_SECONDS = 0.5
"""How often a worker looks for dead workers' invocations."""
IMPORT_RETRY_FIRST, IMPORT_RETRY_CAP = 1.0, 60.0
"""Backoff (seconds) before this worker tries again a function it could not import."""
STORAGE_RETRY_FIRST, STORAGE_RETRY_CAP = 1.0, 30.0
"""Backoff (seconds) before invoking again an execution whose invocation the database failed."""
GAVE_BACK = "without running: the handler cannot be imported here"
RECORD_RETRIES = (0.0, 0.1, 0.5)
"""Pauses before each try to record the end of an invocation."""

log = logging.getLogger("durably.engine")


def default_db_path() -> str:
    return os.environ.get("DURABLY_DB") or str(DEFAULT_DB)


class EngineBackend:
    """The runtime's :class:`~durably.core.backend.Backend` over this engine, in-process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def checkpoint(self, arn: str, token: str, updates: list[OperationUpdate]) -> CheckpointResponse:
        try:
            response = self.engine.checkpoint(arn, token, updates)
        except ServiceError as exc:
            raise CheckpointError(f"{exc.code}: {exc}") from exc
        if any(u.Action == "RETRY" for u in updates):
            _log_retries(arn, updates, response)
        return response

    def get_state(self, arn: str, token: str, marker: str | None) -> ExecutionState:
        try:
            return self.engine.service.get_state(arn, token, marker)
        except ServiceError as exc:
            raise GetExecutionStateError(f"{exc.code}: {exc}") from exc


class Engine:
    """An embedded durable execution engine over one database: an SQLite file (the default) or a
    PostgreSQL URL (``postgresql://...``) that engines on many machines share."""

    def __init__(self, db: str | Path | None = None, *, synchronous: str = "FULL", region: str = "us-east-1",
                 clock: Clock | None = None, workers: int = 4, lease_seconds: int = 60,
                 invoke_through_lambda: bool = False) -> None:
        self.store = open_store(db if db is not None else default_db_path(), synchronous)
        self.clock = clock or Clock()
        self.service = Service(self.store, self.clock, region)
        self.backend = EngineBackend(self)
        self.invoke_through_lambda = invoke_through_lambda
        """Invoke durably handlers too through the Lambda invocation contract (``lambda_contract``), as
        Lambda does, their checkpoints going over the Lambda API; AWS SDK handlers always are."""
        self.workers = workers
        self.lease_ms = lease_seconds * 1000
        self._functions: dict[str, FunctionSpec] = {}
        self._running: set[str] = set()
        self._running_lock = threading.Lock()
        self._wake = threading.Event()
        self._poll_seconds = POLL_SECONDS
        """How long the scheduler sleeps at most when nothing is ready (longer when the store tells of work)."""
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pool: ThreadPoolExecutor | None = None
        self._renewer: threading.Thread | None = None
        self.logs = ExecutionLogs(self.store, self.clock, lambda: self._running)
        """The handlers' log records, kept with their executions (``service.get_logs``)."""
        self._unimportable: dict[str, tuple[float, int]] = {}
        """Functions this engine could not import: when to try again, and how many tries failed."""
        self._last_takeover = self._last_purge = 0.0
        self._storage_failures = 0
        """Invocations in a row that the database failed (a full disk, a lost file)."""
        self.isolate_versions = True
        """Run invocations of published versions in processes of their own (``version_worker``)."""
        self._versions: VersionWorkers | None = None
        for spec in functions.registered().values():
            self._add(spec)

    # ------------------------------------------------------------------ functions
    def _add(self, spec: FunctionSpec) -> FunctionSpec:
        self._functions[spec.name] = spec
        self.service.save_function(spec)
        return spec

    def register_durable_function(self, name: str, handler: Any, execution_timeout: int | None = None,
                                  retention_period_days: int | None = None) -> FunctionSpec:
        """Make ``handler`` runnable and invokable as ``name`` on this engine."""
        return self._add(functions.durable_spec(name, handler, execution_timeout, retention_period_days))

    def delete_function(self, name: str) -> dict[str, Any]:
        """Delete a function, its versions, aliases and closed executions (``Service.delete_function``)."""
        deleted = self.service.delete_function(name)
        self._functions.pop(name, None)
        return deleted

    def register_function(self, name: str, fn: Callable[..., Any]) -> FunctionSpec:
        """Make a plain function invokable as ``name`` on this engine."""
        return self._add(functions.plain_spec(name, fn))

    def resolve(self, name: str) -> FunctionSpec | None:
        """A published version (``name:version``, ``name:alias``), a registered name (also ``name:$LATEST``),
        then an import reference; None if none."""
        try:
            versioned = self.published_spec(name)
        except ResourceNotFoundException:
            return None
        if versioned is not None:
            return versioned
        for candidate in (name, name.split(":")[0]):
            spec = self._functions.get(candidate) or functions.registered().get(candidate)
            if spec is not None:
                return spec
            stored = self.service.stored_function(candidate)
            if stored is not None:
                return stored
        if ":" in name:
            try:
                obj = functions.load_reference(name)
            except HandlerImportError:
                return None
            ref = functions.absolute_reference(name)
            return functions.spec_for_object(functions.name_from_reference(name), obj, ref)
        return None

    def _spec_for(self, handler: Any, function_name: str | None) -> FunctionSpec:
        """The function to start: a DurableFunction, a registered name, or a MODULE:FUNCTION reference."""
        if isinstance(handler, DurableFunction) or lambda_contract.is_aws_sdk_handler(handler):
            ref = functions.ref_of(handler)
            name = function_name or functions.check_name(getattr(handler.func, "__name__", "handler"))
            existing = self._functions.get(name)
            if existing is not None and existing.obj is handler:
                return existing
            if existing is not None and existing.obj is not None:
                if function_name:
                    raise InvalidParameterValueException(
                        f"function name {name!r} is already used by another handler in this engine")
                # Two handlers share a __name__: tell them apart, stably when the code is importable.
                salt = ref or str(id(handler))
                name = f"{name[:50]}-{hashlib.blake2b(salt.encode(), digest_size=4).hexdigest()}"
                existing = self._functions.get(name)
                if existing is not None and existing.obj is handler:
                    return existing
            return self._add(FunctionSpec(name, True, ref, obj=handler))
        if not isinstance(handler, str):
            raise InvalidParameterValueException("the handler must be decorated with @durable_execution")
        versioned = self.published_spec(handler)
        if versioned is not None:
            if function_name and function_name != versioned.name:
                raise InvalidParameterValueException(
                    f"{handler!r} is a published version of {versioned.name!r}: it runs under that name only")
            return versioned
        if handler.endswith(":" + code_versions.LATEST):  # NAME:$LATEST is NAME
            handler = handler[:-len(code_versions.LATEST) - 1]
        spec = (self._functions.get(handler) or functions.registered().get(handler)
                or self.service.stored_function(handler))
        if spec is None:
            if ":" not in handler:
                raise ResourceNotFoundException(f"no function {handler!r}: register it or pass MODULE:FUNCTION")
            obj = functions.load_reference(handler)
            if not (isinstance(obj, DurableFunction) or lambda_contract.is_aws_sdk_handler(obj)):
                raise HandlerImportError(f"{handler!r} is not decorated with @durable_execution")
            spec = FunctionSpec(functions.name_from_reference(handler), True,
                                functions.absolute_reference(handler), obj=obj)
        if function_name and function_name != spec.name:
            spec = FunctionSpec(functions.check_name(function_name), spec.durable, spec.ref,
                                spec.execution_timeout, spec.retention_days, spec.obj)
        if not spec.durable:
            raise InvalidParameterValueException(
                f"{spec.name!r} is a plain function; only durable functions start executions")
        return self._add(spec) if spec.obj is not None else spec

    def published_spec(self, handler: str) -> FunctionSpec | None:
        """For ``NAME:VERSION`` or ``NAME:ALIAS`` of a function with published versions: what it runs; else None.

        ``NAME:$LATEST`` and names without versions are left to the other forms (a name, a reference)."""
        name, sep, qualifier = handler.partition(":")
        if not sep or qualifier == code_versions.LATEST or not functions.FUNCTION_NAME.match(name):
            return None
        if not self.service.has_versions(name):
            if qualifier.isdigit():
                raise ResourceNotFoundException(
                    f"no function {name!r} with published versions (durably publish-version)")
            return None
        version, ref = self.service.resolve_version(name, qualifier)
        stored = self.service.stored_function(name) or FunctionSpec(name, True, None)
        return FunctionSpec(name, True, ref, stored.execution_timeout, stored.retention_days, version=version)

    def _load(self, claim: Claim) -> Any:
        spec = self._functions.get(claim.function_name) or functions.registered().get(claim.function_name)
        if spec is not None and spec.obj is not None:
            return spec.obj
        if claim.ref is None:
            raise HandlerImportError(
                f"function {claim.function_name!r} was registered in another process and has no importable "
                "reference; register it in this process too")
        return functions.load_reference(claim.ref)

    # ------------------------------------------------------------------ service API
    def start_execution(self, handler: Any, input: Any = None, *, name: str | None = None,
                        function_name: str | None = None, input_is_json: bool = False,
                        trace_context: str | None = None, tenant_id: str | None = None) -> str:
        """Start an execution of ``handler`` (a durable function, a registered name or a reference).

        ``input`` is a Python value, or JSON text when ``input_is_json``. Starting again with the
        same ``name`` and input returns the same execution. ``trace_context``: the caller's W3C
        ``traceparent``; with tracing on, the execution's trace is then a child of the caller's.
        ``tenant_id`` is recorded with the execution (as Lambda's tenant isolation).
        """
        spec = self._spec_for(handler, function_name)
        if input_is_json:
            try:
                json.loads(input)
            except (TypeError, ValueError) as exc:
                raise InvalidParameterValueException(f"the input is not JSON: {exc}") from exc
            text = input
        else:
            try:
                text = dumps(input)
            except (TypeError, ValueError) as exc:
                raise InvalidParameterValueException(f"the input cannot be stored as JSON: {exc}") from exc
        _check_execution_name(name)
        code = code_versions.code_sha256(spec.ref) if spec.version == code_versions.LATEST else None
        arn, _ = self.service.start_execution(spec, text, name, tenant_id=tenant_id, trace_header=trace_context,
                                              code_sha256=code)
        self._wake.set()
        return arn

    def redrive(self, arn: str, *, from_operation: str | None = None, name: str | None = None) -> str:
        """Start a new execution that recovers the FAILED, TIMED_OUT or STOPPED execution ``arn`` once
        the cause is fixed; answer its ARN.

        Same function, handler reference and input; it keeps the original's operations that
        completed before the failure (which ones: :mod:`durably.core.engine.redrive`), which replay
        from their results without running again, and runs the rest on the current code.
        ``from_operation``: redrive from the first operation of that name instead (keeping only what
        ended before it started). ``name``: the new execution's (default ``<original>-redrive-<n>``).
        The original is left as it is; the new one's ``RedriveOf`` names it.
        """
        _check_execution_name(name)
        new_arn = self.service.redrive_execution(arn, from_operation, name)
        self._wake.set()
        return new_arn

    def get_execution(self, arn: str) -> dict[str, Any]:
        return self.service.get_execution(arn)

    def checkpoint(self, arn: str, token: str, updates: list[OperationUpdate]) -> CheckpointResponse:
        """Apply a checkpoint, with the functions its chained invokes name resolved in this engine."""
        targets = {u.ChainedInvokeOptions.FunctionName: self.resolve(u.ChainedInvokeOptions.FunctionName)
                   for u in updates if u.ChainedInvokeOptions is not None}
        return self.service.checkpoint(arn, token, updates, targets)

    def get_history(self, arn: str, *, include_data: bool = True) -> list[dict[str, Any]]:
        """Every event of an execution, in order (all pages); payloads left out unless ``include_data``."""
        events: list[dict[str, Any]] = []
        marker = None
        while True:
            page = self.service.get_history(arn, marker, include_data=include_data)
            events.extend(page["Events"])
            marker = page.get("NextMarker")
            if not marker:
                return events

    def list_executions(self, **filters: Any) -> dict[str, Any]:
        return self.service.list_executions(**filters)

    def stop_execution(self, arn: str, error: ErrorObject | None = None) -> dict[str, Any]:
        out = self.service.stop_execution(arn, error)
        self._wake.set()
        return out

    def send_callback_success(self, callback_id: str, result: str | bytes | None = None) -> None:
        if isinstance(result, bytes):
            try:
                result = result.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidParameterValueException(f"the callback result is not UTF-8: {exc}") from exc
        self.service.send_callback_success(callback_id, result)
        self._wake.set()

    def send_callback_failure(self, callback_id: str, error: ErrorObject | None = None) -> None:
        self.service.send_callback_failure(callback_id, error or ErrorObject())
        self._wake.set()

    def send_callback_heartbeat(self, callback_id: str) -> None:
        self.service.send_callback_heartbeat(callback_id)

    # ------------------------------------------------------------------ invocations
    def _invoke(self, claim: Claim) -> str:
        """Run one claimed invocation and record its end; answer how it ended; nothing it raises escapes.

        If its end cannot be recorded even after retries (a full disk, a lost database), the lease
        is no longer renewed: once it expires, this engine or another records the invocation as
        crashed and invokes the execution again.
        """
        with self._running_lock:
            self._running.add(claim.arn)
            if self._renewer is None or not self._renewer.is_alive():
                self._renewer = threading.Thread(target=self._renew_leases, name="durably-leases", daemon=True)
                self._renewer.start()
        began = time.monotonic()
        fields = {"executionArn": claim.arn}
        log.info("invoking %s", claim.arn, extra=fields)
        ended = "unexpectedly"
        try:
            ended = self._invoke_claimed(claim)
            log.info("invocation of %s ended %s in %.0f ms", claim.arn, ended, (time.monotonic() - began) * 1000,
                     extra=fields)
        except Exception as exc:
            log.error("invocation of %s failed unexpectedly: %s: %s; its lease will expire and the execution "
                      "will be invoked again", claim.arn, type(exc).__name__, exc, exc_info=exc, extra=fields)
        finally:
            try:
                self.logs.flush()
            except Exception as exc:  # the records are lost; the invocation is not
                log.error("the log records of %s could not be kept: %s", claim.arn, exc, extra=fields)
            with self._running_lock:
                self._running.discard(claim.arn)
            self._wake.set()
        return ended

    def _invoke_claimed(self, claim: Claim) -> str:
        """Run the invocation and record its end; answer how it ended, for the log."""
        if self.isolate_versions and code_versions.qualifier_of(claim.arn) != code_versions.LATEST:
            return self._invoke_version(claim)
        try:
            target = self._load(claim)
            through_lambda = claim.durable and (self.invoke_through_lambda or not isinstance(target, DurableFunction))
            runnable = isinstance(target, DurableFunction) or lambda_contract.is_aws_sdk_handler(target)
            if claim.durable and not runnable:
                raise HandlerImportError(f"{claim.ref} is not a @durable_execution handler")
            if through_lambda:
                lambda_contract.check_endpoint(claim.function_name)
        except HandlerImportError as exc:
            return self._give_back(claim, exc)
        self._unimportable.pop(claim.function_name, None)
        if not claim.durable:
            return self._run_plain(claim, target)
        try:
            if through_lambda:
                output = lambda_contract.invoke(target, self.service, claim)
            else:
                operations = self.service.invocation_records(claim.arn, claim.token)
                inv = InvocationInput(claim.arn, claim.token, operations, None, claim.updated_ids,
                                      trace_header=claim.trace_header)
                output = target.invoke(inv, self.backend)
        except Exception as exc:  # transient (InvocationError) or a defect: invoked again, then failed
            error = ErrorObject.from_exception(exc)
            if _storage_failure(exc, self.store.failures):  # the engine's fault: not counted, backed off
                self._storage_failures += 1
                delay = capped_delay(self._storage_failures, STORAGE_RETRY_FIRST, STORAGE_RETRY_CAP)
                log.error("invocation of %s stopped: the database failed (%s); invoking it again in %g s",
                          claim.arn, error.ErrorMessage, delay, extra={"executionArn": claim.arn})
                self._record(claim, lambda: self.service.complete_invocation(
                    claim, None, error, retry_delay_ms=int(delay * 1000), counted=False))
                return "with a database error"
            log.error("invocation of %s failed: %s: %s", claim.arn, error.ErrorType, error.ErrorMessage,
                      extra={"executionArn": claim.arn})
            self._record(claim, lambda: self.service.complete_invocation(claim, None, error))
            return "with an invocation error"
        self._storage_failures = 0
        self._record(claim, lambda: self.service.complete_invocation(claim, output))
        return InvocationStatus(output.Status).value

    def _invoke_version(self, claim: Claim) -> str:
        """Run an invocation of a published version in a process of that version's (its code isolated)."""
        if self._versions is None:
            self._versions = VersionWorkers(self.store, self.service.owner, self.lease_ms)
        try:
            ended = self._versions.invoke(claim)
        except HandlerImportError as exc:  # its code could not be unpacked here
            return self._give_back(claim, exc)
        except WorkerExited as exc:
            log.error("%s; recorded as crashed", exc, extra={"executionArn": claim.arn})
            crash = ErrorObject(ErrorType="Runtime.ExitError", ErrorMessage=str(exc))
            self._record(claim, lambda: self.service.complete_invocation(claim, None, crash, retry_delay_ms=0))
            return "with its worker process exiting"
        if ended == GAVE_BACK:  # the child gave it back: this engine, too, leaves the function alone a while
            self._pause(claim.function_name)
        else:
            self._unimportable.pop(claim.function_name, None)
        return ended

    def _give_back(self, claim: Claim, exc: HandlerImportError) -> str:
        """This worker cannot import the handler: a deployment problem, not the execution's fault.

        The execution is released at once for any other worker (nothing counts against it), and
        this worker leaves the function alone for a capped, growing pause before it tries again.
        """
        delay = self._pause(claim.function_name)
        log.error("cannot run %s: %s; released for other workers, this worker tries function %s again in %g s",
                  claim.arn, exc, claim.function_name, delay, extra={"executionArn": claim.arn})
        problem = ErrorObject(ErrorType=exc.code, ErrorMessage=str(exc)).bounded()
        self._record(claim, lambda: self.service.release(claim, problem))
        return GAVE_BACK

    def _pause(self, function_name: str) -> float:
        """Leave ``function_name`` alone for a growing pause (answered, in seconds)."""
        failures = self._unimportable.get(function_name, (0.0, 0))[1] + 1
        delay = capped_delay(failures, IMPORT_RETRY_FIRST, IMPORT_RETRY_CAP)
        self._unimportable[function_name] = (time.monotonic() + delay, failures)
        return delay

    def _skipped_functions(self) -> list[str]:
        now = time.monotonic()
        return [name for name, (retry_at, _) in list(self._unimportable.items()) if retry_at > now]

    def _record(self, claim: Claim, write: Callable[[], object]) -> None:
        """Record an invocation's end, retrying a failed write a few times before giving up."""
        for pause in RECORD_RETRIES:
            time.sleep(pause)
            try:
                write()
                return
            except Exception as exc:
                error = exc
                log.warning("recording the end of the invocation of %s failed: %s: %s", claim.arn,
                            type(exc).__name__, exc, extra={"executionArn": claim.arn})
        raise error

    def _run_plain(self, claim: Claim, fn: Any) -> str:
        try:
            payload = json.loads(claim.input) if claim.input else None
            value = fn(payload)
            result = dumps(value)
        except Exception as exc:
            error = ErrorObject.from_exception(exc)
            self._record(claim, lambda: self.service.finish_plain(claim, None, error))
            return "FAILED"
        self._record(claim, lambda: self.service.finish_plain(claim, result, None))
        return "SUCCEEDED"

    def _take_over(self) -> None:
        """Record dead workers' invocations (and this engine's own unrecorded ones) as crashed."""
        with self._running_lock:
            running = set(self._running)
        for takeover in self.service.take_over_dead(running):
            _log_takeover(takeover)
        self._last_takeover = time.monotonic()

    def step_once(self) -> bool:
        """Fire due timers, take over dead workers' invocations, run one invocation. True if it did work."""
        fired = self.service.fire_due_timers()
        claim = self.service.claim(self.lease_ms, skip_functions=self._skipped_functions())
        if claim is not None:
            self._invoke(claim)
            return True
        return fired > 0

    def run_until_complete(self, arn: str, *, timeout: float | None = None, skip_time: bool = False,
                           stop_when_blocked: bool = False) -> dict[str, Any]:
        """Drive executions in this thread until ``arn`` ends (or, with ``stop_when_blocked``, until
        nothing but an outside event can move it). ``skip_time`` jumps over waits and retry delays."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if time.monotonic() - self._last_takeover > TAKEOVER_SECONDS:
                self._take_over()
            if self.step_once():
                continue
            execution = self.service.get_execution(arn)
            if execution["Status"] in TERMINAL:
                return execution
            if skip_time and self._skip_ahead():
                continue
            if stop_when_blocked and (skip_time or not self.service.has_timers(arn)):
                return execution
            if deadline is not None and time.monotonic() > deadline:
                return execution
            due = self.service.next_due()
            self._wake.clear()
            self.clock.sleep_until(due if due is not None else self.clock.now_ms() + 1000, self._wake, POLL_SECONDS)

    def run_until_suspended(self, arn: str) -> dict[str, Any]:
        """Run one invocation of ``arn`` in this thread, if it needs one, and answer its state:
        ended, or RUNNING (suspended on a wait, retry, callback or invoke; or leased elsewhere)."""
        self.service.fire_due_timers()
        claim = self.service.claim(self.lease_ms, arn=arn, skip_functions=self._skipped_functions())
        if claim is not None:
            self._invoke(claim)
        return self.service.get_execution(arn)

    def _skip_ahead(self) -> bool:
        """With a skipping clock: jump to the next timer if a wait/retry is pending. False if none."""
        if not isinstance(self.clock, SkippingClock):
            return False
        due = self.service.next_due(SKIPPABLE_TIMERS)
        if due is None:
            return False
        first = self.service.next_due()
        self.clock.advance_to(min(due, first if first is not None else due))
        return True

    def advance_time(self, seconds: float) -> None:
        """Move a skipping clock forward (fires callback timeouts in tests)."""
        if not isinstance(self.clock, SkippingClock):
            raise InvalidParameterValueException("advance_time needs an engine built with a SkippingClock")
        self.clock.offset_ms += int(seconds * 1000)

    # ------------------------------------------------------------------ background workers
    def start(self) -> Engine:
        """Run the scheduler and ``workers`` invocation threads in the background."""
        if self._threads:
            return self
        self._stop.clear()
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="durably-worker")
        if self.store.on_work(self._wake.set):
            self._poll_seconds = LISTENING_POLL_SECONDS
        self._threads = [threading.Thread(target=self._schedule, name="durably-scheduler", daemon=True)]
        for t in self._threads:
            t.start()
        return self

    def _schedule(self) -> None:
        errors = RepeatedErrors(log, "the scheduler")
        while not self._stop.is_set():
            try:
                self._schedule_once()
            except Exception as exc:  # the database may be gone or the disk dead: back off, say so
                self._stop.wait(errors.failed(exc))
            else:
                errors.succeeded()

    def _schedule_once(self) -> None:
        """Fire due timers, take over dead workers, dispatch what is ready, or sleep until due."""
        assert self._pool is not None
        self._wake.clear()  # a wake-up from now on (new work, here or elsewhere) cuts the sleep below short
        now = time.monotonic()
        if now - self._last_takeover > TAKEOVER_SECONDS:
            self.store.check()
            self._take_over()
        if now - self._last_purge > 60:
            self.service.purge_expired()
            self._last_purge = now
        self.service.fire_due_timers()
        dispatched = False
        while len(self._running) < self.workers and not self._stop.is_set():
            claim = self.service.claim(self.lease_ms, skip_functions=self._skipped_functions())
            if claim is None:
                break
            with self._running_lock:
                self._running.add(claim.arn)
            self._pool.submit(self._invoke, claim)
            dispatched = True
        if dispatched:
            return
        due = self.service.next_due()
        if not self._stop.is_set():
            self.clock.sleep_until(due if due is not None else self.clock.now_ms() + 1000, self._wake,
                                   self._poll_seconds)

    def _renew_leases(self) -> None:
        """Keep the leases of this engine's running invocations alive while any are running.

        It goes on during a graceful shutdown, so no other worker takes over a step that is still
        running here; it ends when the last invocation has.
        """
        errors = RepeatedErrors(log, "renewing leases", log_every=self.lease_ms / 1000)
        while True:
            time.sleep(self.lease_ms / 3000)
            with self._running_lock:
                running = list(self._running)
                if not running:
                    self._renewer = None
                    return
            try:
                self.service.renew_leases(running, self.lease_ms)
            except Exception as exc:
                errors.failed(exc)
            else:
                errors.succeeded()

    def running(self) -> list[str]:
        """The ARNs of the invocations running in this engine now."""
        with self._running_lock:
            return sorted(self._running)

    def wait_for(self, arn: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until ``arn`` ends (background workers must be running)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            execution = self.service.get_execution(arn)
            if execution["Status"] in TERMINAL:
                return execution
            if deadline is not None and time.monotonic() > deadline:
                return execution
            time.sleep(0.01)

    def serve(self) -> None:
        """Run the workers until interrupted."""
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.close()

    def close(self) -> None:
        """Stop claiming work and wait for the running invocations to end, their leases renewed.

        An interrupt (``KeyboardInterrupt``) while it waits cuts the wait short; the invocations
        then go on in their threads until the process exits, and their leases expire.
        """
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=5)
        self._threads = []
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True)
        if self._versions is not None:
            self._versions.close()
        self.logs.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_execution_name(name: str | None) -> None:
    if name is not None and not functions.FUNCTION_NAME.match(name):
        raise InvalidParameterValueException(f"execution name {name!r} must match [A-Za-z0-9_-]{{1,64}}")


def _storage_failure(exc: BaseException, failures: tuple[type[BaseException], ...]) -> bool:
    """Whether ``exc`` comes from the database failing (one of the store's ``failures``, anywhere in its
    chain of causes)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, failures):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _log_takeover(takeover: Takeover) -> None:
    log.warning("took over %s from worker %s: %s", takeover.arn, takeover.owner, takeover.reason,
                extra={"executionArn": takeover.arn})


def _log_retries(arn: str, updates: list[OperationUpdate], response: CheckpointResponse) -> None:
    """Log each step retry of a checkpoint: which step, which attempt, the error, and the delay."""
    ops = {op.Id: op for op in response.NewExecutionState.Operations}
    for u in updates:
        if u.Action != "RETRY" or u.StepOptions is None:
            continue
        op = ops.get(u.Id)
        attempt = op.StepDetails.Attempt if op is not None and op.StepDetails else "?"
        error = f"{u.Error.ErrorType}: {u.Error.ErrorMessage}" if u.Error else "asked to retry"
        log.info("step %r of %s failed attempt %s (%s); retrying in %d s", u.Name or u.Id, arn, attempt, error,
                 u.StepOptions.NextAttemptDelaySeconds, extra={"executionArn": arn, "operationId": u.Id,
                                                               "operationName": u.Name})
