"""Run a conformance requirement on durably's embedded engine the way the official runner would.

The official runner (README §1, §5 of the suite) generates ``${GEN_STR:n}`` variables, sends
``json.dumps(Input)``, then either waits for the whole execution (``RequestResponse``) or, for
``AsyncInvoke: true``, polls the history every 2 s and performs the CallbackActions. Here time
is virtual: the engine runs on a :class:`SkippingClock`, and the harness advances that clock to
the next event (the next engine timer, the next poll, the end of an action's delay), running
every invocation that becomes due in between, so relative timings come out as on the service
while the run takes milliseconds.

Requirements whose handler kills its process (``crash`` cases) run in worker subprocesses: the
first worker dies with ``os._exit`` in the middle of the invocation, the second takes over its
lease (recording ``InvocationCompleted`` with ``Runtime.ExitError``) and finishes the execution.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import os
import re
import secrets
import string
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from durably import DurableFunction, Engine, ErrorObject, JsonFormatter, ServiceError
from durably.core.engine.clock import SkippingClock
from pg_store import database

from .handlers import REGISTRY, STATE_ENV, WORKER_ENV, Case
from .matcher import LogRecord, Matcher, check, substitute

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"})
POLL_MS = 2_000
NO_PROGRESS_MS = 30_000
SYNC_LIMIT_MS = 15 * 60_000
ASYNC_LIMIT_MS = 60 * 60_000
GEN_STR = re.compile(r"\$\{GEN_STR:(\d+)\}")
ALPHABET = string.ascii_lowercase + string.digits
WORKFLOW_LOGGER = "durably.workflow"


# ---------------------------------------------------------------------- requirements
@dataclass(frozen=True)
class Requirement:
    req_id: str
    suite: str
    path: Path
    spec: Mapping[str, Any]

    @property
    def is_async(self) -> bool:
        return bool(self.spec.get("AsyncInvoke"))

    @property
    def sort_key(self) -> tuple[int, int]:
        major, minor = self.req_id.split("-")
        return int(major), int(minor)


@functools.cache
def load_requirements() -> tuple[Requirement, ...]:
    """Every requirement file, in suite and number order (parsed once per process)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    found = []
    for path in REQUIREMENTS.glob("*/*.yaml"):
        with path.open(encoding="utf-8") as f:
            spec = yaml.load(f, Loader=loader)  # a safe loader (C or pure Python)
        found.append(Requirement(path.stem, path.parent.name, path, spec))
    return tuple(sorted(found, key=lambda r: r.sort_key))


def generate_variables(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Each ``${GEN_STR:n}`` becomes a fresh ``[a-z0-9]{n}``."""
    def gen(match: re.Match[str]) -> str:
        return "".join(secrets.choice(ALPHABET) for _ in range(int(match.group(1))))
    out: dict[str, Any] = {}
    for name, value in (spec.get("Variables") or {}).items():
        out[name] = GEN_STR.sub(gen, value) if isinstance(value, str) else value
    return out


# ---------------------------------------------------------------------- logs
class LogCapture:
    """The execution's log stream: ``durably.workflow`` records and JSON lines printed to stdout.

    Both go into one list in arrival order; each record's ordering key is its arrival index.
    """

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._formatter = JsonFormatter()

    def add(self, fields: dict[str, Any]) -> None:
        with self._lock:
            self.records.append(fields)

    def add_line(self, line: str) -> None:
        line = line.strip()
        if not line.startswith("{"):
            return
        try:
            fields = json.loads(line)
        except ValueError:
            return
        if isinstance(fields, dict):
            self.add(fields)

    def for_execution(self, arn: str) -> list[LogRecord]:
        """Records carrying this execution's ARN (``durableExecutionArn`` or ``executionArn``)."""
        with self._lock:
            records = list(self.records)
        return [LogRecord(r, (float(i), i)) for i, r in enumerate(records)
                if arn in (r.get("durableExecutionArn"), r.get("executionArn"))]

    @contextlib.contextmanager
    def capturing(self) -> Iterator[None]:
        """Capture ``durably.workflow`` records and stdout JSON lines for the duration."""
        capture = self

        class _Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                capture.add_line(capture._formatter.format(record))

        logger = logging.getLogger(WORKFLOW_LOGGER)
        handler = _Handler(logging.DEBUG)
        level = logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        with contextlib.redirect_stdout(_LineWriter(self)):
            try:
                yield
            finally:
                logger.removeHandler(handler)
                logger.setLevel(level)


class _LineWriter(io.TextIOBase):
    """A stdout replacement that feeds complete lines to a :class:`LogCapture`."""

    def __init__(self, capture: LogCapture) -> None:
        self._capture = capture
        self._buffer = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._buffer += text
            *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            self._capture.add_line(line)
        return len(text)


# ---------------------------------------------------------------------- outcome
@dataclass
class Outcome:
    arn: str
    status: str
    result: str | None
    history: list[dict[str, Any]]
    logs: list[LogRecord]
    variables: dict[str, Any]
    harness_errors: list[str] = field(default_factory=list)

    def errors(self, req: Requirement) -> list[str]:
        """What the official runner would report (empty when the requirement passes)."""
        errors = check(req.spec, self.variables, self.history, self.status, self.result, self.logs)
        return [*self.harness_errors, *errors]


def function_name(req_id: str) -> str:
    return f"conformance-{req_id}"


# ---------------------------------------------------------------------- the in-process driver
class Driver:
    """Drives one engine on virtual time: runs what is due, then jumps the clock ahead."""

    def __init__(self, engine: Engine, clock: SkippingClock) -> None:
        self.engine = engine
        self.clock = clock

    def now(self) -> int:
        return self.clock.now_ms()

    def run_due(self) -> None:
        """Fire due timers and run every invocation that is ready, without moving the clock."""
        while self.engine.step_once():
            pass

    def advance_to(self, target_ms: int) -> None:
        """Let time pass until ``target_ms``, handling every timer on the way in order."""
        while True:
            self.run_due()
            due = self.engine.service.next_due()
            if due is None or due > target_ms:
                break
            self.clock.advance_to(due)
        self.clock.advance_to(target_ms)
        self.run_due()

    def sleep(self, ms: int) -> None:
        self.advance_to(self.now() + ms)


def run_in_process(req: Requirement, case: Case, workdir: Path, capture: LogCapture) -> Outcome:
    variables = generate_variables(req.spec)
    payload = json.dumps(substitute(req.spec.get("Input"), variables))
    clock = SkippingClock()
    engine = Engine(workdir / "durably.db", synchronous="OFF", clock=clock)
    try:
        for name, target in case.targets.items():
            if isinstance(target, DurableFunction):
                engine.register_durable_function(name, target)
            else:
                engine.register_function(name, target)
        engine.register_durable_function(function_name(req.req_id), case.handler)
        driver = Driver(engine, clock)
        with capture.capturing():
            arn = engine.start_execution(function_name(req.req_id), payload, input_is_json=True)
            errors = (_drive_async(req, driver, arn, variables) if req.is_async
                      else _drive_sync(driver, arn))
        execution = engine.get_execution(arn)
        return Outcome(arn, execution["Status"], execution.get("Result"), engine.get_history(arn),
                       capture.for_execution(arn), variables, errors)
    finally:
        engine.close()
        engine.store.close()


def _drive_sync(driver: Driver, arn: str) -> list[str]:
    """``RequestResponse``: the whole execution, through every suspension, up to 15 minutes."""
    start = driver.now()
    while True:
        driver.run_due()
        if driver.engine.get_execution(arn)["Status"] in TERMINAL:
            return []
        due = driver.engine.service.next_due()
        if due is None or due - start > SYNC_LIMIT_MS:
            return [f"the execution did not end within {SYNC_LIMIT_MS // 60_000} minutes of virtual time"]
        driver.advance_to(due)


def _drive_async(req: Requirement, driver: Driver, arn: str, variables: Mapping[str, Any]) -> list[str]:
    """``Event``: poll every 2 s and perform the CallbackActions (README §1.3, §5)."""
    start = driver.now()
    driver.run_due()
    actions = CallbackActions(req.spec.get("CallbackActions") or [], variables, driver)
    seen, last_change = 0, start
    while True:
        driver.sleep(POLL_MS)
        history = driver.engine.get_history(arn)
        if driver.engine.get_execution(arn)["Status"] in TERMINAL:
            break
        if len(history) != seen:
            seen, last_change = len(history), driver.now()
        elif driver.now() - last_change >= NO_PROGRESS_MS:
            break
        if "ExpectedResult" not in req.spec and Matcher(dict(variables)).match_history(
                req.spec.get("ExpectedExecutionHistory") or [], history):
            break
        actions.perform(history)
        if driver.now() - start > ASYNC_LIMIT_MS:
            actions.errors.append("the harness gave up after an hour of virtual time")
            break
    return actions.errors


class CallbackActions:
    """The runner's CallbackActions: each used once, matched to CallbackStarted events in order."""

    def __init__(self, actions: Sequence[Mapping[str, Any]], variables: Mapping[str, Any], driver: Driver) -> None:
        self.actions = [substitute(dict(a), variables) for a in actions]
        self.used: set[int] = set()
        self.handled: set[str] = set()
        self.errors: list[str] = []
        self.driver = driver

    def perform(self, history: Sequence[Mapping[str, Any]]) -> None:
        started = [e for e in history if e.get("EventType") == "CallbackStarted"]
        for event in started:
            callback_id = str(event["CallbackStartedDetails"]["CallbackId"])
            if callback_id in self.handled:
                continue
            name = str(event.get("Name") or "")
            index = self._first_unused(name)
            if index is None:
                if self.actions:
                    error = f"No matching CallbackAction for callback {name!r} ({callback_id})"
                    if error not in self.errors:
                        self.errors.append(error)
                continue
            self.used.add(index)
            action = self.actions[index]
            if action.get("Delay"):
                self.driver.sleep(int(float(action["Delay"]) * 1000))
            self._send(callback_id, action)
            if action.get("Operation") != "heartbeat":
                self.handled.add(callback_id)

    def _first_unused(self, name: str) -> int | None:
        for i, action in enumerate(self.actions):
            if i in self.used:
                continue
            wanted = str(action.get("CallbackName", ""))
            pattern = wanted[3:-2] if wanted.startswith("${/") and wanted.endswith("/}") else None
            if wanted in ("*", name) or (pattern is not None and re.search(pattern, name)):
                return i
        return None

    def _send(self, callback_id: str, action: Mapping[str, Any]) -> None:
        engine = self.driver.engine
        operation = action.get("Operation")
        try:
            if operation == "success":
                engine.send_callback_success(callback_id, json.dumps(action["Payload"]) if "Payload" in action
                                             else None)
            elif operation == "failure":
                payload = action.get("Payload") or {}
                engine.send_callback_failure(callback_id, ErrorObject(**{
                    k: payload[k] for k in ("ErrorType", "ErrorMessage", "ErrorData", "StackTrace") if k in payload}))
            elif operation == "heartbeat":
                engine.send_callback_heartbeat(callback_id)
            else:
                self.errors.append(f"unknown CallbackAction operation {operation!r}")
        except ServiceError as exc:
            self.errors.append(f"{operation} for callback {callback_id} was refused: {exc.code}: {exc}")
        self.driver.run_due()


# ---------------------------------------------------------------------- crash cases
def run_with_crash(req: Requirement, case: Case, workdir: Path) -> Outcome:
    """Start the execution, let a worker process die in it, and let a second worker finish it."""
    variables = generate_variables(req.spec)
    payload = json.dumps(substitute(req.spec.get("Input"), variables))
    db = workdir / "durably.db"
    engine = Engine(db, synchronous="NORMAL")
    try:
        engine.register_durable_function(function_name(req.req_id), case.handler)
        arn = engine.start_execution(function_name(req.req_id), payload, input_is_json=True)
    finally:
        engine.close()
        engine.store.close()
    env = {**os.environ, WORKER_ENV: "1", STATE_ENV: str(workdir),
           "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "conformance.crash_worker", database(db), req.req_id, arn]
    errors: list[str] = []
    capture = LogCapture()
    for attempt in ("first", "second"):
        proc = subprocess.run(command, env=env, cwd=str(HERE.parent), capture_output=True, text=True, timeout=60)
        for line in proc.stdout.splitlines():
            capture.add_line(line)
        expected_code = 17 if attempt == "first" else 0
        if proc.returncode != expected_code:
            errors.append(f"the {attempt} worker exited with {proc.returncode} (expected {expected_code}): "
                          f"{proc.stderr.strip()[-2000:]}")
    engine = Engine(db, synchronous="NORMAL")
    try:
        execution = engine.get_execution(arn)
        return Outcome(arn, execution["Status"], execution.get("Result"), engine.get_history(arn),
                       capture.for_execution(arn), variables, errors)
    finally:
        engine.close()
        engine.store.close()


def run(req: Requirement, workdir: Path) -> Outcome:
    case = REGISTRY[req.req_id]
    if case.crash:
        return run_with_crash(req, case, workdir)
    return run_in_process(req, case, workdir, LogCapture())


__all__ = ["Driver", "LogCapture", "Outcome", "Requirement", "function_name", "load_requirements", "run"]
