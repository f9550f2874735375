"""The troubleshooting playbook for one execution, as pure functions over what the service reads.

:func:`diagnose` takes :class:`Facts` (GetDurableExecution, the operations, the history, the open
callbacks, how the workers stand, the time now) and answers a :class:`Diagnosis`: findings, each
with a severity, a one-line summary, details and what to do. Nothing here reads or writes.
"""

from __future__ import annotations

import re
import shlex
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from durably.cli.render import clock, took
from durably.cli.resolve import quoted
from durably.core.engine.service import MAX_INVOCATION_FAILURES, OpenCallback
from durably.core.model import ErrorObject, Operation

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")
DAY_MS = 86_400_000
NEAR_TIMEOUT = 0.8
"""The share of a timeout after which the time left is worth a warning."""
GRACE_MS = 5_000
"""How late a timer may fire before it counts as not fired (no worker is running)."""
STACK_FRAMES = 3
LISTED = 10
SLOWEST = 5
NON_DETERMINISTIC = "NonDeterministicExecutionError"
IMPORT_ERROR = "HandlerImportError"
OPEN = ("STARTED", "PENDING", "READY")
FAILED = ("FAILED", "TIMED_OUT", "STOPPED")
WAIT_FOR_CALLBACK = "WaitForCallback"
_WORD_START = re.compile(r"(?<!^)(?=[A-Z])")


@dataclass(frozen=True)
class Moment:
    """A point in time (epoch ms): ISO 8601 in JSON, a UTC date and time for people."""

    ms: int


@dataclass(frozen=True)
class Span:
    """A length of time (ms): a number of ms in JSON (its key ends in ``_ms``), ``3 h 5 min`` for people."""

    ms: int


Detail = str | int | float | bool | Moment | Span | list[str] | list[dict[str, Any]] | None


@dataclass(frozen=True)
class Finding:
    kind: str
    severity: Severity
    summary: str
    details: dict[str, Detail] = field(default_factory=dict)
    recommendation: str | None = None


@dataclass(frozen=True)
class Facts:
    """What the diagnosis of one execution reads, all of it taken at ``now`` (epoch ms)."""

    execution: dict[str, Any]
    """GetDurableExecution."""
    operations: list[Operation]
    events: list[dict[str, Any]]
    callbacks: list[OpenCallback]
    """The execution's open callbacks (``Service.open_callbacks``, filtered by ARN)."""
    invocation: dict[str, Any]
    """``Service.invocation_state``."""
    problem: dict[str, Any] | None
    """``Service.last_invocation_error``."""
    now: int
    code_changed: bool | None = None
    """``Service.code_changed``: whether a ``$LATEST`` execution's handler file changed since it started."""


@dataclass(frozen=True)
class Diagnosis:
    arn: str
    name: str
    function_name: str
    handler: str | None
    status: str
    elapsed_ms: int
    findings: list[Finding]


def function_name(execution: dict[str, Any]) -> str:
    return str(execution["FunctionArn"]).split(":function:")[-1].split(":")[0]


def elapsed(execution: dict[str, Any], now: int) -> int:
    """How long it has run (or ran), in ms."""
    return int(execution.get("EndTimestamp") or now) - int(execution["StartTimestamp"])


def diagnose(facts: Facts, command: str = "durably") -> Diagnosis:
    """Every finding about the execution, the status first, then the errors, warnings and the rest.

    ``command`` starts each recommended command line (``durably --db PATH`` for another database).
    """
    execution = facts.execution
    found = [
        *_worker(facts, command), *_overdue(facts, command), *_stuck(facts), *_callbacks(facts, command),
        *_failures(facts, command), _timeout(facts), *_invocation_errors(facts, command),
        *_non_determinism(facts, command), *_code_changed(facts, command), *_retention(facts),
    ]
    found.sort(key=lambda f: SEVERITIES.index(f.severity))
    return Diagnosis(arn=execution["DurableExecutionArn"], name=execution.get("DurableExecutionName", ""),
                     function_name=function_name(execution), handler=facts.invocation.get("HandlerReference"),
                     status=execution["Status"], elapsed_ms=elapsed(execution, facts.now),
                     findings=[_status(facts, command), *found])


# ---------------------------------------------------------------------------- the findings
def _code_changed(facts: Facts, command: str) -> Iterator[Finding]:
    """A running ``$LATEST`` execution whose handler file changed under it: its next replay runs other code."""
    if facts.code_changed and facts.execution["Status"] == "RUNNING":
        yield Finding("code_changed", "warning",
                      "the handler's file changed since this $LATEST execution started: its next invocation "
                      "replays its history with the new code",
                      {"handler": facts.invocation.get("HandlerReference")},
                      f"{command} replay --check {facts.invocation.get('HandlerReference') or 'MODULE:FUNCTION'} "
                      f"{quoted(facts.execution['DurableExecutionArn'])}  # and publish versions "
                      "(durably publish-version) to keep in-flight executions on their code")


def _status(facts: Facts, command: str) -> Finding:
    execution, now = facts.execution, facts.now
    status = execution["Status"]
    ran = took(elapsed(execution, now))
    details: dict[str, Detail] = {"function": function_name(execution),
                                  "handler": facts.invocation.get("HandlerReference"),
                                  "started": Moment(execution["StartTimestamp"])}
    if execution.get("EndTimestamp") is not None:
        details["ended"] = Moment(execution["EndTimestamp"])
    details["elapsed_ms"] = Span(elapsed(execution, now))
    error = execution.get("Error")
    if status == "RUNNING":
        return Finding("status", "info", f"RUNNING for {ran}", details)
    if status == "SUCCEEDED":
        return Finding("status", "info", f"SUCCEEDED after {ran}", details)
    summary = f"{status} after {ran}"
    if error:
        summary += f": {_error_line(error)}"
        details.update(_error_details(ErrorObject.from_dict(error)))
    arn = quoted(execution["DurableExecutionArn"])
    return Finding("status", "warning" if status == "STOPPED" else "error", summary, details,
                   f"{command} history {arn}  # every event, with stack traces; once the cause is fixed: "
                   f"{command} redrive {arn}")


def _worker(facts: Facts, command: str) -> Iterator[Finding]:
    """Whether a worker runs the execution now, or should."""
    if facts.execution["Status"] != "RUNNING":
        return
    state, now = facts.invocation, facts.now
    invocation = state.get("Invocation")
    if invocation is not None:
        details: dict[str, Detail] = {"worker": invocation["Worker"], "since": Moment(invocation["StartTimestamp"]),
                                      "running_ms": Span(now - invocation["StartTimestamp"])}
        expiry = invocation.get("LeaseExpiry")
        if expiry is not None and expiry < now:
            details["lease_expired"] = Moment(expiry)
            yield Finding("worker", "warning",
                          f"the worker running it stopped renewing its lease {took(now - expiry)} ago",
                          details, f"{command} worker  # takes the invocation over and runs it again")
            return
        yield Finding("worker", "info", f"an invocation is running, for {took(now - invocation['StartTimestamp'])}"
                      f" on worker {invocation['Worker']}", details)
    elif state.get("Ready"):
        yield Finding("worker", "warning", "ready to run, but no worker has claimed it: is a worker running?",
                      {}, f"{command} worker")


def _due_timers(facts: Facts) -> Iterator[tuple[str, int]]:
    """(what, when) of every timer of the running execution, with its due time."""
    for op in facts.operations:
        if op.Type == "WAIT" and op.Status == "STARTED" and op.WaitDetails and op.WaitDetails.ScheduledEndTimestamp:
            yield f"wait {_label(op)} ends", op.WaitDetails.ScheduledEndTimestamp
        if op.Type == "STEP" and op.Status == "PENDING" and op.StepDetails and op.StepDetails.NextAttemptTimestamp:
            yield f"step {_label(op)} retries", op.StepDetails.NextAttemptTimestamp
    for cb in facts.callbacks:
        if cb.timeout_due is not None:
            yield f"callback {_callback_label(cb.operation, facts)} times out", cb.timeout_due
        if cb.heartbeat_due is not None:
            yield f"callback {_callback_label(cb.operation, facts)} misses its heartbeat", cb.heartbeat_due
    if facts.invocation.get("NextInvocationTimestamp") is not None:
        yield "the failed invocation is tried again", facts.invocation["NextInvocationTimestamp"]


def _overdue(facts: Facts, command: str) -> Iterator[Finding]:
    """Timers that fell due and did not fire: nothing runs the engine's timers."""
    if facts.execution["Status"] != "RUNNING" or facts.invocation.get("Invocation") is not None:
        return
    late = sorted((due, what) for what, due in _due_timers(facts) if due < facts.now - GRACE_MS)
    if not late:
        return
    rows = [{"what": what, "due": Moment(due), "late_ms": Span(facts.now - due)} for due, what in late]
    yield Finding("overdue_timer", "warning",
                  f"{late[0][1]} {took(facts.now - late[0][0])} ago, and no worker acted on it",
                  {"timers": _rows(rows)},
                  f"{command} worker  # fires due timers and runs the execution on")


def _stuck(facts: Facts) -> Iterator[Finding]:
    """The open operations (not contexts), oldest first, with their age and what they wait for."""
    if facts.execution["Status"] != "RUNNING":
        return
    answered_apart = {cb.operation.Id for cb in facts.callbacks}  # each has a finding of its own
    open_ops = sorted((op for op in facts.operations if op.Status in OPEN and op.Type not in ("EXECUTION", "CONTEXT")
                       and op.Id not in answered_apart), key=lambda op: op.StartTimestamp or 0)
    if not open_ops:
        return
    rows = [{"operation": _label(op), "type": _type(op), "status": op.Status,
             "age_ms": Span(facts.now - (op.StartTimestamp or facts.now)), "waits_for": _waits_for(op, facts)}
            for op in open_ops]
    oldest = open_ops[0]
    many = f"{len(open_ops)} operations open; the oldest: " if len(open_ops) > 1 else ""
    yield Finding("stuck_operations", "info",
                  f"{many}{_kind(oldest)} {_label(oldest)} {oldest.Status} for "
                  f"{took(facts.now - (oldest.StartTimestamp or facts.now))}", {"operations": _rows(rows)})


def _waits_for(op: Operation, facts: Facts) -> str:
    now = facts.now
    if op.Type == "WAIT" and op.WaitDetails and op.WaitDetails.ScheduledEndTimestamp:
        return f"its end, in {took(op.WaitDetails.ScheduledEndTimestamp - now)}" \
            if op.WaitDetails.ScheduledEndTimestamp >= now else "its end, which is past"
    if op.Type == "STEP":
        attempt = (op.StepDetails.Attempt if op.StepDetails else 0) + 1
        if op.Status == "PENDING" and op.StepDetails and op.StepDetails.NextAttemptTimestamp:
            return f"attempt {attempt}, at {_when(op.StepDetails.NextAttemptTimestamp)}"
        if op.Status == "READY":
            return f"attempt {attempt}, at the next invocation"
        if facts.invocation.get("Invocation") is not None:
            return f"attempt {attempt}, running"
        return f"attempt {attempt}, cut short: at the next invocation it runs again (or fails, if at most once)"
    if op.Type == "CALLBACK":
        return f"an answer to callback {op.CallbackDetails.CallbackId if op.CallbackDetails else '?'}"
    if op.Type == "CHAINED_INVOKE":
        child = _child_arn(op, facts.events)
        return f"the end of {child}" if child else "the invoked function"
    return ""


def _callbacks(facts: Facts, command: str) -> Iterator[Finding]:
    now = facts.now
    for cb in facts.callbacks:
        op = cb.operation
        callback_id = op.CallbackDetails.CallbackId if op.CallbackDetails else ""
        since = op.StartTimestamp or now
        details: dict[str, Detail] = {"callback_id": callback_id, "operation": op.Name, "since": Moment(since),
                                      "waiting_ms": Span(now - since)}
        summary = f"waiting on callback {_callback_label(op, facts)} since {_when(since)} ({took(now - since)})"
        severity: Severity = "info"
        for key, due in (("timeout", cb.timeout_due), ("heartbeat", cb.heartbeat_due)):
            if due is None:
                continue
            details[f"{key}_at"] = Moment(due)
            details[f"{key}_left_ms"] = Span(max(due - now, 0))
            if due - now < (1 - NEAR_TIMEOUT) * (due - since):
                severity = "warning"
        if cb.timeout_due is not None:
            summary += f"; times out in {took(max(cb.timeout_due - now, 0))}"
        else:
            details["timeout_at"] = None
            summary += "; no timeout"
        answer = f"{command} callback"
        yield Finding("open_callback", severity, summary, details,
                      f"{answer} success {callback_id} --payload '...'\n"
                      f"{answer} failure {callback_id} --payload '{{\"ErrorType\": \"Rejected\", "
                      f"\"ErrorMessage\": \"...\"}}'"
                      + (f"\n{answer} heartbeat {callback_id}" if cb.heartbeat_due is not None else ""))


def _failures(facts: Facts, command: str) -> Iterator[Finding]:
    """Failed operations, and steps retrying after a failed attempt, in the order they failed."""
    failed_attempts = Counter(e.get("Id") for e in facts.events if e["EventType"] == "StepFailed")
    status = facts.execution["Status"]
    severity: Severity = "error" if status in FAILED else "warning" if status == "RUNNING" else "info"
    shown = [op for op in facts.operations if op.Type != "EXECUTION" and _operation_error(op) is not None
             and (op.Status in FAILED or op.Status in ("PENDING", "READY"))]
    shown.sort(key=lambda op: op.EndTimestamp or op.StartTimestamp or 0)
    for op in shown[:LISTED]:
        error = _operation_error(op)
        assert error is not None
        details: dict[str, Detail] = {"operation": op.Name, "type": _type(op), "status": op.Status}
        attempts = op.StepDetails.Attempt if op.StepDetails else None
        if attempts is not None:
            details["attempts"] = attempts
            details["failed_attempts"] = failed_attempts[op.Id]
        details.update(_error_details(error))
        tried = f" after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
        if op.Status in FAILED:
            yield Finding("failed_operation", severity,
                          f"{_kind(op)} {_label(op)} {op.Status}{tried}: {_error_line(error.to_wire())}",
                          details)
            continue
        next_at = op.StepDetails.NextAttemptTimestamp if op.StepDetails else None
        details["next_attempt"] = Moment(next_at) if next_at else None
        yield Finding("retrying_operation", "warning",
                      f"step {_label(op)} is retrying: attempt {attempts} failed with {_error_line(error.to_wire())}",
                      details)
    if len(shown) > LISTED:
        yield Finding("failed_operation", "info", f"{len(shown) - LISTED} more failed operations",
                      {"more": len(shown) - LISTED},
                      f"{command} history {quoted(facts.execution['DurableExecutionArn'])}")


def _timeout(facts: Facts) -> Finding:
    """Elapsed time against the execution timeout, and where the time went."""
    execution, now = facts.execution, facts.now
    timeout_s = int(execution["DurableConfig"]["ExecutionTimeout"])
    ran = elapsed(execution, now)
    used = ran / (timeout_s * 1000)
    details: dict[str, Detail] = {"execution_timeout_s": timeout_s, "elapsed_ms": Span(ran),
                                  "used_percent": round(used * 100, 1), "deadline": Moment(_deadline(execution))}
    if execution["Status"] == "RUNNING":
        details["time_left_ms"] = Span(max(_deadline(execution) - now, 0))
    slowest = sorted((op for op in facts.operations if op.Type not in ("EXECUTION", "CONTEXT") and op.StartTimestamp),
                     key=lambda op: _duration(op, now), reverse=True)[:SLOWEST]
    details["slowest"] = _rows([{"operation": _label(op), "type": _type(op), "status": op.Status,
                                 "duration_ms": Span(_duration(op, now))} for op in slowest])
    longer = ("new executions get a longer timeout from the function's ExecutionTimeout "
              "(register_durable_function(..., execution_timeout=SECONDS)); the slowest operations show where "
              "the time goes")
    status = execution["Status"]
    if status == "TIMED_OUT":
        return Finding("timeout", "error", f"timed out after {took(ran)} (timeout {took(timeout_s * 1000)})",
                       details, longer)
    if status != "RUNNING":
        return Finding("timeout", "info", f"ran {took(ran)}, {used:.0%} of its {took(timeout_s * 1000)}"
                       " timeout", details)
    left = _deadline(execution) - now
    if left < 0:
        return Finding("timeout", "error", f"past its timeout by {took(-left)}: it is TIMED_OUT as soon as a "
                       "worker runs its timers", details, longer)
    summary = f"{used:.0%} of its {took(timeout_s * 1000)} timeout used; {took(left)} left"
    return Finding("timeout", "warning" if used >= NEAR_TIMEOUT else "info", summary, details,
                   longer if used >= NEAR_TIMEOUT else None)


def _invocation_errors(facts: Facts, command: str) -> Iterator[Finding]:
    """A handler that cannot be imported, invocations that crash or fail in a row."""
    failed = [e for e in facts.events if e["EventType"] == "InvocationCompleted"
              and (e.get("InvocationCompletedDetails") or {}).get("Error")]
    count = int(facts.invocation.get("FailedInvocations") or 0)
    problem = facts.problem
    ref = facts.invocation.get("HandlerReference")
    if problem is not None and problem["Error"].get("ErrorType") == IMPORT_ERROR:
        message = problem["Error"].get("ErrorMessage")
        yield Finding("invocation_error", "error", f"a worker cannot import the handler: {message}",
                      {"handler": ref, "at": Moment(problem["Timestamp"]), "worker": problem["Worker"],
                       "error_type": IMPORT_ERROR, "error_message": message},
                      f"restore or deploy {ref or 'the handler'} where the workers run, then: {command} worker  # "
                      "workers retry it; it does not count against the execution")
        return
    if problem is None and not failed:
        return
    details: dict[str, Detail] = {"failed_invocations_in_a_row": count,
                                  "failed_invocations_limit": MAX_INVOCATION_FAILURES,
                                  "failed_invocations_in_history": len(failed)}
    error = problem["Error"] if problem else (failed[-1]["InvocationCompletedDetails"]["Error"].get("Payload") or {})
    if problem is not None:
        details.update({"at": Moment(problem["Timestamp"]), "worker": problem["Worker"]})
    details.update(_error_details(ErrorObject.from_dict(error)))
    retry_at = facts.invocation.get("NextInvocationTimestamp")
    if retry_at is not None:
        details["next_invocation"] = Moment(retry_at)
    running = facts.execution["Status"] == "RUNNING"
    severity: Severity = "error" if running and count else "warning"
    summary = (f"{count} of {MAX_INVOCATION_FAILURES} invocations in a row failed (the execution fails at "
               f"{MAX_INVOCATION_FAILURES}): {_error_line(error)}" if running and count else
               f"{len(failed)} invocation{'s' if len(failed) != 1 else ''} ended with an error; the last: "
               f"{_error_line(error)}")
    yield Finding("invocation_error", severity, summary, details,
                  f"{command} history {quoted(facts.execution['DurableExecutionArn'])}  # the InvocationCompleted "
                  "events carry each error")


def _non_determinism(facts: Facts, command: str) -> Iterator[Finding]:
    errors = [facts.execution.get("Error") or {}] + [e.to_wire() for op in facts.operations
                                                     if (e := _operation_error(op)) is not None]
    for error in errors:
        if _is_non_deterministic(error):
            arn = facts.execution["DurableExecutionArn"]
            ref = shlex.quote(facts.invocation.get("HandlerReference") or "MODULE:FUNCTION")
            yield Finding("non_determinism", "error",
                          "the code no longer replays the execution's history (non-deterministic)",
                          {"error_type": error.get("ErrorType"), "error_message": error.get("ErrorMessage")},
                          f"{command} replay --check {ref} {quoted(arn)}  # where the code and the history diverge\n"
                          "keep the old code for executions in flight: deploy the change under a new function name, "
                          "or let them finish first")
            return


def _retention(facts: Facts) -> Iterator[Finding]:
    execution = facts.execution
    end = execution.get("EndTimestamp")
    if end is None:
        return
    days = int(execution["DurableConfig"]["RetentionPeriodInDays"])
    purge = int(end) + days * DAY_MS
    left = purge - facts.now
    yield Finding("retention", "info",
                  f"kept {days} days after its end: purged after {_when(purge)} (in {took(left)})"
                  if left > 0 else f"past its {days}-day retention: purged when a worker next runs",
                  {"retention_days": days, "purge_after": Moment(purge), "time_left_ms": Span(max(left, 0))})


# ---------------------------------------------------------------------------- helpers
def _deadline(execution: dict[str, Any]) -> int:
    return int(execution["StartTimestamp"]) + int(execution["DurableConfig"]["ExecutionTimeout"]) * 1000


def _duration(op: Operation, now: int) -> int:
    return (op.EndTimestamp or now) - (op.StartTimestamp or now)


def _label(op: Operation) -> str:
    return repr(op.Name) if op.Name else f"#{op.Id[:12]}"


def _callback_label(op: Operation, facts: Facts) -> str:
    """A callback's name; for the callback of a ``wait_for_callback``, the name given to that."""
    parent = next((p for p in facts.operations if p.Id == op.ParentId), None) if op.ParentId else None
    return _label(parent) if parent is not None and parent.SubType == WAIT_FOR_CALLBACK else _label(op)


def _type(op: Operation) -> str:
    """``STEP``, ``STEP/Compensation``: the subtype when it says more than the type."""
    return f"{op.Type}/{op.SubType}" if op.SubType and op.SubType.upper() != op.Type.replace("_", "") else op.Type


def _kind(op: Operation) -> str:
    """What to call the operation in a sentence: ``step``, ``compensation``, ``wait for condition``."""
    return _WORD_START.sub(" ", op.SubType).lower() if op.SubType else op.Type.replace("_", " ").lower()


def _when(ms: int) -> str:
    return f"{clock(ms, date=True)} UTC"


def _rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most LISTED rows, and a last one saying how many were left out."""
    return rows if len(rows) <= LISTED else [*rows[:LISTED], {"more": len(rows) - LISTED}]


def _operation_error(op: Operation) -> ErrorObject | None:
    for details in (op.StepDetails, op.CallbackDetails, op.ChainedInvokeDetails, op.ContextDetails):
        if details is not None and details.Error is not None:
            return details.Error
    return None


def _error_line(error: dict[str, Any]) -> str:
    return ": ".join(str(x) for x in (error.get("ErrorType"), error.get("ErrorMessage")) if x) or "(no details)"


def _error_details(error: ErrorObject) -> dict[str, Detail]:
    """The error's type and message, and the last frames of its stack trace."""
    out: dict[str, Detail] = {"error_type": error.ErrorType, "error_message": error.ErrorMessage}
    if error.StackTrace:
        out["stack_trace"] = [line for entry in error.StackTrace[-STACK_FRAMES:]
                              for line in entry.rstrip("\n").splitlines() if line.strip(" ^~")]
    return out


def _is_non_deterministic(error: dict[str, Any]) -> bool:
    kind, message = str(error.get("ErrorType") or ""), str(error.get("ErrorMessage") or "").lower()
    return kind.endswith(NON_DETERMINISTIC) or "non-deterministic" in message or "nondeterministic" in message


def _child_arn(op: Operation, events: list[dict[str, Any]]) -> str | None:
    for event in events:
        if event["EventType"] == "ChainedInvokeStarted" and event.get("Id") == op.Id:
            return (event.get("ChainedInvokeStartedDetails") or {}).get("DurableExecutionArn")
    return None
