"""Printing results: AWS response shapes as JSON, or readable rich tables."""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

import click
from durably.core.engine.history import render_timestamps
from durably.sagas import COMPENSATION_SUBTYPE, ROLLBACK_SUBTYPE, SAGA_SUBTYPE
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

DETAILS_WIDTH = 80
WIDE = 400
STATUS_STYLES = {"SUCCEEDED": "green", "RUNNING": "cyan", "FAILED": "red", "TIMED_OUT": "red",
                 "STOPPED": "yellow"}
QUIET_DETAILS = frozenset({"ExecutionTimeout", "RequestId", "ExecutedVersion", "StartTimestamp", "EndTimestamp"})
INDENT = "  "
"""Per level of nesting, in the Name column: an operation is indented under its parent (ParentId)."""

COMPENSATION_MARK = "↩ undo "
SAGA_STYLE = "bold"
COMPENSATION_STYLE = "magenta"
SAGA_ERROR_PREFIX = "durably.sagas."
SAGA_OUTCOMES = {"rolled_back": "rolled back", "compensation_failed": "COMPENSATION FAILED",
                 "forward_recovery_failed": "forward recovery failed"}
OUTCOME_STYLES = {"rolled_back": "yellow", "compensation_failed": "bold red", "forward_recovery_failed": "red"}
LISTED_STEPS = 8
"""Steps named in a saga outcome before ``+N more``."""
OUTCOME_WIDTH = 240
LC_AI_MESSAGE = "AIMessage"
"""The last part of the id langchain-core's serialisation gives an AIMessage (an agent's model step)."""


def console() -> Console:
    """A console on stdout; unbounded when stdout is not a terminal, so ARNs stay on one line."""
    out = Console(highlight=False, soft_wrap=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = Console(highlight=False, soft_wrap=False, width=WIDE)
    return out


def emit(*renderables: Any) -> None:
    """Print to stdout; without a terminal, as plain lines with no trailing blanks."""
    out = console()
    if out.is_terminal:
        for renderable in renderables:
            out.print(renderable)
        return
    with out.capture() as captured:
        for renderable in renderables:
            out.print(renderable)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


def print_json(value: Any) -> None:
    """The value with ISO 8601 timestamps, as the AWS CLI prints a response."""
    click.echo(json.dumps(render_timestamps(value, "iso"), indent=2, ensure_ascii=False))


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 with a time zone (for fields render_timestamps does not know)."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")


def clock(ms: int | None, date: bool = False) -> str:
    if ms is None:
        return ""
    t = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S") if date else t.strftime("%H:%M:%S.%f")[:-3]


def shorten(text: str, width: int = DETAILS_WIDTH) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def error_line(error: dict[str, Any] | None) -> str:
    if not error:
        return ""
    kind, message = error.get("ErrorType"), error.get("ErrorMessage")
    return ": ".join(str(x) for x in (kind, message) if x) or "(no details)"


def trace_text(stack_trace: list[str]) -> str:
    """A recorded StackTrace as lines (an entry is a frame: its location, then its source)."""
    return "\n".join(entry.rstrip("\n") for entry in stack_trace)


def stack_traces(events: list[dict[str, Any]]) -> list[Text]:
    """The stack traces recorded in a history's errors, each once, headed by the events with it."""
    found: dict[tuple[str, ...], list[str]] = {}
    for event in events:
        error = (event.get(f"{event['EventType']}Details") or {}).get("Error")
        payload = error.get("Payload") if isinstance(error, dict) else None
        trace = payload.get("StackTrace") if isinstance(payload, dict) else None
        if trace:
            found.setdefault(tuple(trace), []).append(str(event.get("EventId", "?")))
    return [Text(f"\nStack trace of EventId {', '.join(ids)}:\n{trace_text(list(trace))}")
            for trace, ids in found.items()]


def summarize(event: dict[str, Any]) -> str:
    """The interesting part of an event's details, on one line."""
    details = event.get(f"{event['EventType']}Details") or {}
    parts: list[str] = []
    if "CallbackId" in details:
        parts.append(f"CallbackId={details['CallbackId']}")
    if event["EventType"] == "InvocationCompleted" and details.get("EndTimestamp") is not None:
        parts.append(f"{details['EndTimestamp'] - details.get('StartTimestamp', details['EndTimestamp'])} ms")
    for key, value in details.items():
        if key in QUIET_DETAILS or key == "CallbackId" or value is None:
            continue
        if isinstance(value, dict) and ("Payload" in value or "Truncated" in value):
            payload = value.get("Payload")
            if isinstance(payload, dict):
                parts.append(f"{key}: {error_line(payload)}")
            elif payload is not None:
                parts.append(f"{key}: {readable(payload) or payload}")
            elif value.get("Truncated"):
                parts.append(f"{key}: (withheld)")
        elif key == "RetryDetails" and isinstance(value, dict):
            parts.append(f"Attempt={value.get('CurrentAttempt', '?')}")
        elif key == "Duration":
            parts.append(f"Duration={value}s")
        elif key.endswith("Timestamp") and isinstance(value, int):
            parts.append(f"{key.removesuffix('Timestamp')}={clock(value)}")
        elif isinstance(value, str | int | float | bool):
            parts.append(f"{key}={value}")
        else:
            parts.append(f"{key}={json.dumps(value, separators=(',', ':'))}")
    return shorten("; ".join(" ".join(p.split()) for p in parts))


def readable(payload: Any) -> str | None:
    """A payload an agent recorded, as a person reads it; None for any other payload.

    A model step's ``AIMessage`` (langchain-core's serialised form) reads ``AIMessage "text"; calls:
    tool(args), ...; tokens: N in, M out``; a whole run's result ``final: AIMessage "..."; 3 turns;
    tool calls: lookup_order, refund``.
    """
    if not isinstance(payload, str) or not payload.startswith('{"'):
        return None
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    answer = _ai_message(data)
    if answer is not None:
        return answer
    final = _ai_message(data.get("final")) if isinstance(data, dict) and isinstance(data.get("turns"), int) else None
    if final is None:
        return None
    tools = [str(c.get("tool")) for c in data.get("tool_calls") or [] if isinstance(c, dict)]
    turns = data["turns"]
    return (f"final: {final}; {turns} turn{'s' if turns != 1 else ''}"
            + (f"; tool calls: {_listed(tools)}" if tools else ""))


def _ai_message(data: Any) -> str | None:
    """langchain-core's serialised ``AIMessage`` on one line, or None for anything else."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), list) or data["id"][-1:] != [LC_AI_MESSAGE]:
        return None
    kwargs = data.get("kwargs")
    if not isinstance(kwargs, dict):
        return None
    content = kwargs.get("content")
    if isinstance(content, list):  # content blocks: their text parts
        content = " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    parts = [f"{LC_AI_MESSAGE} {json.dumps(content)}" if content else LC_AI_MESSAGE]
    calls = [f"{c.get('name')}({json.dumps(c.get('args'), separators=(',', ':'))})"
             for c in kwargs.get("tool_calls") or [] if isinstance(c, dict)]
    if calls:
        parts.append("calls: " + ", ".join(calls))
    usage = kwargs.get("usage_metadata")
    if isinstance(usage, dict) and "input_tokens" in usage:
        parts.append(f"tokens: {usage.get('input_tokens')} in, {usage.get('output_tokens')} out")
    return "; ".join(parts)


def depths(events: list[dict[str, Any]]) -> dict[str, int]:
    """Each operation's nesting level: 0 at the top, one more than its parent's (from ParentId).

    A parent starts before its children, so one pass in history order sees it first; a parent
    that is not in the list (a partial history) counts as one level up from the top.
    """
    found: dict[str, int] = {}
    for event in events:
        op_id = event.get("Id")
        if not op_id or op_id in found:
            continue
        parent = event.get("ParentId")
        found[op_id] = 0 if not parent else found.get(parent, 0) + 1
    return found


def saga_outcome(event: dict[str, Any]) -> tuple[str, str] | None:
    """How a saga ended, read from the error its context (or the execution) failed with: the line
    to show and its style; None for any other event."""
    details = event.get(f"{event['EventType']}Details") or {}
    error = details.get("Error")
    payload = error.get("Payload") if isinstance(error, dict) else None
    if not isinstance(payload, dict) or not str(payload.get("ErrorType", "")).startswith(SAGA_ERROR_PREFIX):
        return None
    try:
        data = json.loads(payload.get("ErrorData") or "")
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("outcome") not in SAGA_OUTCOMES:
        return None
    outcome = data["outcome"]
    kind = str(payload["ErrorType"]).removeprefix(SAGA_ERROR_PREFIX)
    cause = error_line(data.get("error") if isinstance(data.get("error"), dict) else None) or "an error"
    parts = [f"{SAGA_OUTCOMES[outcome]} ({kind}) after {cause}"]
    if outcome == "compensation_failed":
        parts += _rollback_parts(data.get("compensated"), str(data.get("failed") or "?"),
                                 data.get("compensation_error"), data.get("escalation"), data.get("not_compensated"))
    elif outcome == "rolled_back":
        parts += _rollback_parts(data.get("compensated"))
    return shorten("; ".join(parts), OUTCOME_WIDTH), OUTCOME_STYLES[outcome]


def rollback_result(event: dict[str, Any]) -> tuple[str, str] | None:
    """What a saga's rollback context reports when it ends: what was undone, which undo failed."""
    if event.get("SubType") != ROLLBACK_SUBTYPE or event["EventType"] != "ContextSucceeded":
        return None
    result = (event.get("ContextSucceededDetails") or {}).get("Result")
    try:
        data = json.loads(result["Payload"]) if isinstance(result, dict) else None
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("compensated"), list):
        return None
    failed = data.get("failed")
    if not isinstance(failed, dict):
        return shorten("; ".join(_rollback_parts(data["compensated"])), OUTCOME_WIDTH), ""
    parts = _rollback_parts(data["compensated"], str(failed.get("step") or "?"), failed.get("failed"),
                            failed.get("escalation"), data.get("not_compensated"))
    return shorten("; ".join(parts), OUTCOME_WIDTH), OUTCOME_STYLES["compensation_failed"]


def _rollback_parts(compensated: Any, failed: str | None = None, error: Any = None, escalation: Any = None,
                    not_compensated: Any = None) -> list[str]:
    """``could not undo X: error; escalation: ...; undone: a, b; not undone: c`` (the parts that apply)."""
    parts = []
    if failed is not None:
        parts.append(f"could not undo {failed}" + (f": {error_line(error)}" if isinstance(error, dict) else ""))
        if isinstance(escalation, dict):
            parts.append(f"escalation: {escalation.get('decision', '?')}"
                         + (f" ({escalation['reason']})" if escalation.get("reason") else ""))
    undone = [_compensated(c) for c in compensated or [] if isinstance(c, dict)]
    parts.append(f"undone: {_listed(undone) or 'nothing'}")
    if failed is not None and not_compensated:
        parts.append(f"not undone: {_listed([str(s) for s in not_compensated])}")
    return parts


def _compensated(entry: dict[str, Any]) -> str:
    step = str(entry.get("step", "?"))
    if entry.get("resolution") == "resolved":
        return f"{step} (resolved by a person{': ' + str(entry['note']) if entry.get('note') else ''})"
    return step


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:LISTED_STEPS])
    return shown + (f" +{len(names) - LISTED_STEPS} more" if len(names) > LISTED_STEPS else "")


def history_table(events: list[dict[str, Any]]) -> Table:
    """The history as a table. Operations are indented under the context they belong to (a saga, a
    child context, a map or parallel branch); a compensation reads ``↩ undo <step>``; the end of a
    saga that did not complete says how it ended (rolled back, or which compensation failed)."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("EventId", justify="right", no_wrap=True)
    table.add_column("Time (UTC)", no_wrap=True)
    table.add_column("EventType", no_wrap=True)
    table.add_column("SubType", no_wrap=True)
    table.add_column("Name", no_wrap=True)
    table.add_column("Details", overflow="fold")
    levels = depths(events)
    for event in events:
        failed = event["EventType"].endswith(("Failed", "TimedOut", "Stopped"))
        sub_type = event.get("SubType") or ""
        name = Text(INDENT * levels.get(event.get("Id") or "", 0))
        sub_style = ""
        if sub_type == COMPENSATION_SUBTYPE:
            sub_style = COMPENSATION_STYLE
            name.append(COMPENSATION_MARK, style=COMPENSATION_STYLE)
            name.append(event.get("Name") or "")
        elif sub_type in (SAGA_SUBTYPE, ROLLBACK_SUBTYPE):
            sub_style = SAGA_STYLE if sub_type == SAGA_SUBTYPE else COMPENSATION_STYLE
            name.append(event.get("Name") or "", style=sub_style)
        else:
            name.append(event.get("Name") or "")
        outcome = saga_outcome(event) if failed else rollback_result(event)
        details = Text(*outcome) if outcome else Text(summarize(event))
        table.add_row(Text(str(event.get("EventId", ""))), Text(clock(event.get("EventTimestamp"))),
                      Text(event["EventType"], style="red" if failed else ""), Text(sub_type, style=sub_style),
                      name, details)
    return table


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def summary(execution: dict[str, Any]) -> Text:
    """``STATUS  result: ...`` or ``STATUS  error: Type: message``."""
    line = Text("Status: ").append(status_text(execution["Status"]))
    if execution.get("Result") is not None:
        line.append(f"  Result: {shorten(execution['Result'], 400)}")
    if execution.get("Error"):
        line.append(f"  Error: {shorten(error_line(execution['Error']), 400)}", style="red")
    return line


def open_callbacks(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(name, callback id) of the callbacks started and not yet answered."""
    started: dict[str, tuple[str, str]] = {}
    for event in events:
        op_id = event.get("Id")
        if event["EventType"] == "CallbackStarted" and op_id:
            started[op_id] = (event.get("Name") or "", event["CallbackStartedDetails"].get("CallbackId", ""))
        elif event["EventType"].startswith("Callback") and op_id:
            started.pop(op_id, None)
    return list(started.values())


def print_run(execution: dict[str, Any], events: list[dict[str, Any]]) -> None:
    """What ``durably run`` shows: the ARN, the history, the outcome, and how to go on."""
    parts: list[Any] = [Text(f"Execution: {execution['DurableExecutionArn']}"), history_table(events),
                        *stack_traces(events), summary(execution)]
    if execution["Status"] == "RUNNING":
        for name, callback_id in open_callbacks(events):
            label = f" {name!r}" if name else ""
            parts.append(Text(f"Waiting on callback{label}: durably callback success {callback_id} --payload ..."))
        parts.append(Text("Run `durably worker` to drive it on (waits, retries, answered callbacks)."))
    emit(*parts)


def print_history(events: list[dict[str, Any]]) -> None:
    emit(history_table(events), *stack_traces(events))


def print_execution(execution: dict[str, Any], problem: dict[str, Any] | None = None) -> None:
    """GetDurableExecution as a two-column table, with the last invocation error of a running one."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("Field", style="bold", no_wrap=True)
    table.add_column("Value", overflow="fold")
    rows: list[tuple[str, Text]] = [
        ("Arn", Text(execution["DurableExecutionArn"])),
        ("Name", Text(execution.get("DurableExecutionName", ""))),
        ("Function", Text(execution.get("FunctionArn", ""))),
        ("Status", status_text(execution["Status"])),
        ("Started", Text(clock(execution.get("StartTimestamp"), date=True))),
    ]
    if execution.get("EndTimestamp") is not None:
        rows.append(("Ended", Text(clock(execution["EndTimestamp"], date=True))))
    if execution.get("InputPayload") is not None:
        rows.append(("Input", Text(shorten(execution["InputPayload"], 400))))
    if execution.get("Result") is not None:
        rows.append(("Result", Text(shorten(execution["Result"], 400))))
    if execution.get("Error"):
        rows.append(("Error", Text(error_line(execution["Error"]), style="red")))
        if execution["Error"].get("StackTrace"):
            rows.append(("Stack trace", Text(trace_text(execution["Error"]["StackTrace"]))))
    if problem is not None:
        when = clock(problem["Timestamp"], date=True)
        rows.append(("Last invocation error", Text(f"{error_line(problem['Error'])} ({when}, worker "
                                                   f"{problem['Worker']})", style="yellow")))
    for field, value in rows:
        table.add_row(field, value)
    emit(table)


def print_executions(items: list[dict[str, Any]]) -> None:
    """ListDurableExecutions as a table, newest first."""
    if not items:
        emit(Text("No durable executions."))
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("Status", "Name", "Function", "Started (UTC)", "Ended (UTC)"):
        table.add_column(column, no_wrap=True)
    table.add_column("Arn", overflow="fold")
    for item in items:
        table.add_row(status_text(item["Status"]), Text(item.get("DurableExecutionName", "")),
                      Text(item.get("FunctionArn", "").split(":function:")[-1].removesuffix(":$LATEST")),
                      Text(clock(item.get("StartTimestamp"), date=True)),
                      Text(clock(item.get("EndTimestamp"), date=True)), Text(item["DurableExecutionArn"]))
    emit(table)


def print_line(text: str) -> None:
    emit(Text(text))
