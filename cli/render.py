"""Printing results: AWS response shapes as JSON, or readable rich tables."""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

import click
from durably.core.engine.history import render_timestamps
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

DETAILS_WIDTH = 80
WIDE = 400
STATUS_STYLES = {"SUCCEEDED": "green", "RUNNING": "cyan", "FAILED": "red", "TIMED_OUT": "red",
                 "STOPPED": "yellow"}
QUIET_DETAILS = frozenset({"ExecutionTimeout", "RequestId", "ExecutedVersion", "StartTimestamp", "EndTimestamp"})


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
                parts.append(f"{key}: {payload}")
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


def history_table(events: list[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("EventId", justify="right", no_wrap=True)
    table.add_column("Time (UTC)", no_wrap=True)
    table.add_column("EventType", no_wrap=True)
    table.add_column("SubType", no_wrap=True)
    table.add_column("Name")
    table.add_column("Details", overflow="fold")
    for event in events:
        style = "red" if event["EventType"].endswith(("Failed", "TimedOut", "Stopped")) else ""
        table.add_row(Text(str(event.get("EventId", ""))), Text(clock(event.get("EventTimestamp"))),
                      Text(event["EventType"], style=style), Text(event.get("SubType") or ""),
                      Text(event.get("Name") or ""), Text(summarize(event)))
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
