"""The progress of a foreground ``durably run``, read from the execution's history as it grows.

A reporter thread reads the events recorded since its last look (every ``POLL_SECONDS``) and
says what happened and what the execution waits on, on the ``durably.cli`` logger: so what it
prints is the durable record, whichever thread or process advanced the execution.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from durably.cli.logs import CLI_LOGGER
from durably.cli.render import error_line, took
from durably.core.engine.service import Service
from durably.sagas import COMPENSATION_SUBTYPE, ROLLBACK_SUBTYPE, SAGA_SUBTYPE

POLL_SECONDS = 0.15
LONG_STEP_MS = 1000
"""A step body running this long is reported as running (once)."""

NOUNS = {"Step": "step", "WaitForCondition": "condition", "Wait": "wait", "Callback": "callback",
         "WaitForCallback": "callback", "ChainedInvoke": "invoke", "RunInChildContext": "context", "Map": "map",
         "Parallel": "parallel", "MapIteration": "map item", "ParallelBranch": "branch",
         COMPENSATION_SUBTYPE: "compensation", SAGA_SUBTYPE: "saga", ROLLBACK_SUBTYPE: "rollback",
         "Agent": "agent", "ToolCall": "tool call"}
QUIET_CONTEXTS = frozenset({"MapIteration", "ParallelBranch", "ToolCall", "WaitForCallback", ROLLBACK_SUBTYPE})
"""Contexts whose end the lines of their operations already tell."""

FAILURE_EXAMPLE = '{"ErrorType": "Rejected", "ErrorMessage": "..."}'


def seconds(n: int) -> str:
    if n < 120:
        return f"{n} s"
    if n < 7200:
        return f"{n // 60} min" + (f" {n % 60} s" if n % 60 else "")
    return f"{n // 3600} h" + (f" {n % 3600 // 60} min" if n % 3600 // 60 else "")


def at(ms: int, now_ms: int) -> str:
    """A UTC time of day, with the date when it is not within a day of ``now_ms``."""
    t = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return t.strftime("%H:%M:%S UTC" if abs(ms - now_ms) < 86_400_000 else "%Y-%m-%d %H:%M:%S UTC")


def _error(details: dict[str, Any]) -> str:
    payload = (details.get("Error") or {}).get("Payload")
    return error_line(payload) if isinstance(payload, dict) else "(no details)"


class Progress:
    """Turns the new events of one execution into lines; ``answer`` starts the callback commands."""

    def __init__(self, service: Service, arn: str, answer: str = "durably callback") -> None:
        self.service = service
        self.arn = arn
        self.answer = answer
        self._next = 1  # the id of the first event not read yet
        self._started: dict[str, int] = {}  # operation id -> its latest start (epoch ms)
        self._running: dict[str, str] = {}  # step id -> its label, until it ends or is reported as running
        self._contexts: dict[str, tuple[str, str | None]] = {}  # context id -> (SubType, Name)

    def poll(self) -> None:
        """Report the events recorded since the last poll, and steps that have run for a while."""
        while True:
            page = self.service.get_history(self.arn, str(self._next))
            for event in page["Events"]:
                self._next = event["EventId"] + 1
                self._report(event)
            if not page.get("NextMarker"):
                break
        now = int(time.time() * 1000)
        for op_id, label in list(self._running.items()):
            if now - self._started[op_id] >= LONG_STEP_MS:
                del self._running[op_id]
                self._say(logging.INFO, f"{label} still running (started {at(self._started[op_id], now)})",
                          {"Id": op_id, "EventType": "StepStarted"}, None)

    def _say(self, level: int, message: str, event: dict[str, Any], name: str | None, **fields: Any) -> None:
        extra = {"executionArn": self.arn, "eventType": event["EventType"], "operationId": event.get("Id"),
                 "operationName": name, **fields}
        CLI_LOGGER.log(level, message, extra=extra)

    def _name(self, event: dict[str, Any]) -> str | None:
        """The operation's name; a wait_for_callback's callback goes by the name of its context."""
        parent = self._contexts.get(event.get("ParentId") or "")
        if event["EventType"].startswith("Callback") and parent and parent[0] == "WaitForCallback":
            return parent[1]
        name: str | None = event.get("Name")
        return name

    def _report(self, event: dict[str, Any]) -> None:
        kind: str = event["EventType"]
        says = {"ChainedInvoke": self._invoke, "Invocation": self._invocation, "Step": self._step,
                "Wait": self._wait, "Callback": self._callback, "Context": self._context}
        family = next((f for f in says if kind.startswith(f)), None)
        if family is None:  # Execution*: the command's own output tells how it ended
            return
        details: dict[str, Any] = event.get(f"{kind}Details") or {}
        name = self._name(event)
        noun = NOUNS.get(event.get("SubType") or "", family.lower())
        label = f"{noun} {name!r}" if name else f"{noun} (unnamed)"
        op_id = event.get("Id") or ""
        if kind.endswith("Started"):
            self._started[op_id] = event["EventTimestamp"]
        elapsed = took(event["EventTimestamp"] - self._started.get(op_id, event["EventTimestamp"]))
        says[family](event, kind.removeprefix(family), details, name, label, elapsed)

    def _step(self, event: dict[str, Any], what: str, details: dict[str, Any], name: str | None, label: str,
              elapsed: str) -> None:
        op_id = event["Id"]
        if what == "Started":
            self._running[op_id] = label
            return
        self._running.pop(op_id, None)
        retry = details.get("RetryDetails") or {}
        attempt, delay = retry.get("CurrentAttempt", 1), retry.get("NextAttemptDelaySeconds")
        if delay is not None and what == "Failed":
            self._say(logging.INFO, f"{label} attempt {attempt} failed: {_error(details)}; retrying in "
                      f"{seconds(delay)}", event, name, attempt=attempt)
        elif delay is not None:  # a wait_for_condition check that asks to be run again
            self._say(logging.INFO, f"{label} not met yet (check {attempt}); checking again in {seconds(delay)}",
                      event, name, attempt=attempt)
        elif what == "Succeeded":
            again = f" on attempt {attempt}" if attempt > 1 else ""
            self._say(logging.INFO, f"{label} succeeded in {elapsed}{again}", event, name, attempt=attempt)
        else:
            times = f" after {attempt} attempts" if attempt > 1 else ""
            self._say(logging.WARNING, f"{label} failed{times}: {_error(details)}", event, name, attempt=attempt)

    def _wait(self, event: dict[str, Any], what: str, details: dict[str, Any], name: str | None, label: str,
              elapsed: str) -> None:
        if what == "Started":
            on = f" on {name!r}" if name else ""
            until = at(details["ScheduledEndTimestamp"], event["EventTimestamp"])
            self._say(logging.INFO, f"waiting {seconds(details['Duration'])}{on} (until {until})", event, name)
        elif what == "Succeeded":
            self._say(logging.INFO, f"{label} done", event, name)
        else:
            self._say(logging.INFO, f"{label} cancelled", event, name)

    def _callback(self, event: dict[str, Any], what: str, details: dict[str, Any], name: str | None, label: str,
                  elapsed: str) -> None:
        if what == "Started":
            cid = details["CallbackId"]
            timeout = f"; it times out in {seconds(details['Timeout'])}" if details.get("Timeout") else ""
            self._say(logging.INFO, f"waiting on {label} (callback id {cid}): answer with `{self.answer} success "
                      f"{cid} --payload '...'` or `{self.answer} failure {cid} --payload '{FAILURE_EXAMPLE}'`"
                      f"{timeout}", event, name, callbackId=cid)
        elif what == "Succeeded":
            self._say(logging.INFO, f"{label} answered after {elapsed}: success", event, name)
        elif what == "Failed":
            self._say(logging.WARNING, f"{label} answered after {elapsed}: failure {_error(details)}", event, name)
        else:
            self._say(logging.WARNING, f"{label} timed out after {elapsed}", event, name)

    def _invoke(self, event: dict[str, Any], what: str, details: dict[str, Any], name: str | None, label: str,
                elapsed: str) -> None:
        if what == "Started":
            child = details.get("DurableExecutionArn") or "(no execution)"
            self._say(logging.INFO, f"waiting on {label} of {details.get('FunctionName')}: {child}", event, name,
                      childArn=details.get("DurableExecutionArn"))
        elif what == "Succeeded":
            self._say(logging.INFO, f"{label} succeeded in {elapsed}", event, name)
        else:
            self._say(logging.WARNING, f"{label} {what.lower().replace('timedout', 'timed out')} after {elapsed}: "
                      f"{_error(details)}", event, name)

    def _context(self, event: dict[str, Any], what: str, details: dict[str, Any], name: str | None, label: str,
                 elapsed: str) -> None:
        subtype = event.get("SubType") or ""
        if what == "Started":
            self._contexts[event["Id"]] = (subtype, event.get("Name"))
        elif subtype not in QUIET_CONTEXTS:
            if what == "Succeeded":
                self._say(logging.INFO, f"{label} succeeded in {elapsed}", event, name)
            else:
                self._say(logging.WARNING, f"{label} failed after {elapsed}: {_error(details)}", event, name)

    def _invocation(self, event: dict[str, Any], what: str, details: dict[str, Any], name: str | None,
                    label: str, elapsed: str) -> None:
        if details.get("Error"):
            self._say(logging.WARNING, f"invocation failed: {_error(details)}", event, None)


@contextmanager
def reporting(service: Service, arn: str, answer: str = "durably callback") -> Iterator[None]:
    """Report the progress of ``arn`` from a background thread while the block runs, then the rest."""
    progress = Progress(service, arn, answer)
    stop = threading.Event()

    def loop() -> None:
        try:
            while not stop.wait(POLL_SECONDS):
                progress.poll()
            progress.poll()
        except Exception as exc:  # the run goes on, only its progress is lost
            CLI_LOGGER.warning("progress reporting stopped: %s: %s", type(exc).__name__, exc,
                               extra={"executionArn": arn})

    thread = threading.Thread(target=loop, name="durably-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
